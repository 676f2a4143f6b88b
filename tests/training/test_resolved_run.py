"""The library pipeline (``tailtune.training.train``) leaves a complete run directory, and what it
records as resolved is what trained: ``resolved.json`` equals ``resolve(recipe, task, counts)``, the
checkpoint holds those class weights, the diagnostics and the report show them."""

from __future__ import annotations

import json

import pytest
from safetensors.numpy import load_file
from tiny_runs import tiny_recipe, write_tiny_data

from tailtune.diagnostics import load_run
from tailtune.recipe import recipe_from_dict
from tailtune.recipe.data import load_recipe_data, train_counts
from tailtune.recipe.resolve import resolve
from tailtune.training import prepare_run, train
from tailtune.utils import rundir


@pytest.mark.parametrize("kind", ["multiclass", "multilabel"])
def test_resolved_json_is_what_trained(kind, tmp_path, tiny_encoder_dir):
    data = write_tiny_data(tmp_path / "data", kind)
    raw = tiny_recipe(kind, data, tiny_encoder_dir, tmp_path / "run",
                      loss={"focal": {"weight": 1.0, "gamma": 1.5}},
                      weighting={"scheme": "inverse", "cap": 3.0, "overrides": {"c" if kind == "multilabel" else "plot": 2.0}},
                      sample_weighting={"confidence": True})
    raw["train"]["epochs"] = 1
    recipe = recipe_from_dict(raw)
    prepared = prepare_run(recipe)  # what training builds, before any model loads
    result = train(recipe)
    run = result.run_dir

    # the run directory honours the contract: report and lint written by the library call
    assert result.report == run / rundir.REPORT and result.report.is_file() and result.report_error is None
    assert isinstance(json.loads((run / rundir.LINT).read_text())["findings"], list)

    loaded = load_recipe_data(recipe)
    expected = resolve(recipe, loaded.task, train_counts(loaded)).to_dict()
    recorded = json.loads((run / rundir.RESOLVED).read_text())
    assert recorded == expected == prepared.resolved.to_dict()

    part = recorded["loss"]["focal"]
    arg = part["class_weight_arg"]
    assert arg == ("pos_weight" if kind == "multilabel" else "alpha") and part["args"]["gamma"] == 1.5
    (ckpt,) = sorted((run / rundir.CHECKPOINTS_DIR).glob("checkpoint-*"))
    state = load_file(str(ckpt / "model.safetensors"))
    assert state[f"loss.losses.focal.{arg}"].tolist() == pytest.approx(part["args"][arg], rel=1e-7)
    assert getattr(prepared.loss.losses["focal"], arg).tolist() == pytest.approx(part["args"][arg], rel=1e-7)

    effective = recorded["class_weights"]["pos_weight"] or recorded["class_weights"]["per_class"]
    assert load_run(run).class_weights == pytest.approx(effective)
    html = (run / rundir.REPORT).read_text(encoding="utf-8")
    assert "What actually trained (resolved.json)" in html and "softmax_focal" in html or "sigmoid_focal" in html
