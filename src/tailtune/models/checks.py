"""Checks of an encoder against what a recipe asks of it, run when the model is loaded.

- :func:`position_limit` / :func:`check_max_length`: the longest input an encoder's position
  embeddings can index. ``data.max_length`` above it would crash at the first long batch with a
  raw tensor-size ``RuntimeError``; it is a :class:`~tailtune.errors.RecipeError` naming the limit and
  the fix instead (``train`` at model load, ``lint`` when the encoder's ``config.json`` is readable).
- :func:`encoder_load_error`: a corrupt or incomplete weight file in an encoder folder (torn
  safetensors header, truncated file, a state dict that does not fit the config) becomes one
  RecipeError naming the folder and the fix, not a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tailtune.errors import RecipeError

__all__ = ["check_encoder_max_length", "check_max_length", "encoder_load_error", "position_limit", "position_limit_of_folder"]

#: model types whose position ids start after the padding index (RoBERTa's scheme): the usable
#: positions are ``max_position_embeddings - pad_token_id - 1`` (514 -> 512)
_PADDING_OFFSET_TYPES = frozenset({
    "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text", "ibert",
    "mpnet", "roberta-prelayernorm", "xmod", "luke", "markuplm", "bros",
})


def _get(config: Any, key: str, default=None):
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)


def position_limit(config: Any) -> int | None:
    """The most tokens one input may have for this encoder config (object or ``config.json`` dict),
    or None when its positions are not bounded by a table (relative or rotary positions)."""
    if _get(config, "position_biased_input") is False:  # DeBERTa-v2/v3: relative positions only
        return None
    if _get(config, "position_embedding_type") in ("rotary", "alibi", "none"):
        return None
    limit = _get(config, "max_position_embeddings")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        return None
    if _get(config, "model_type") in _PADDING_OFFSET_TYPES:
        pad = _get(config, "pad_token_id")
        limit -= (int(pad) if isinstance(pad, int) else 1) + 1
    return limit


def check_max_length(config: Any, max_length: int | None, *, name: str, field: str = "data.max_length") -> None:
    """RecipeError when ``max_length`` exceeds the encoder's :func:`position_limit`."""
    limit = position_limit(config)
    if limit is None or max_length is None or int(max_length) <= limit:
        return
    raise RecipeError(
        f"{field} = {int(max_length)}: the encoder {name} has {limit} positions, so a text longer than "
        f"{limit} tokens cannot be encoded. Fix: set {field}: {limit} (or less), e.g. --set {field}={limit}"
    )


def check_encoder_max_length(model_cfg: Any, max_length: int | None, *, field: str = "data.max_length") -> None:
    """:func:`check_max_length` for a recipe ``model`` section, from the encoder's config alone (read
    before any weight is loaded; an unreadable config is left to the model loader's own error)."""
    from transformers import AutoConfig

    from tailtune.models.classifier import model_config_dict, resolve_encoder_name

    cfg = model_config_dict(model_cfg)
    name = str(cfg["name"])
    try:
        config = AutoConfig.from_pretrained(resolve_encoder_name(name), trust_remote_code=bool(cfg["trust_remote_code"]))
    except Exception:  # noqa: BLE001 - missing/odd config: build_classifier reports it with the fix
        return
    check_max_length(config, max_length, name=name, field=field)


def position_limit_of_folder(name: str | os.PathLike) -> int | None:
    """:func:`position_limit` from a local encoder folder's ``config.json`` (None when unreadable)."""
    path = Path(name) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return position_limit(config) if isinstance(config, dict) else None


def encoder_load_error(name: str, path: str, exc: BaseException) -> RecipeError | None:
    """The RecipeError for an encoder whose weight files cannot be read, or None for anything else.

    Recognised: safetensors' own errors (torn header, truncated buffer), a truncated or garbled
    pickle (``EOFError``, ``UnpicklingError``) and ``RuntimeError``s from loading a state dict
    (size mismatch, a corrupt zip archive); out of memory is not one of them.
    """
    import torch

    try:
        from safetensors import SafetensorError
    except ImportError:  # pragma: no cover - a dependency
        SafetensorError = ()  # noqa: N806
    if isinstance(exc, torch.OutOfMemoryError):
        return None
    unpickling = "UnpicklingError" in {cls.__name__ for cls in type(exc).__mro__}  # by name: no pickle import
    if not (isinstance(exc, (SafetensorError, EOFError, RuntimeError)) or unpickling):
        return None
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return RecipeError(
        f"model.name = {name!r}: the encoder's weights in {path} cannot be read ({type(exc).__name__}: "
        f"{detail[:200]}); the weight file is corrupt or incomplete, or does not match config.json. Fix: copy "
        "or download the model folder again (compare the file size with the original), or point model.name "
        "at an intact copy"
    )
