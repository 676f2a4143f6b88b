"""tailtune.weighting: class weights (one owner), positive weights, per-sample weights.

The scheme names and defaults live in :mod:`tailtune.weighting.schemes` (no torch).
"""

from tailtune.weighting.class_weights import class_weights, label_counts, pos_weight
from tailtune.weighting.sample_weights import combine_sample_weights, confidence_weights, length_weights
from tailtune.weighting.schemes import DEFAULT_BETA, DEFAULT_MIN_WEIGHT, SCHEMES

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_MIN_WEIGHT",
    "SCHEMES",
    "class_weights",
    "combine_sample_weights",
    "confidence_weights",
    "label_counts",
    "length_weights",
    "pos_weight",
]
