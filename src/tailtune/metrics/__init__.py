"""tailtune.metrics: pure numpy/scikit-learn metrics and decoding (no torch).

Contract: docs/architecture.md ("Metrics"); definitions: docs/evaluation.md.

- :func:`decode` logits -> decisions (thresholds for binary/multilabel, logit biases for
  multiclass/aspects); :func:`probabilities`, :func:`sigmoid`, :func:`softmax`;
- :func:`classification_report` every metric of one split as a JSON-ready dict;
- calibration: :func:`expected_calibration_error`, :func:`reliability_diagram`, :func:`brier_score`,
  :func:`confidence_pairs`; :func:`hierarchy_violations` for multilabel hierarchies;
- :func:`item_counts` / :func:`metric_from_counts`: macro-F1 recomputed exactly from per-item counts
  (paired tests, out-of-bag checks);
- label groups (``TaskSpec.groups``): ``classification_report`` adds ``groups`` and ``macro_f1@<group>``;
  :func:`group_scores` names a ``groups`` table's scores (:mod:`tailtune.metrics.groups`).
"""

from tailtune.metrics.calibration import (
    brier_score,
    confidence_pairs,
    expected_calibration_error,
    reliability_diagram,
)
from tailtune.metrics.classification import classification_report, hierarchy_violations, macro_f1_score
from tailtune.metrics.counts import item_counts, metric_from_counts
from tailtune.metrics.decoding import decode, probabilities, sigmoid, softmax, to_3d
from tailtune.metrics.groups import group_scores

__all__ = [
    "brier_score",
    "classification_report",
    "confidence_pairs",
    "decode",
    "expected_calibration_error",
    "group_scores",
    "hierarchy_violations",
    "item_counts",
    "macro_f1_score",
    "metric_from_counts",
    "probabilities",
    "reliability_diagram",
    "sigmoid",
    "softmax",
    "to_3d",
]
