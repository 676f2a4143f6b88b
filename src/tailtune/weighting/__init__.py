"""tailtune.weighting: class weights (one owner), positive weights, per-sample weights.

The scheme names and defaults (:mod:`tailtune.weighting.schemes`) and the aspect-cell override keys
(:mod:`tailtune.weighting.cells`) import without torch, so the recipe schema can use them; the
functions (:mod:`~tailtune.weighting.classes`, :mod:`~tailtune.weighting.sample_weights`) load torch
on first use.
"""

from tailtune.weighting.cells import CELL_SEP, cell_key, cell_overrides
from tailtune.weighting.schemes import DEFAULT_BETA, DEFAULT_MIN_WEIGHT, SCHEMES

__all__ = [
    "CELL_SEP",
    "DEFAULT_BETA",
    "DEFAULT_MIN_WEIGHT",
    "SCHEMES",
    "aspect_class_weights",
    "cell_key",
    "cell_overrides",
    "class_weights",
    "combine_sample_weights",
    "confidence_weights",
    "label_counts",
    "length_weights",
    "pos_weight",
]

_LAZY = {
    "aspect_class_weights": "tailtune.weighting.classes",
    "class_weights": "tailtune.weighting.classes",
    "label_counts": "tailtune.weighting.classes",
    "pos_weight": "tailtune.weighting.classes",
    "combine_sample_weights": "tailtune.weighting.sample_weights",
    "confidence_weights": "tailtune.weighting.sample_weights",
    "length_weights": "tailtune.weighting.sample_weights",
}


def __getattr__(name: str):  # lazy so that importing tailtune.recipe does not import torch
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tailtune.weighting' has no attribute {name!r}")
