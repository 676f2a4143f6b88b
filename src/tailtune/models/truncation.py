"""The one rule for turning texts into model inputs of at most ``max_length`` tokens.

A tokenizer reads the whole text before it truncates, so one 10 MB line costs seconds and gigabytes
to keep 512 tokens of it. Every place that tokenises for a model (training, ``predict``, the
embeddings of ``screen``) therefore first clips each text to ``max_length * CHARS_PER_TOKEN``
characters, then tokenises with truncation at ``max_length``.

``CHARS_PER_TOKEN = 32`` is generous: on the project's data sets (SMS spam, TweetEval emotion,
Reuters-21578, MAMS; all-MiniLM-L6-v2's WordPiece tokenizer) the first ``m`` tokens of a text never
span more than 7.9 characters per token for any ``m`` in 16..512, so the clip changes no token the
model sees there (``benchmarks/truncation.py`` measures both claims). Only a text whose first
``max_length`` tokens average more than 32 characters (a run of words over 100 characters, which
WordPiece maps to one ``[UNK]`` each) loses tokens to the clip, and it loses them the same way in
training and in prediction.

Example:
    >>> texts, clipped = clip_texts(["short", "x" * 100], max_length=2)
    >>> [len(t) for t in texts], clipped
    ([5, 64], 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["CHARS_PER_TOKEN", "RULE", "char_limit", "clip_texts", "tokenize_truncated"]

#: characters kept per token of ``max_length`` before tokenising
CHARS_PER_TOKEN = 32
#: names this rule in cache fingerprints of tokenised data (change it when the rule changes)
RULE = f"clip-chars-{CHARS_PER_TOKEN}-per-token"


def char_limit(max_length: int) -> int:
    """Characters of a text kept before tokenising for ``max_length`` tokens."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
    return max_length * CHARS_PER_TOKEN


def clip_texts(texts: Sequence[str], max_length: int) -> tuple[list[str], int]:
    """``(texts clipped to char_limit(max_length) characters, how many were clipped)``."""
    limit = char_limit(max_length)
    out = list(texts)
    clipped = 0
    for i, text in enumerate(out):
        if len(text) > limit:
            out[i] = text[:limit]
            clipped += 1
    return out, clipped


def tokenize_truncated(tokenizer: Any, texts: Sequence[str], *, max_length: int, **kwargs: Any):
    """``tokenizer(clipped texts, truncation=True, max_length=max_length, **kwargs)``: what a model sees."""
    clipped, _ = clip_texts(texts, max_length)
    return tokenizer(clipped, truncation=True, max_length=int(max_length), **kwargs)
