"""Save and load a :class:`TailtuneClassifier` as a folder: safetensors only, never pickle.

Folder layout (``model/`` of a run directory)::

    model.safetensors     all weights (encoder + head + projection); shared tensors stored once
    tailtune_model.json   format version, encoder config dict, head config, pooling, projection, TaskSpec
    config.json           the encoder's transformers config
    tokenizer files       whatever ``tokenizer.save_pretrained`` writes

:func:`load_classifier` rebuilds the encoder with ``AutoModel.from_config`` (nothing is downloaded)
and reads only ``model.safetensors``; a pickle-based file (``pytorch_model.bin``, ``*.pt``, ``*.pkl``)
is never opened.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from transformers import AutoConfig, AutoTokenizer

from tailtune import __version__
from tailtune.data.task import TaskSpec
from tailtune.errors import RunDirError
from tailtune.models.classifier import TailtuneClassifier, load_encoder, needs_remote_code
from tailtune.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text

WEIGHTS_NAME = "model.safetensors"
META_NAME = "tailtune_model.json"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_ALIAS_KEY = "tailtune_aliases"
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.txt", "spiece.model", "vocab.json")


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.device.type, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())


def state_dict_for_safetensors(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Split ``model.state_dict()`` into unique contiguous CPU tensors and ``{alias: kept_name}``.

    Tied/shared parameters (one storage under several names) are stored once; safetensors refuses
    shared storage otherwise.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in model.state_dict().items():
        key = _storage_key(t)
        if t.numel() > 0 and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().to("cpu").contiguous().clone()
    return tensors, aliases


def save_classifier(model: TailtuneClassifier, tokenizer: Any, directory: str | os.PathLike) -> Path:
    """Write ``model`` and ``tokenizer`` to ``directory`` (created; existing files replaced atomically).

    Writes ``model.safetensors``, ``tailtune_model.json``, ``config.json`` and the tokenizer files.
    ``tokenizer`` may be ``None`` (then no tokenizer files are written; load with
    ``load_tokenizer=False``). A ``torch.compile``d or DDP-wrapped classifier is unwrapped first, so the
    weight names never carry ``_orig_mod.``/``module.`` prefixes.
    """
    # unwrap torch.compile (OptimizedModule._orig_mod) and DDP/accelerate wrappers (.module)
    for attr in ("_orig_mod", "module", "_orig_mod"):
        if not isinstance(model, TailtuneClassifier) and isinstance(getattr(model, attr, None), torch.nn.Module):
            model = getattr(model, attr)
    if not isinstance(model, TailtuneClassifier):
        raise TypeError(f"model must be a TailtuneClassifier, got {type(model).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tokenizer is not None:
        # save into a scratch folder beside the target, then move each file atomically
        with tempfile.TemporaryDirectory(prefix=".tok-", dir=directory) as tmp:
            tokenizer.save_pretrained(tmp)
            for f in sorted(Path(tmp).iterdir()):
                if f.is_file():
                    os.replace(f, directory / f.name)
    encoder_config = model.encoder.config
    atomic_write_text(directory / CONFIG_NAME, encoder_config.to_json_string(use_diff=False))
    tensors, aliases = state_dict_for_safetensors(model)
    metadata = {"format": "pt", _ALIAS_KEY: json.dumps(aliases, sort_keys=True)}
    atomic_write_bytes(directory / WEIGHTS_NAME, st_save(tensors, metadata=metadata))
    task = model.task
    meta = {
        "format_version": FORMAT_VERSION,
        "tailtune_version": __version__,
        "encoder": {
            "name": model.name,
            "model_type": getattr(encoder_config, "model_type", None),
            "class": type(model.encoder).__name__,
            "config": encoder_config.to_dict(),
            "attn_implementation": getattr(encoder_config, "_attn_implementation", None),
        },
        "head": model.head_config(),
        "pooling": model.pooling,
        "projection": {"dim": model.projection_dim} if model.projection_dim else None,
        "task": task.to_dict() if hasattr(task, "to_dict") else dict(task),
    }
    atomic_write_json(directory / META_NAME, meta)
    return directory


def _task_from_dict(d: dict[str, Any]):
    return TaskSpec.from_dict(d)


def _pickle_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix in _PICKLE_SUFFIXES)


def load_classifier(
    directory: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
    load_tokenizer: bool = True,
) -> tuple[TailtuneClassifier, Any]:
    """Rebuild a classifier saved by :func:`save_classifier`; returns ``(model, tokenizer)``.

    Nothing is downloaded: the encoder is built from the saved ``config.json`` with
    ``AutoModel.from_config`` and filled from ``model.safetensors`` (strict: every key must match).
    The model is returned in ``eval()`` mode on ``device`` in ``dtype`` (float32 by default, the
    right choice for further training). ``trust_remote_code`` is never enabled unless passed.

    Raises:
        RunDirError: the folder, ``tailtune_model.json``, ``config.json`` or ``model.safetensors``
            is missing or corrupt (pickle weights are refused, never loaded).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RunDirError(f"{directory}: model folder not found. Fix: pass the model/ folder of a tailtune run")
    meta = _read_meta(directory)
    weights = _weights_file(directory)
    config = _encoder_config(directory, meta, trust_remote_code=trust_remote_code)
    state, file_meta = _read_weights(weights)
    aliases = json.loads(file_meta.get(_ALIAS_KEY, "{}"))
    head = meta["head"]
    task = _task_from_dict(meta["task"])
    attn = (meta.get("encoder") or {}).get("attn_implementation")
    encoder = load_encoder(
        str(directory),
        config=config,
        attn_implementation=attn if attn in ("sdpa", "eager") else "sdpa",
        trust_remote_code=trust_remote_code,
        dtype=dtype,
    )
    model = TailtuneClassifier(
        encoder,
        task,
        pooling=head.get("pooling", meta.get("pooling", "mean")),
        dropout=float(head.get("dropout", 0.0)),
        projection_dim=head.get("projection_dim"),
        name=head.get("name"),
    )
    _load_state(model, state, aliases, weights, dtype=dtype)
    model.freeze(embeddings=bool(head.get("freeze_embeddings")), layers=int(head.get("freeze_layers") or 0))
    model.to(device=device, dtype=dtype)
    model.eval()
    tokenizer = _load_saved_tokenizer(directory, trust_remote_code=trust_remote_code) if load_tokenizer else None
    return model, tokenizer


