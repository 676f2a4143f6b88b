"""Fixtures shared by the reliability tests: the tiny-run helpers on the path, a private ``datasets``
cache per module, and one real run directory per module (tests corrupt copies of it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TRAINING_HELPERS = Path(__file__).resolve().parents[1] / "training"
if str(TRAINING_HELPERS) not in sys.path:
    sys.path.insert(0, str(TRAINING_HELPERS))  # tiny_runs


@pytest.fixture(scope="module")
def _datasets_cache(request, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp(f"hf-datasets-cache-{request.module.__name__.rsplit('.', 1)[-1]}")


@pytest.fixture(autouse=True)
def private_datasets_cache(_datasets_cache, monkeypatch):
    """Arrow cache files go to a module folder (never into a test's ``tmp_path`` or a run copy, never
    ~/.cache); ``datasets`` progress bars are off so stderr holds only what tailtune prints."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(_datasets_cache))
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    yield _datasets_cache
    if not was_disabled:
        datasets.enable_progress_bars()


@pytest.fixture(scope="module")
def real_run(request, tmp_path_factory, tiny_encoder_dir) -> Path:
    """A run directory written by the real trainer (tiny random encoder, multiclass, 2 epochs, two
    checkpoints). Tests change only copies of it."""
    from tiny_runs import tiny_recipe, write_tiny_data

    from tailtune.recipe import recipe_from_dict
    from tailtune.training import train

    root = tmp_path_factory.mktemp(f"run-{request.module.__name__.rsplit('.', 1)[-1]}")
    data = write_tiny_data(root / "data", "multiclass")
    train(recipe_from_dict(tiny_recipe("multiclass", data, tiny_encoder_dir, root / "run")))
    return root / "run"
