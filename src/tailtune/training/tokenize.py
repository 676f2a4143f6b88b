"""Tokenising the splits for training (``datasets.map`` with a cheap, exact fingerprint)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from tailtune.models.truncation import RULE, tokenize_truncated
from tailtune.utils.rundir import TRAIN_EVAL_MAX

__all__ = ["tokenize_splits", "tokenizer_digest", "train_eval_subset"]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def tokenizer_digest(tokenizer, max_length) -> str:
    """What the tokenised splits depend on, hashed in milliseconds. ``datasets`` would otherwise
    fingerprint ``map``'s function by pickling the tokenizer it closes over (about 0.5 s per split)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return _digest("tailtune-tokenise-v1", RULE, type(tokenizer).__name__, spec, str(max_length),
                   str(getattr(tokenizer, "model_input_names", "")))


def tokenize_splits(splits: dict, tokenizer, *, max_length: int, with_length: bool = False) -> dict:
    """Every split tokenised by :func:`~tailtune.models.truncation.tokenize_truncated` (clipped, then
    truncated at ``max_length``; no padding: the collator pads per batch),
    keeping only ``labels``; ``with_length`` adds the ``length`` column ``group_by_length`` reads."""

    def tok(batch):
        enc = tokenize_truncated(tokenizer, batch["text"], max_length=int(max_length))
        if with_length:
            enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    out = {}
    tok_digest = tokenizer_digest(tokenizer, max_length)
    for name, ds in splits.items():
        drop = [c for c in ds.column_names if c != "labels"]
        key = (ds._fingerprint, tok_digest, *(("length",) if with_length else ()))
        out[name] = ds.map(tok, batched=True, remove_columns=drop, desc=f"tokenising {name}",
                           new_fingerprint=_digest(*key))
    return out


def train_eval_subset(train, seed: int):
    """The training examples scored every epoch: all of them, or a fixed seeded sample of
    :data:`~tailtune.utils.rundir.TRAIN_EVAL_MAX`."""
    n_train = len(train)
    if n_train <= TRAIN_EVAL_MAX:
        return train
    idx = np.sort(np.random.default_rng(seed).choice(n_train, size=TRAIN_EVAL_MAX, replace=False))
    return train.select(idx.tolist())
