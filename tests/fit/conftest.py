"""Fixtures for the fit tests: tiny generated data of every kind, the tiny random encoder, and a
private ``datasets`` cache and embeddings cache per module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for helpers in (HERE, HERE.parent / "training"):
    if str(helpers) not in sys.path:
        sys.path.insert(0, str(helpers))

from fit_settings import FAST_STATS  # noqa: E402  (after the sys.path lines above)


@pytest.fixture(scope="module")
def _module_caches(request, tmp_path_factory) -> dict[str, Path]:
    name = request.module.__name__.rsplit(".", 1)[-1]
    return {"datasets": tmp_path_factory.mktemp(f"hf-{name}"), "embeddings": tmp_path_factory.mktemp(f"emb-{name}")}


@pytest.fixture(autouse=True)
def private_caches(_module_caches, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(_module_caches["datasets"]))
    monkeypatch.setenv("TAILTUNE_CACHE", str(_module_caches["embeddings"]))
    return _module_caches


@pytest.fixture(autouse=True)
def fast_stats(monkeypatch):
    for target, value in FAST_STATS.items():
        monkeypatch.setattr(target, value)


@pytest.fixture
def tiny_data(tmp_path):
    from tiny_runs import write_tiny_data

    def make(kind: str, **kw) -> Path:
        kw.setdefault("n_train", 48)
        kw.setdefault("n_eval", 24)
        return write_tiny_data(tmp_path / f"data-{kind}", kind, **kw)

    return make
