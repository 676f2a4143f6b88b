"""Frozen-encoder sentence embeddings, computed once and cached on disk.

Screening trains many small heads on the SAME inputs, so the expensive part — running the encoder —
happens once per (model, texts, max_length, pooling) and is stored as a safetensors file.

Encoding (:func:`encode_texts`): tokenise every text once (fast tokenizer, truncation to
``max_length``, no padding), sort by token count, run batches of similar length under
``torch.inference_mode`` (padding only to the longest text of each batch, so short tweets do not pay
for long ones), mean-pool the last hidden states over the attention mask
(:func:`tailtune.models.classifier.masked_mean_pool`, as ``model.pooling: mean``), and put the rows
back in the input order.

Precision: ``"auto"`` runs the encoder under ``torch.autocast(dtype=bfloat16)`` on a CUDA GPU that
supports bfloat16 and in float32 on a CPU; ``"fp32"``/``"bf16"`` force one. On the 2-core
development CPU (AVX512-BF16) bf16 autocast gave no consistent speed-up over float32 for MiniLM on
tweets (183-242 vs 198-228 texts/s, batch 64, quiet machine) with a mean cosine similarity of
0.99998 to the float32 embeddings, so float32 stays the CPU default. The output is float32.

Cache key (:func:`cache_key`): SHA-256 over the model's files (name and content of every file in
its folder; for a name that is not a local folder, the name itself), the texts (each split's name,
count and every text, length-prefixed), ``max_length``, the pooling and the precision used. Any change gives a new key;
the file is ``<cache_dir>/<key>.safetensors`` holding one float32 tensor per split plus metadata
(model, max_length, pooling, counts) in the safetensors header. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tailtune.errors import OptionError, check_int
from tailtune.utils.io import atomic_write_bytes

__all__ = ["CachedEmbeddings", "cache_key", "default_cache_dir", "encode_texts", "get_embeddings", "model_digest",
           "resolve_precision"]

DEFAULT_MAX_LENGTH = 128
POOLINGS = ("mean", "cls")
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str) -> str:
    """``"auto"`` -> ``"bf16"`` on a CUDA device with bfloat16 support, else ``"fp32"``."""
    if precision not in PRECISIONS:
        raise OptionError(f"precision={precision!r} must be one of {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"


def default_cache_dir() -> Path:
    """``$TAILTUNE_CACHE/embeddings``, else ``$XDG_CACHE_HOME/tailtune/embeddings`` (``~/.cache``)."""
    root = os.environ.get("TAILTUNE_CACHE")
    if root:
        return Path(root) / "embeddings"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tailtune" / "embeddings"


def model_digest(model: str | os.PathLike) -> str:
    """SHA-256 of a model folder's files (sorted relative names + contents), or of the name itself
    when it is not a local folder (a hub id: its files are not ours to read)."""
    path = Path(model)
    h = hashlib.sha256()
    if not path.is_dir():
        h.update(f"name:{model}".encode())
        return h.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        h.update(rel.encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def cache_key(model_hash: str, splits: Mapping[str, Sequence[str]], *, max_length: int, pooling: str,
              precision: str = "fp32") -> str:
    """SHA-256 (hex) of the model digest, every split's texts (in order), ``max_length``, pooling
    and precision."""
    h = hashlib.sha256()
    h.update(f"tailtune-embeddings-v1|{model_hash}|{int(max_length)}|{pooling}|{precision}".encode())
    for name in sorted(splits):
        texts = splits[name]
        h.update(f"|split:{name}:{len(texts)}".encode())
        for text in texts:
            b = str(text).encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    return h.hexdigest()


def check_threads(threads: int | None) -> int | None:
    """``threads`` (torch intra-op threads) as a positive int or ``None`` (torch's setting), else OptionError."""
    return None if threads is None else check_int("threads", threads)


def _check_options(max_length: int, batch_size: int, pooling: str) -> None:
    check_int("max_length", max_length, example=128)
    check_int("batch_size", batch_size, example=64)
    if pooling not in POOLINGS:
        raise OptionError(f"pooling={pooling!r} must be one of {list(POOLINGS)}")


def encode_texts(
    texts: Sequence[str],
    *,
    encoder,
    tokenizer,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = 64,
    pooling: str = "mean",
    precision: str = "fp32",
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Pooled last-layer states of ``texts`` as a float32 ``(N, H)`` array, rows in input order.

    Args:
        encoder: a Hugging Face ``AutoModel`` (put in ``eval()`` mode here).
        tokenizer: its tokenizer.
        max_length: truncation length in tokens.
        batch_size: texts per forward pass (batches hold texts of similar length).
        pooling: ``"mean"`` (masked mean) or ``"cls"`` (first token).
        precision: ``"fp32"`` or ``"bf16"`` (autocast on the encoder's device); ``"auto"`` as
            :func:`resolve_precision`.
        progress: called with the number of texts done after each batch.

    Shape:
        output ``(len(texts), hidden_size)``.
    """
    import torch

    from tailtune.models.classifier import masked_mean_pool

    _check_options(max_length, batch_size, pooling)
    n = len(texts)
    hidden = getattr(getattr(encoder, "config", None), "hidden_size", None)
    if n == 0:
        return np.zeros((0, int(hidden or 0)), dtype=np.float32)
    from tailtune.models.truncation import tokenize_truncated

    enc = tokenize_truncated(tokenizer, list(map(str, texts)), max_length=max_length, padding=False)
    ids = enc["input_ids"]
    types = enc.get("token_type_ids")
    order = np.argsort(np.fromiter((len(x) for x in ids), dtype=np.int64, count=n), kind="stable")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoder.eval()
    device = next(encoder.parameters()).device
    precision = resolve_precision(precision, device.type)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    out: np.ndarray | None = None
    with torch.inference_mode(), autocast:
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            width = max(len(ids[i]) for i in rows)
            input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, i in enumerate(rows):
                seq = ids[i]
                input_ids[j, : len(seq)] = torch.as_tensor(seq)
                mask[j, : len(seq)] = 1
            kwargs = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
            if types is not None:
                tt = torch.zeros_like(input_ids)
                for j, i in enumerate(rows):
                    tt[j, : len(types[i])] = torch.as_tensor(types[i])
                kwargs["token_type_ids"] = tt.to(device)
            states = encoder(**kwargs).last_hidden_state.float()
            pooled = masked_mean_pool(states, kwargs["attention_mask"]) if pooling == "mean" else states[:, 0]
            pooled = pooled.cpu().numpy()
            if out is None:
                out = np.empty((n, pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
            if progress is not None:
                progress(len(rows))
    assert out is not None
    return out


@dataclass
class CachedEmbeddings:
    """Embeddings per split, where they are stored, and whether this call found them cached."""

    arrays: dict[str, np.ndarray]
    path: Path
    key: str
    hit: bool
    seconds: float
    meta: dict = field(default_factory=dict)


def _load(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    arrays = load_file(str(path))
    with safe_open(str(path), framework="numpy") as f:
        meta = dict(f.metadata() or {})
    return arrays, meta


def get_embeddings(
    splits: Mapping[str, Sequence[str]],
    *,
    model: str | os.PathLike,
    max_length: int = DEFAULT_MAX_LENGTH,
    pooling: str = "mean",
    batch_size: int = 64,
    precision: str = "auto",
    device: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    threads: int | None = None,
    show_progress: bool = True,
    console=None,
) -> CachedEmbeddings:
    """Embeddings of every split's texts with the frozen encoder ``model``, from the cache when present.

    Args:
        splits: ``{split name: texts}``.
        model: a local model folder or a hub id (the packaged all-MiniLM-L6-v2 id resolves offline).
        max_length, pooling, batch_size, precision: see :func:`encode_texts`.
        device: ``"cuda"`` when a GPU is visible, else ``"cpu"`` (default).
        cache_dir: where ``<key>.safetensors`` lives (default :func:`default_cache_dir`).
        threads: ``torch.set_num_threads`` while encoding (default: leave torch's setting).
        show_progress: a rich progress bar while encoding.

    Example:
        >>> emb = get_embeddings({"train": ["a b", "c"]}, model="sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> emb.arrays["train"].shape, emb.hit  # doctest: +SKIP
        ((2, 384), False)
    """
    from tailtune.models.classifier import resolve_encoder_name

    _check_options(max_length, batch_size, pooling)
    start = time.perf_counter()
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(precision, device)
    resolved = resolve_encoder_name(str(model))
    key = cache_key(model_digest(resolved), splits, max_length=max_length, pooling=pooling, precision=precision)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / f"{key}.safetensors"
    if path.exists():
        try:
            arrays, meta = _load(path)
        except Exception:  # a damaged cache file is recomputed, never trusted
            arrays = None
        if arrays is not None and all(
            name in arrays and arrays[name].shape[0] == len(texts) for name, texts in splits.items()
        ):
            return CachedEmbeddings(arrays, path, key, True, time.perf_counter() - start, meta)

    from tailtune.models.classifier import load_encoder, load_tokenizer

    previous = torch.get_num_threads()
    if check_threads(threads) is not None:
        torch.set_num_threads(threads)
    try:
        tokenizer = load_tokenizer(str(model))
        encoder = load_encoder(resolved).to(device)
        total = sum(len(t) for t in splits.values())
        arrays: dict[str, np.ndarray] = {}
        if show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=False) as bar:
                task_id = bar.add_task("embedding", total=total)
                for name, texts in splits.items():
                    bar.update(task_id, description=f"embedding {name}")
                    arrays[name] = encode_texts(texts, encoder=encoder, tokenizer=tokenizer, max_length=max_length,
                                                batch_size=batch_size, pooling=pooling,
                                                precision=precision, progress=lambda k: bar.advance(task_id, k))
        else:
            for name, texts in splits.items():
                arrays[name] = encode_texts(texts, encoder=encoder, tokenizer=tokenizer, max_length=max_length,
                                            batch_size=batch_size, pooling=pooling, precision=precision)
    finally:
        torch.set_num_threads(previous)
    meta = {
        "model": str(model),
        "resolved": str(resolved),
        "max_length": str(max_length),
        "pooling": pooling,
        "precision": precision,
        "counts": json.dumps({k: len(v) for k, v in splits.items()}),
    }
    from safetensors.numpy import save

    atomic_write_bytes(path, save({k: np.ascontiguousarray(v) for k, v in arrays.items()}, metadata=meta))
    return CachedEmbeddings(arrays, path, key, False, time.perf_counter() - start, meta)
