"""Fixtures for the training tests: tiny generated data sets of every task kind and a recipe."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tiny_runs import write_tiny_data  # noqa: E402


@pytest.fixture
def contracts(monkeypatch):
    """Install private stand-ins for the loss registry / metrics while those modules are missing."""
    from _doubles import install

    return install(monkeypatch)


@pytest.fixture
def tiny_data(tmp_path):
    def make(kind: str, **kw) -> Path:
        return write_tiny_data(tmp_path / f"data-{kind}", kind, **kw)

    return make
