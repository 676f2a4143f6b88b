"""The report's per-aspect and label-group tables (``reports/breakdown.py``) and their sections."""

from __future__ import annotations

import numpy as np
import pytest

from tailtune.data import TaskSpec
from tailtune.diagnostics import run_from_history
from tailtune.metrics import classification_report
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import resolve
from tailtune.reports.breakdown import aspect_tables, cell_weight_table, group_rows
from tailtune.reports.html import _env, build_context

TASK = TaskSpec("aspects", ["food", "price"], polarities=["positive", "negative"], groups={"money": ["price"]})
RNG = np.random.default_rng(0)
Y_TRAIN = RNG.choice(3, size=(300, 2), p=[0.2, 0.1, 0.7])
Y, PRED = RNG.choice(3, size=(120, 2), p=[0.2, 0.1, 0.7]), RNG.choice(3, size=(120, 2), p=[0.2, 0.1, 0.7])


def _resolved(per_aspect: bool) -> dict:
    counts = ClassCounts.from_targets(TASK, Y_TRAIN)
    recipe = {"loss": {"ce": {}}, "weighting": {"scheme": "inverse", "per_aspect": per_aspect, "cap": 5}}
    return resolve(recipe, TASK, counts).to_dict()


@pytest.mark.parametrize("per_aspect", [True, False])
def test_aspect_tables_read_eval_and_resolved(per_aspect):
    rep = classification_report(Y, PRED, TASK)
    resolved = _resolved(per_aspect)
    tables = aspect_tables(rep, rep, resolved)
    assert tables["per_cell"] is per_aspect
    price = next(r for r in tables["overview"] if r["aspect"] == "price")
    assert price["f1"] == rep["per_aspect"]["price"]["macro_f1"] and price["d_f1"] == 0.0
    assert price["precision"] == rep["per_aspect"]["price"]["macro_precision"]
    rows = {r["label"]: r for r in next(a for a in tables["aspects"] if a["aspect"] == "price")["rows"]}
    assert set(rows) == {"positive", "negative", "absent"}
    assert rows["negative"]["train"] == float((Y_TRAIN[:, 1] == 1).sum())
    weights = resolved["class_weights"]
    want = weights["per_cell"]["price"]["negative"] if per_aspect else weights["per_class"]["negative"]
    assert rows["negative"]["weight"] == want
    assert (cell_weight_table(resolved) is not None) is per_aspect
    if per_aspect:
        matrix = cell_weight_table(resolved)
        assert matrix["classes"] == ["positive", "negative", "absent"] and matrix["rows"][1]["aspect"] == "price"


def test_no_aspects_no_table_and_group_rows():
    multiclass = TaskSpec("multiclass", ["a", "b", "c"], groups={"rare": ["b", "c"]})
    rep = classification_report(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 0]), multiclass)
    assert aspect_tables(rep, None, None) is None
    (row,) = group_rows(rep, None)
    assert row["group"] == "rare" and row["members"] == "b, c" and row["d_f1"] is None and row["violations"] is None
    assert row["macro_f1"] == rep["groups"]["rare"]["macro_f1"]


def test_sections_render_only_for_runs_that_have_them(tmp_path):
    rep = classification_report(Y, PRED, TASK)
    history = [{"epoch": 1, "step": 10, "train": {"loss": 0.5, "macro_f1": 0.4}, "validation": {"loss": 0.6, **rep}}]
    run = run_from_history(history, recipe={"weighting": {"scheme": "inverse", "per_aspect": True}}, task=TASK.to_dict())
    run.eval = {"test": rep}
    run.extra["resolved"] = _resolved(True)
    ctx = build_context(run)
    ids = [s for s, _ in ctx["sections"]]
    assert ids.index("per-aspect") == ids.index("per-class") + 1 and "groups" in ids
    html = _env().get_template("report.html.j2").render(**ctx)
    assert '<section id="per-aspect">' in html and '<section id="groups">' in html and "money" in html
    assert "Per-cell class weights (weighting.per_aspect)" in html
    plain = TaskSpec("multiclass", ["a", "b"])
    rep2 = classification_report(np.array([0, 1]), np.array([0, 0]), plain)
    run2 = run_from_history([{"epoch": 1, "validation": rep2}], task=plain.to_dict())
    ids2 = [s for s, _ in build_context(run2)["sections"]]
    assert "per-aspect" not in ids2 and "groups" not in ids2
