"""The options of one ``fit`` (validated once) and the budget clock.

``FitOptions`` holds what the user asked for; :meth:`FitOptions.fingerprint` is the part of it that
changes the result (a rerun with other values on the same output folder is refused unless it
starts over). :class:`Budget` is the only place that reads the clock, so a test can inject a fake one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tailtune.errors import DataError, RecipeError

__all__ = ["Budget", "DEFAULT_MODEL", "DEVICES", "FitOptions", "parse_budget"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEVICES = ("auto", "cpu", "cuda")
_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(value: str | float | int) -> float:
    """``"30m"``, ``"1h30m"``, ``"90s"``, ``"600"`` (seconds) or a number of seconds -> seconds.

    Raises:
        RecipeError: anything else, or a budget that is not positive.
    """
    if isinstance(value, bool):
        raise RecipeError(f"--budget {value!r}: give a duration such as 30m, 1h or 600 (seconds)")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = re.fullmatch(r"((\d+(\.\d+)?)h)?((\d+(\.\d+)?)m)?((\d+(\.\d+)?)s?)?", text)
        if not text or parts is None:
            raise RecipeError(f"--budget {value!r}: not a duration. Fix: write e.g. 30m, 1h30m, 90s or 600 (seconds)")
        seconds = sum(float(parts.group(i) or 0) * mult for i, mult in ((2, 3600), (5, 60), (8, 1)))
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise RecipeError(f"--budget {value!r}: must be a positive duration, e.g. 30m")
    return seconds


@dataclass
class FitOptions:
    """Everything ``fit`` was asked to do (see :func:`tailtune.fit.fit` for the meaning of each)."""

    data: str
    output: Path
    model: str = DEFAULT_MODEL
    budget_s: float = 1800.0
    seeds: int = 3
    device: str = "auto"
    task: Any = None
    text_column: str | None = None
    label_column: str | None = None
    label_sep: str | None = None
    empty_text: str = "error"
    seed: int = 13
    test_fraction: float = 0.15
    finalists: int = 2
    max_epochs: int | None = None
    restart: bool = False
    cache_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = os.fspath(self.data)
        self.output = Path(self.output)
        self.model = os.fspath(self.model)
        for name, low in (("seeds", 1), ("finalists", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise RecipeError(f"{name}={value!r}: must be an integer >= {low}")
        if self.max_epochs is not None and (isinstance(self.max_epochs, bool) or not isinstance(self.max_epochs, int)
                                            or self.max_epochs < 1):
            raise RecipeError(f"max_epochs={self.max_epochs!r}: must be an integer >= 1 or None")
        if self.device not in DEVICES:
            raise RecipeError(f"--device {self.device!r}: choose one of {', '.join(DEVICES)}")
        if not 0.0 < float(self.test_fraction) < 0.5:
            raise RecipeError(f"test_fraction={self.test_fraction!r}: must be in (0, 0.5), e.g. 0.15")
        if self.empty_text not in ("error", "drop"):
            raise DataError(f"empty_text={self.empty_text!r}: choose 'error' or 'drop'")

    def fingerprint(self) -> dict[str, Any]:
        """The options that change the result (the data's own digest is added by the caller)."""
        task = self.task
        if isinstance(task, (str, os.PathLike)) and Path(task).is_file():
            task = Path(task).read_text(encoding="utf-8")  # a task.json path: its content matters
        elif hasattr(task, "to_dict"):
            task = task.to_dict()
        keep = ("model", "budget_s", "seeds", "text_column", "label_column", "label_sep", "empty_text",
                "seed", "test_fraction", "finalists", "max_epochs")
        return {"task": task, **{k: getattr(self, k) for k in keep}}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["output"] = str(self.output)
        d["task"] = self.task.to_dict() if hasattr(self.task, "to_dict") else self.task
        return d


class Budget:
    """The time budget of one fit: ``spent`` seconds from earlier sessions plus this session's clock.

    Args:
        total_s: the budget in seconds.
        spent_s: seconds already spent by finished units of earlier sessions (a resumed fit).
        clock: a monotonic clock in seconds (default :func:`time.monotonic`; tests inject a fake one).
    """

    def __init__(self, total_s: float, *, spent_s: float = 0.0, clock: Callable[[], float] | None = None):
        self.total_s = float(total_s)
        self.clock = clock or time.monotonic
        self._origin = self.clock() - float(spent_s)

    def now(self) -> float:
        return self.clock()

    def elapsed(self) -> float:
        """Seconds of this fit so far (earlier sessions' finished units included)."""
        return self.clock() - self._origin

    def left(self) -> float:
        return self.total_s - self.elapsed()

    @property
    def end(self) -> float:
        """The clock reading at which the budget is spent."""
        return self._origin + self.total_s
