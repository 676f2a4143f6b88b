"""A run with label groups (``task.groups``): every metric table carries each group's macro-F1
(history rows, eval.json, the CLI's closing table, report.html), task.json keeps the groups, and early
stopping watches ``macro_f1@<group>``."""

from __future__ import annotations

import json

from tiny_runs import tiny_recipe, write_tiny_data

from tailtune.data import TaskSpec
from tailtune.recipe import recipe_from_dict
from tailtune.training import train
from tailtune.utils import rundir

GROUPS = {"primary": ["a", "b"], "secondary": ["c"]}


def test_a_run_scores_its_groups_and_stops_on_one(tmp_path, tiny_encoder_dir, capsys):
    data = write_tiny_data(tmp_path / "data", "multilabel")
    raw = tiny_recipe("multilabel", data, tiny_encoder_dir, tmp_path / "run",
                      task={"kind": "multilabel", "hierarchy": {"c": "a"}, "groups": GROUPS},
                      early_stopping={"metric": "macro_f1@primary", "patience": 1})
    result = train(recipe_from_dict(raw))
    run = result.run_dir

    assert TaskSpec.from_json(run / rundir.TASK).groups == GROUPS
    rows = [json.loads(line) for line in (run / rundir.HISTORY).read_text().splitlines()]
    for row in rows:
        val = row["validation"]
        assert set(val["groups"]) == {"primary", "secondary"}
        assert val["macro_f1@primary"] == val["groups"]["primary"]["macro_f1"]
        assert "hierarchy_violations" in val["groups"]["secondary"]
        assert row["early_stopping"]["metric"] == "macro_f1@primary"
    best = max(rows, key=lambda r: r["validation"]["macro_f1@primary"])
    assert rows[-1]["early_stopping"]["best"] == best["validation"]["macro_f1@primary"]
    assert best.get("best") is True

    evaluated = json.loads((run / rundir.EVAL).read_text())
    assert evaluated["test"]["groups"]["secondary"]["members"] == ["c"]
    html = (run / rundir.REPORT).read_text(encoding="utf-8")
    assert '<section id="groups">' in html and "secondary" in html and "hierarchy violations" in html

    from tailtune.cli.train import _summary

    _summary(result)
    out = capsys.readouterr().out
    assert "label groups" in out and "primary" in out and "macro_f1@primary" in out
