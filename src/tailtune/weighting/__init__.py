"""tailtune.weighting: class weights (one owner), positive weights, per-sample weights."""

from tailtune.weighting.class_weights import SCHEMES, class_weights, label_counts, pos_weight
from tailtune.weighting.sample_weights import combine_sample_weights, confidence_weights, length_weights

__all__ = [
    "SCHEMES",
    "class_weights",
    "combine_sample_weights",
    "confidence_weights",
    "label_counts",
    "length_weights",
    "pos_weight",
]
