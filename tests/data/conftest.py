"""Fixtures of the data-layer tests: a private ``datasets`` cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _datasets_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-datasets-cache")


@pytest.fixture(autouse=True)
def private_datasets_cache(_datasets_cache, monkeypatch):
    """Keep the Arrow cache files of the tests out of the user's ~/.cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(_datasets_cache))
    return _datasets_cache
