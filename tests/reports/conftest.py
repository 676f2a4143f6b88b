"""Fixture run directories for the report and post-mortem tests (built once per session)."""

from __future__ import annotations

import pytest
from synthetic_run import write_run

CE_RECIPE = {
    "task": {"kind": "multiclass"},
    "loss": {"ce": {}},
    "optim": {"lr": 5.0e-5},
    "train": {"epochs": 6, "batch_size": 32, "grad_accum": 1},
    "early_stopping": {"metric": "macro_f1", "patience": 3},
}


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """``{"focal": [3 seeds], "ce": [3 seeds], "multilabel": dir, "aspects": dir, "binary": dir}``."""
    root = tmp_path_factory.mktemp("runs")
    out = {
        "focal": [write_run(root / f"focal-s{s}", seed=s, skill=2.0) for s in (13, 14, 15)],
        "ce": [write_run(root / f"ce-s{s}", seed=s, skill=1.0, recipe=CE_RECIPE) for s in (13, 14, 15)],
        "multilabel": write_run(root / "ml", kind="multilabel", labels=["earn", "acq", "wheat", "corn"], counts=[900, 400, 60, 30]),
        "aspects": write_run(root / "asp", kind="aspects", labels=["positive", "negative", "absent"], counts=[200, 80, 600]),
        "binary": write_run(root / "bin", kind="binary", labels=["ham", "spam"], counts=[900, 100]),
    }
    return out
