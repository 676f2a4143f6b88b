"""The tokenised splits' cache key: cheap, and different whenever the tokenised result could differ."""

from __future__ import annotations

import time

from transformers import AutoTokenizer

from tailtune.training.tokenize import tokenizer_digest as _tokenizer_digest


def test_digest_tracks_tokenizer_and_max_length(tiny_encoder_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    t0 = time.perf_counter()
    a = _tokenizer_digest(tok, 16)
    assert time.perf_counter() - t0 < 0.5  # milliseconds in practice; datasets' own hashing takes ~0.5 s
    assert a == _tokenizer_digest(AutoTokenizer.from_pretrained(tiny_encoder_dir), 16)
    assert a != _tokenizer_digest(tok, 32)
    tok.add_tokens(["zzqqxx"])  # a changed vocabulary changes the token ids
    assert _tokenizer_digest(tok, 16) != a
