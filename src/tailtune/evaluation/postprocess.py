"""The decision rule that travels with a model: ``postprocess.json``.

Fields (all optional; ``null`` means "the default rule"):

====================  ===========================================================================
``temperature``       float, or (multilabel, per-label) a list of C floats; logits are divided by it
``thresholds``        binary: one probability; multilabel: C probabilities (``p >= t`` is positive)
``biases``            multiclass: C logit offsets; aspects: A rows of P + 1 offsets
``hierarchy_mode``    multilabel with a hierarchy: ``add_parent`` or ``drop_child``
``tuned_on``          the split the rule was tuned on (always ``validation``)
``min_support``       the minimum-support fallback used by threshold tuning
``validation``        ``{"default": macro_f1, "tuned": macro_f1, "gain": ...}`` at tuning time
``calibration``       ``{"nll_before", "nll_after", "ece_before", "ece_after", ...}``
====================  ===========================================================================

The rule is applied in this order: ``z = logits / temperature``; probabilities from ``z``;
decisions from ``z`` with thresholds (on the probabilities) or biases (added to ``z``); then the
hierarchy repair. See docs/evaluation.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.errors import RunDirError
from tailtune.evaluation.constraints import HIERARCHY_MODES, enforce_hierarchy
from tailtune.metrics import decode, probabilities
from tailtune.metrics._task import as_task
from tailtune.utils.io import atomic_write_json

__all__ = ["PostProcess", "probs_to_logits"]


def probs_to_logits(probs: np.ndarray, task: Any) -> np.ndarray:
    """Logits whose sigmoid/softmax gives ``probs`` back: ``logit(p)`` or ``log(p)``, shape ``(N, num_outputs)``."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    if task_kind(as_task(task)).sigmoid:
        z = np.log(p) - np.log1p(-p)
        return z.reshape(p.shape[0], -1)
    return np.log(p).reshape(p.shape[0], -1)


@dataclass
class PostProcess:
    """Temperature, thresholds/biases and hierarchy repair; ``apply`` turns logits into decisions."""

    temperature: float | list[float] | None = None
    thresholds: float | list[float] | None = None
    biases: list[float] | list[list[float]] | None = None
    hierarchy_mode: str | None = None
    tuned_on: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hierarchy_mode is not None and self.hierarchy_mode not in HIERARCHY_MODES:
            raise ValueError(
                f"hierarchy_mode must be one of {list(HIERARCHY_MODES)} or None, got {self.hierarchy_mode!r}"
            )
        if self.temperature is not None:
            t = np.asarray(self.temperature, dtype=np.float64)
            if np.any(~np.isfinite(t)) or np.any(t <= 0):
                raise ValueError(f"temperature must be positive, got {self.temperature!r}")

    # -------------------------------------------------------------------------------- apply
    def scaled(self, logits: np.ndarray) -> np.ndarray:
        """``logits / temperature`` (float64)."""
        z = np.asarray(logits, dtype=np.float64)
        if self.temperature is None:
            return z
        return z / np.asarray(self.temperature, dtype=np.float64)

    def probabilities(self, logits: np.ndarray, task: Any) -> np.ndarray:
        return probabilities(self.scaled(logits), task)

    def decide(self, logits: np.ndarray, task: Any) -> np.ndarray:
        """Decisions under this rule (shapes as :func:`tailtune.metrics.decode`)."""
        task = as_task(task)
        pred = decode(self.scaled(logits), task, thresholds=self.thresholds, biases=self.biases)
        if task.kind == "multilabel" and self.hierarchy_mode:
            pred = enforce_hierarchy(pred, task, mode=self.hierarchy_mode)
        return pred

    @property
    def is_default(self) -> bool:
        return self.temperature is None and self.thresholds is None and self.biases is None and not self.hierarchy_mode

    # -------------------------------------------------------------------------------- io
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "postprocess.json") -> PostProcess:
        if not isinstance(d, dict):
            raise RunDirError(f"{source}: must hold a JSON object, got {type(d).__name__}")
        known = {"temperature", "thresholds", "biases", "hierarchy_mode", "tuned_on"}
        extra = {k: v for k, v in d.items() if k not in known}
        try:
            return cls(**{k: d.get(k) for k in known}, extra=extra)
        except ValueError as exc:
            raise RunDirError(f"{source}: {exc}. Fix: re-run `tailtune tune` or delete the file") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> PostProcess:
        """Read ``postprocess.json``; a missing file is the default rule."""
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(
                f"{path}: not valid JSON ({exc}). Fix: re-run `tailtune tune` or delete the file"
            ) from None
        return cls.from_dict(d, source=str(path))

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_dict())

    def check(self, task: Any, *, source: str = "postprocess.json") -> None:
        """Raise :class:`RunDirError` when the rule's shapes do not fit ``task``."""
        task = as_task(task)
        try:
            decode(np.zeros((1, task.num_outputs)), task, thresholds=self.thresholds, biases=self.biases)
            if self.temperature is not None:
                probabilities(np.zeros((1, task.num_outputs)), task, temperature=self.temperature)
            if self.hierarchy_mode:
                enforce_hierarchy(np.zeros((1, task.num_outputs), dtype=int), task, mode=self.hierarchy_mode)
        except ValueError as exc:
            raise RunDirError(
                f"{source}: does not fit task.json ({exc}). Fix: re-run `tailtune tune` on this run"
            ) from None
