"""The one truncation rule: characters are clipped before tokenising, the same way in training,
``predict`` and the embeddings of ``screen`` (issue 18: a 10 MB line took 39 s and 2.4 GB)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from tailtune.models.truncation import CHARS_PER_TOKEN, char_limit, clip_texts, tokenize_truncated

SRC = Path(__file__).resolve().parents[2] / "src" / "tailtune"


class RecordingTokenizer:
    """Wraps a tokenizer and records the longest text it was given."""

    def __init__(self, tok):
        self.tok, self.longest = tok, 0
        self.pad_token_id = tok.pad_token_id

    def __call__(self, texts, **kwargs):
        self.longest = max([self.longest, *(len(t) for t in texts)])
        return self.tok(texts, **kwargs)


@pytest.fixture(scope="module")
def tokenizer(tiny_encoder_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_encoder_dir)


def test_clip_texts_and_char_limit():
    texts, clipped = clip_texts(["short", "x" * 1000, "y" * 64], max_length=2)
    assert [len(t) for t in texts] == [5, 2 * CHARS_PER_TOKEN, 64] and clipped == 1
    assert char_limit(512) == 512 * CHARS_PER_TOKEN
    with pytest.raises(ValueError, match="max_length"):
        char_limit(0)


def test_tokenize_truncated_keeps_every_token_of_ordinary_text(tokenizer):
    texts = ["the quick brown fox jumps over the lazy dog " * 40, "a short one", "naïve café résumé " * 30]
    for m in (8, 16, 64, 128):
        assert tokenize_truncated(tokenizer, texts, max_length=m)["input_ids"] == tokenizer(
            texts, truncation=True, max_length=m)["input_ids"]


def test_a_ten_megabyte_line_never_reaches_the_tokenizer_in_predict(tokenizer):
    """``Predictor._encode`` hands the tokenizer at most ``max_length * CHARS_PER_TOKEN`` characters
    and gives the ids training would make."""
    from tailtune.evaluation.predictor import Predictor

    rec = RecordingTokenizer(tokenizer)
    p = Predictor.__new__(Predictor)
    p.tokenizer, p.max_length, p.last_truncated = rec, 16, 0
    huge = "word " * 2_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = p._encode([huge, "short"])
    assert rec.longest <= char_limit(16)
    assert p.last_truncated == 1
    assert ids == tokenize_truncated(tokenizer, [huge, "short"], max_length=16)["input_ids"]


def test_training_and_screen_tokenise_through_the_same_rule():
    """Every place that tokenises texts for a model calls ``tokenize_truncated`` (no bare
    ``tokenizer(..., truncation=True, ...)`` left), so training and prediction see the same input."""
    for rel in ("training/tokenize.py", "experiments/embeddings.py", "evaluation/predictor.py"):
        text = (SRC / rel).read_text(encoding="utf-8")
        assert "tokenize_truncated(" in text, rel
        assert not re.search(r"tokenizer\([^)]*truncation=True", text), rel
