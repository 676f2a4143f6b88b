"""``FitResult``: what :func:`tailtune.fit.fit` returns, read back from the fit folder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune import load
from tailtune.errors import RunDirError
from tailtune.fit.state import STATE_FILE

__all__ = ["FitResult"]


@dataclass
class FitResult:
    """The outcome of a fit.

    Attributes:
        output: the fit folder (run-like: ``tailtune predict/evaluate/report`` and ``tailtune.load`` take it).
        winner: the chosen candidate's name (``"baseline"`` when no challenger won outside the noise).
        decision: the decision record (comparisons with intervals, verdicts, reason).
        scores: ``{"validation": {"default", "tuned"}, "test": {"default", "tuned"} | None}`` of the
            shipped model (test scored once, after every choice).
        ensemble: whether the winner's seeds ship as an ensemble.
        paths: the fit's files (``fit_json``, ``decision_log``, ``report``, ``candidates``).
        state: the whole ``fit.json``.
    """

    output: Path
    winner: str
    decision: dict[str, Any]
    scores: dict[str, Any]
    ensemble: bool
    paths: dict[str, Path] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dir(cls, folder: str | os.PathLike) -> FitResult:
        """Read a finished fit folder."""
        folder = Path(folder)
        try:
            state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{folder}: no readable {STATE_FILE} ({exc}); is this a finished `tailtune fit` "
                              "folder?") from None
        units = {k: (v.get("result") or {}) for k, v in state.get("units", {}).items()}
        final = units.get("final") or {}
        decision = units.get("decide") or {}
        return cls(output=folder, winner=decision.get("winner", "?"), decision=decision,
                   scores={"validation": final.get("validation"), "test": final.get("test")},
                   ensemble=bool(final.get("ensemble")),
                   paths={"fit_json": folder / STATE_FILE, "decision_log": folder / "decision-log.md",
                          "report": folder / "report.html", "candidates": folder / "candidates"},
                   state=state)

    def load(self, **options):
        """The shipped model as a :class:`tailtune.evaluation.predictor.Predictor`."""
        return load(self.output, **options)

    def predict(self, texts, **options) -> list[dict]:
        """``self.load(**options).predict(texts)``."""
        return self.load(**options).predict(list(texts))