def _read_meta(directory: Path) -> dict:
    """``tailtune_model.json`` (with ``head`` and ``task``), checked for a supported format version."""
    meta_path = directory / META_NAME
    if not meta_path.is_file():
        raise RunDirError(
            f"{meta_path}: missing. Fix: this folder was not written by tailtune's save_classifier; "
            "re-run training or point to the run's model/ folder"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["head"], meta["task"]  # noqa: B018 - both must be present
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunDirError(f"{meta_path}: corrupt ({exc}). Fix: re-save the model with save_classifier") from exc
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise RunDirError(
            f"{meta_path}: format_version {meta['format_version']} is newer than this tailtune supports "
            f"({FORMAT_VERSION}). Fix: upgrade tailtune"
        )
    return meta


def _weights_file(directory: Path) -> Path:
    """``model.safetensors`` (a folder with pickle weights only is refused, naming them)."""
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        pickles = _pickle_files(directory)
        hint = (
            f" Found {', '.join(pickles)}, which tailtune will not unpickle (arbitrary code execution)."
            if pickles
            else ""
        )
        raise RunDirError(
            f"{weights}: missing.{hint} Fix: re-save the model with tailtune (save_classifier writes "
            "safetensors), or convert the weights to safetensors from a trusted environment"
        )
    return weights


def _encoder_config(directory: Path, meta: dict, *, trust_remote_code: bool):
    """The encoder's config from ``config.json`` (or the copy in ``tailtune_model.json``)."""
    config_path = directory / CONFIG_NAME
    try:
        if config_path.is_file():
            return AutoConfig.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
        enc = meta["encoder"]
        return AutoConfig.for_model(enc["model_type"], **enc["config"])
    except (OSError, ValueError, KeyError) as exc:
        if needs_remote_code(exc):
            raise RunDirError(
                f"{config_path}: the encoder needs its own Python code (auto_map), and tailtune does not run "
                "code from a model folder unless asked; none of it was run. Fix: only for a model you trust, "
                "pass --trust-remote-code to `tailtune predict` / `tailtune evaluate --recompute` (Python: "
                "tailtune.load(run, trust_remote_code=True))"
            ) from None
        raise RunDirError(
            f"{config_path}: cannot rebuild the encoder config ({exc}). Fix: restore config.json from the "
            "run's model/ folder"
        ) from exc


def _read_weights(weights: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state, file metadata)`` of a safetensors file (never a pickle)."""
    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            file_meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iterator
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunDirError(
            f"{weights}: not a readable safetensors file ({exc}). Fix: re-save the model with save_classifier"
        ) from exc
    return state, file_meta


def _load_state(model: TailtuneClassifier, state: dict, aliases: dict, weights: Path, *, dtype) -> None:
    """Fill ``model`` from ``state`` (shared tensors restored from their aliases; strict keys)."""
    for alias, kept in aliases.items():
        if kept in state:
            state[alias] = state[kept]
    missing, unexpected = _compare_keys(model, state)
    if missing or unexpected:
        raise RunDirError(
            f"{weights}: does not match {META_NAME} (missing {missing[:5]}, unexpected {unexpected[:5]}). "
            "Fix: keep model.safetensors and tailtune_model.json from the same save"
        )
    try:
        model.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise RunDirError(
            f"{weights}: shapes do not match {META_NAME} ({exc}). Fix: keep the files of one save together"
        ) from exc


def _load_saved_tokenizer(directory: Path, *, trust_remote_code: bool):
    """The tokenizer saved beside the weights (never one elsewhere that config.json names)."""
    try:
        if not any((directory / n).is_file() for n in _TOKENIZER_FILES):
            # AutoTokenizer would otherwise follow config.json's _name_or_path elsewhere
            raise OSError(f"none of {', '.join(_TOKENIZER_FILES)} in the folder")
        return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise RunDirError(
            f"{directory}: tokenizer files missing or unreadable ({exc}). Fix: save the model with "
            "save_classifier(model, tokenizer, dir) so the tokenizer is stored beside the weights"
        ) from exc


def _compare_keys(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    expected = set(model.state_dict())
    got = set(state)
    return sorted(expected - got), sorted(got - expected)
