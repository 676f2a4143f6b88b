"""``screen(score_split="validation")``: what ``tailtune fit`` ranks on. No test split is needed or
read, the tuned rule is cross-fitted on validation halves, and the paired tests use validation items."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from tiny_runs import write_tiny_data  # noqa: E402


def test_validation_scoring_needs_no_test_split(tmp_path, tiny_encoder_dir):
    from tailtune.experiments.screen import screen

    data = write_tiny_data(tmp_path / "d", "multiclass", n_train=48, n_eval=24)
    (data / "test.jsonl").unlink()
    res = screen(data, recipes="ce,focal:1", seeds=2, model=tiny_encoder_dir, out=tmp_path / "s", max_length=16,
                 cache_dir=tmp_path / "c", n_resamples=200, show_progress=False, score_split="validation")
    saved = json.loads((tmp_path / "s" / "screen.json").read_text())
    assert saved["score_split"] == "validation" and set(saved["embedding"]["counts"]) == {"train", "validation"}
    focal = next(r for r in res.recipes if r["spec"] == "focal:1")
    assert focal["per_seed"][0]["rule"] == {"cross_fitted": True} and "tuned" in focal["vs_baseline"]


def test_test_scoring_still_needs_a_test_split(tmp_path, tiny_encoder_dir):
    from tailtune.errors import DataError
    from tailtune.experiments.screen import screen

    data = write_tiny_data(tmp_path / "d", "multiclass", n_train=48, n_eval=24)
    (data / "test.jsonl").unlink()
    with pytest.raises(DataError, match="'test' is missing"):
        screen(data, recipes="ce", seeds=1, model=tiny_encoder_dir, max_length=16, cache_dir=tmp_path / "c",
               show_progress=False)
    with pytest.raises(ValueError, match="score_split"):
        screen(data, recipes="ce", seeds=1, model=tiny_encoder_dir, score_split="train", show_progress=False)
