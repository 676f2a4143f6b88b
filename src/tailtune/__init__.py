"""tailtune: fine-tune transformer text classifiers on imbalanced data, with evidence."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "fit", "load"]


def load(run_dir, **options):
    """Load a run directory for prediction: ``tailtune.load(run_dir).predict(texts)``.

    ``options`` go to :meth:`tailtune.evaluation.predictor.Predictor.from_run_dir` (``device``,
    ``batch_size``, ``max_length``, ``dtype``, ``trust_remote_code`` -- off unless passed: only for a
    model whose own Python code you trust).
    """
    from tailtune.evaluation.predictor import Predictor

    return Predictor.from_run_dir(run_dir, **options)


def __getattr__(name):
    # ``tailtune.fit(data, output=...)``: the fit package is callable; imported on first use so that
    # ``import tailtune`` stays fast
    if name == "fit":
        import importlib

        return importlib.import_module("tailtune.fit")
    raise AttributeError(f"module 'tailtune' has no attribute {name!r}")
