"""Fixtures of the evaluation tests: finished-looking run directories built from the tiny encoder."""

from __future__ import annotations

from pathlib import Path

import pytest
from evaluation_helpers import TASKS, make_run


@pytest.fixture(scope="session")
def run_factory(tiny_encoder_dir, tmp_path_factory):
    cache: dict = {}

    def make(kind: str, *, seed: int = 0) -> Path:
        key = (kind, seed)
        if key not in cache:
            cache[key] = make_run(tmp_path_factory.mktemp(f"run-{kind}-{seed}"), tiny_encoder_dir, TASKS[kind], seed=seed)
        return cache[key]

    return make
