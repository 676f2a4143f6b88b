"""tailtune.models: a Hugging Face encoder with a head per task kind, saved as safetensors only.

Public API: :class:`TailtuneClassifier`, :class:`ClassifierOutput`, :func:`build_classifier`,
:func:`save_classifier`, :func:`load_classifier`, :func:`load_tokenizer`,
:func:`resolve_encoder_name`, :func:`masked_mean_pool`, :data:`MODEL_DEFAULTS`.
"""

from __future__ import annotations

from tailtune.models.classifier import (
    MODEL_DEFAULTS,
    POOLINGS,
    ClassifierOutput,
    ProjectionHead,
    TailtuneClassifier,
    build_classifier,
    encoder_layers,
    load_tokenizer,
    masked_mean_pool,
    resolve_encoder_name,
)
from tailtune.models.serialization import (
    META_NAME,
    WEIGHTS_NAME,
    load_classifier,
    save_classifier,
    state_dict_for_safetensors,
)

__all__ = [
    "MODEL_DEFAULTS",
    "META_NAME",
    "POOLINGS",
    "WEIGHTS_NAME",
    "ClassifierOutput",
    "ProjectionHead",
    "TailtuneClassifier",
    "build_classifier",
    "encoder_layers",
    "load_classifier",
    "load_tokenizer",
    "masked_mean_pool",
    "resolve_encoder_name",
    "save_classifier",
    "state_dict_for_safetensors",
]
