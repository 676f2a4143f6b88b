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


def test_per_cell_weights_are_what_trained(tmp_path, tiny_encoder_dir):
    """weighting.per_aspect: resolved.json records one weight per aspect x class cell, the checkpoint holds
    that (A, P + 1) table, the diagnostics key it by cell and the report shows it per aspect."""
    data = write_tiny_data(tmp_path / "data", "aspects")
    raw = tiny_recipe("aspects", data, tiny_encoder_dir, tmp_path / "run", loss={"focal": {"weight": 1.0, "gamma": 1.0}},
                      weighting={"scheme": "inverse", "per_aspect": True, "cap": 4.0,
                                 "overrides": {"absent": 1.0, "service#negative": 2.5}})
    raw["train"]["epochs"] = 1
    result = train(recipe_from_dict(raw))
    run = result.run_dir
    recorded = json.loads((run / rundir.RESOLVED).read_text())
    cw = recorded["class_weights"]
    assert cw["per_aspect"] and cw["aspects"] == ["food", "service"]
    assert cw["per_cell"]["service"]["negative"] == 2.5 and cw["per_cell"]["food"]["absent"] == 1.0
    assert set(recorded["counts"]["per_cell"]) == {"food", "service"}
    (ckpt,) = sorted((run / rundir.CHECKPOINTS_DIR).glob("checkpoint-*"))
    table = load_file(str(ckpt / "model.safetensors"))["loss.losses.focal.alpha"]
    assert table.shape == (2, 3)
    assert table.reshape(-1).tolist() == pytest.approx([w for row in cw["values"] for w in row], rel=1e-7)
    assert load_run(run).class_weights == pytest.approx(cw["per_class"])
    assert "service#negative" in cw["per_class"]
    evaluated = json.loads((run / rundir.EVAL).read_text())["test"]["per_aspect"]["service"]
    assert {"macro_precision", "macro_recall", "macro_f1"} <= set(evaluated)
    html = (run / rundir.REPORT).read_text(encoding="utf-8")
    assert '<section id="per-aspect">' in html and "per-cell class weights" in html
    assert "Per-cell class weights (weighting.per_aspect)" in html


def test_per_cell_weights_reach_the_loss_in_both_step_loops(tmp_path, tiny_encoder_dir):
    """tailtune's step loop (train.fast_step, the default) and the Trainer's loop both go through
    compute_loss, so the per-cell table weighs their loss alike (bit for bit), and changing one cell's
    weight ('service#negative') changes the training loss."""
    data = write_tiny_data(tmp_path / "data", "aspects")

    def run(name, fast, cell):
        raw = tiny_recipe("aspects", data, tiny_encoder_dir, tmp_path / name, loss={"focal": {"weight": 1.0, "gamma": 1.0}},
                          weighting={"scheme": "inverse", "per_aspect": True, "overrides": {"service#negative": cell}})
        raw["train"].update(epochs=1, fast_step=fast)
        history = train(recipe_from_dict(raw), report=False).history
        return [{k: v for k, v in row.items() if k not in ("time_s", "eval_time_s")} for row in history]

    fast = run("fast", True, 4.0)
    assert run("trainer", False, 4.0) == fast
    assert run("fast-other-cell", True, 0.25)[0]["train"]["loss"] != fast[0]["train"]["loss"]
