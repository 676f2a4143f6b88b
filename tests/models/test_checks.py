"""models.checks: the position limit of an encoder config and the error for corrupt weight files."""

from __future__ import annotations

import pytest
from safetensors import SafetensorError

from tailtune.errors import RecipeError
from tailtune.models.checks import (
    check_max_length,
    encoder_load_error,
    position_limit,
    position_limit_of_folder,
)


@pytest.mark.parametrize(("config", "limit"), [
    ({"model_type": "bert", "max_position_embeddings": 512}, 512),
    ({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}, 512),  # positions start at 2
    ({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1}, 512),
    ({"model_type": "mpnet", "max_position_embeddings": 514, "pad_token_id": 1}, 512),
    ({"model_type": "deberta-v2", "max_position_embeddings": 512, "position_biased_input": False}, None),
    ({"model_type": "modernbert", "max_position_embeddings": 8192, "position_embedding_type": "rotary"}, None),
    ({"model_type": "odd"}, None),
])
def test_position_limit(config, limit):
    assert position_limit(config) == limit


def test_check_max_length_names_the_limit_and_the_fix():
    check_max_length({"max_position_embeddings": 512}, 512, name="bert")
    check_max_length({"max_position_embeddings": 512}, None, name="bert")
    with pytest.raises(RecipeError, match=r"data\.max_length = 513: the encoder bert has 512 positions.*"
                                          r"Fix: set data\.max_length: 512"):
        check_max_length({"model_type": "bert", "max_position_embeddings": 512}, 513, name="bert")


def test_position_limit_of_a_folder(tiny_encoder_dir, tmp_path):
    assert position_limit_of_folder(tiny_encoder_dir) == 128
    assert position_limit_of_folder(tmp_path / "missing") is None


def test_encoder_load_error_recognises_corrupt_files_only():
    import torch

    assert "cannot be read (SafetensorError" in str(encoder_load_error("m", "/m", SafetensorError("header too large")))
    assert encoder_load_error("m", "/m", RuntimeError("size mismatch for embeddings")) is not None
    assert encoder_load_error("m", "/m", EOFError()) is not None
    assert encoder_load_error("m", "/m", torch.OutOfMemoryError("CUDA out of memory")) is None
    assert encoder_load_error("m", "/m", TypeError("a bug")) is None
