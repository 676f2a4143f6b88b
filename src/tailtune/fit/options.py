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
#: the unit words a budget may use (a bare number is seconds)
_UNITS = {**dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
          **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
          **dict.fromkeys(("s", "sec", "secs", "second", "seconds", ""), 1)}
_BUDGET_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)\s*")
_BUDGET_FIX = "Fix: write e.g. 30m, 1h30m, 90s, '5 min' or 600 (seconds)"


def parse_budget(value: str | float | int) -> float:
    """``"30m"``, ``"1h30m"``, ``"1h 30m"``, ``"5 min"``, ``"2 hours"``, ``"90s"``, ``"600"`` (seconds) or a
    number of seconds -> seconds.

    Raises:
        RecipeError: anything else, or a budget that is not positive.
    """
    if isinstance(value, bool):
        raise RecipeError(f"--budget {value!r}: give a duration. {_BUDGET_FIX}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if text.startswith("-"):
            raise RecipeError(f"--budget {value!r}: must be a positive duration. {_BUDGET_FIX}")
        parts = list(_BUDGET_PART.finditer(text))
        if not text or "".join(p.group(0) for p in parts) != text or any(p.group(2) not in _UNITS for p in parts):
            raise RecipeError(f"--budget {value!r}: not a duration. {_BUDGET_FIX}")
        if len(parts) > 1 and not all(p.group(2) for p in parts):  # "1h30": 30 what?
            raise RecipeError(f"--budget {value!r}: give every number its unit (a bare number is seconds only "
                              f"alone). {_BUDGET_FIX}")
        seconds = sum(float(p.group(1)) * _UNITS[p.group(2)] for p in parts)
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise RecipeError(f"--budget {value!r}: must be a positive duration. {_BUDGET_FIX}")
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
    unused_labels: str = "error"
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
        for name, low, fix in (("seeds", 1, "2 or more measure the seed noise"), ("finalists", 0, "0 fine-tunes "
                               "the baseline only"), ("seed", 0, "any integer >= 0"), ("max_epochs", 1, "leave it out "
                               "for the rules' epochs")):
            value = getattr(self, name)
            if name == "max_epochs" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise RecipeError(f"--{name.replace('_', '-')} ({name}) {value!r}: must be an integer >= {low}. "
                                  f"Fix: {fix}")
        if self.device not in DEVICES:
            raise RecipeError(f"--device {self.device!r}: choose one of {', '.join(DEVICES)}")
        if not 0.0 < float(self.test_fraction) < 0.5:
            raise RecipeError(f"test_fraction={self.test_fraction!r}: must be in (0, 0.5), e.g. 0.15")
        for name, value in (("empty_text", self.empty_text), ("unused_labels", self.unused_labels)):
            if value not in ("error", "drop"):
                raise DataError(f"{name}={value!r}: choose 'error' or 'drop'")

    def fingerprint(self) -> dict[str, Any]:
        """The options that change the result (the data's own digest is added by the caller)."""
        task = self.task
        if isinstance(task, (str, os.PathLike)) and Path(task).is_file():
            task = Path(task).read_text(encoding="utf-8")  # a task.json path: its content matters
        elif hasattr(task, "to_dict"):
            task = task.to_dict()
        keep = ("model", "budget_s", "seeds", "text_column", "label_column", "label_sep", "empty_text",
                "seed", "test_fraction", "finalists", "max_epochs")
        out = {"task": task, **{k: getattr(self, k) for k in keep}}
        if self.unused_labels != "error":  # absent at its default: fits recorded before the option continue
            out["unused_labels"] = self.unused_labels
        return out

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
