"""Fixtures for the experiments tests: tiny labelled data sets, one torch thread."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from exp_tiny_data import write_data  # noqa: E402


@pytest.fixture
def exp_data(tmp_path):
    def make(kind: str = "multiclass", **kw) -> Path:
        return write_data(tmp_path / f"data-{kind}", kind, **kw)

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small heads are faster (and far steadier on a shared machine) with one torch thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
