"""tailtune.evaluation: threshold/bias tuning, temperature scaling, ensembles, hierarchy-consistent
decoding and the :class:`Predictor` (``tailtune.load(run_dir).predict(texts)``).

Metrics themselves live in :mod:`tailtune.metrics` (below training). Guide: docs/evaluation.md.
"""

from tailtune.evaluation.calibration import calibration_summary, fit_temperature, negative_log_likelihood
from tailtune.evaluation.constraints import HIERARCHY_MODES, enforce_hierarchy
from tailtune.evaluation.postprocess import PostProcess
from tailtune.evaluation.run_dir import load_predictions, open_run
from tailtune.evaluation.runs import evaluate_run, tune_run
from tailtune.evaluation.tuning import (
    TuneResult,
    check_tuning_split,
    tune_biases,
    tune_binary_threshold,
    tune_decision_rule,
    tune_multilabel_thresholds,
)

__all__ = [
    "HIERARCHY_MODES",
    "PostProcess",
    "Predictor",
    "TuneResult",
    "build_ensemble",
    "calibration_summary",
    "check_tuning_split",
    "enforce_hierarchy",
    "evaluate_run",
    "fit_temperature",
    "load_predictions",
    "negative_log_likelihood",
    "open_run",
    "tune_binary_threshold",
    "tune_biases",
    "tune_decision_rule",
    "tune_multilabel_thresholds",
    "tune_run",
]


def __getattr__(name):  # torch-importing parts load lazily
    if name == "Predictor":
        from tailtune.evaluation.predictor import Predictor

        return Predictor
    if name == "build_ensemble":
        from tailtune.evaluation.ensemble import build_ensemble

        return build_ensemble
    raise AttributeError(f"module 'tailtune.evaluation' has no attribute {name!r}")
