"""A running fit (:class:`FitContext`) and what every stage module shares: the fit folder's
sub-folder names, a shared setting of the candidates, the cost model of the probe's figures.

Its own module so that :mod:`tailtune.fit.stages` (which runs the stages in order) and the stage
modules it calls (:mod:`~tailtune.fit.stages_train`, :mod:`~tailtune.fit.stages_finish`) all import
it at module level, without an import circle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.fit.options import Budget, FitOptions
from tailtune.fit.planner import CostModel
from tailtune.fit.progress import FitProgress
from tailtune.fit.state import FitState
from tailtune.utils.rundir import TRAIN_EVAL_MAX

__all__ = ["CANDIDATES_DIR", "DATA_DIR", "HELDOUT_DIR", "FitContext", "cost_model"]

CANDIDATES_DIR = "candidates"
DATA_DIR = "data"
HELDOUT_DIR = "heldout"


@dataclass
class FitContext:
    """A running fit: its options, data, state file, budget, progress line and device."""

    opts: FitOptions
    loaded: Any
    state: FitState
    budget: Budget
    progress: FitProgress
    device: str
    bf16: bool = False
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.opts.output

    @property
    def task(self):
        return self.loaded.task

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.folder)

    def unit(self, name: str, fn, *, stage: str | None = None) -> dict[str, Any]:
        """Run ``fn`` as unit ``name`` unless it is recorded; record its result and duration."""
        if self.state.done(name):
            return self.state.result(name)
        self.progress.stage(stage or name)
        start = self.budget.now()
        result = fn()
        self.state.record(name, result, self.budget.now() - start)
        return result


def _setting(cands: dict, path: str) -> Any:
    """The value of the candidates' shared setting ``path`` (e.g. ``train.batch_size``)."""
    return next(s["value"] for s in cands["shared"] if s["path"] == path)


def cost_model(probe: dict, factor: float = 1.0) -> CostModel:
    """The planner's cost model of the probe's figures, times the first run's correction ``factor``."""
    return CostModel(train_s=probe["train_s"], eval_s=probe["eval_s"], fixed_s=probe["fixed_s"],
                     checkpoint_s=probe["checkpoint_s"], factor=factor, train_eval_max=TRAIN_EVAL_MAX)
