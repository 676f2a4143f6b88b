"""tailtune: fine-tune transformer text classifiers on imbalanced data, with evidence."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(run_dir):
    """Load a run directory for prediction: ``tailtune.load(run_dir).predict(texts)``."""
    from tailtune.evaluation.predictor import Predictor

    return Predictor.from_run_dir(run_dir)
