"""``tailtune.fit`` end to end on tiny data with a tiny random encoder: binary (through the CLI),
multi-label with a hierarchy, aspects (without a test split: one is carved). Multi-class runs in
``test_fit_kill.py`` (the uninterrupted reference of the kill tests). Every fit folder is run-like."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fit_settings import TINY

from tailtune.cli.main import main


def check_run_like(folder, kind):
    import tailtune
    from tailtune.evaluation.runs import evaluate_run

    state = json.loads((folder / "fit.json").read_text())
    assert state["status"] == "done" and state["format"] == "tailtune-fit/1"
    units = state["units"]
    for unit in ("analyze", "candidates", "probe", "screen", "plan", "replan", "decide", "ensemble", "final", "report"):
        assert units[unit]["status"] == "done", unit
    assert units["final"]["result"]["test"] is not None
    post = json.loads((folder / "postprocess.json").read_text())
    assert post["tuned_on"] == "validation"
    out = tailtune.load(folder).predict(["good great film", "bad awful dull"])
    key = {"binary": "label", "multiclass": "label", "multilabel": "labels", "aspects": "aspects"}[kind]
    assert len(out) == 2 and key in out[0]
    entries = evaluate_run(folder, split="test", write=False)
    assert "test_tuned" in entries
    html = (folder / "report.html").read_text()
    assert "How this model was chosen" in html and "decision:" in html
    log = (folder / "decision-log.md").read_text()
    assert "## 6. Decision" in log and "scored once" in log
    return state


def test_binary_through_the_cli(tiny_data, tmp_path, tiny_encoder_dir, capsys):
    folder = tmp_path / "fit"
    code = main(["fit", str(tiny_data("binary")), "-o", str(folder), "--model", str(tiny_encoder_dir), "--budget",
                 TINY["budget"], "--seeds", "2", "--max-epochs", "1", "--finalists", "1", "-q"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "decision:" in printed and "test (scored once)" in printed
    state = check_run_like(folder, "binary")
    assert state["units"]["decide"]["result"]["winner"] in {c["name"] for c in
                                                            state["units"]["candidates"]["result"]["candidates"]}
    assert main(["predict", str(folder), "--text", "good film"]) == 0
    assert main(["evaluate", str(folder)]) == 0
    assert main(["report", str(folder)]) == 0
    capsys.readouterr()
    # the same command again: everything is recorded, nothing runs, same outcome
    assert main(["fit", str(tiny_data("binary")), "-o", str(folder), "--model", str(tiny_encoder_dir), "--budget",
                 TINY["budget"], "--seeds", "2", "--max-epochs", "1", "--finalists", "1", "-q"]) == 0
    # other options on the same folder: refused with the fix
    assert main(["fit", str(tiny_data("binary")), "-o", str(folder), "--model", str(tiny_encoder_dir), "--seeds", "3",
                 "-q"]) == 2
    assert "--restart" in capsys.readouterr().err


def test_multilabel_with_a_hierarchy(tiny_data, tmp_path, tiny_encoder_dir):
    import tailtune

    task = tmp_path / "task.json"
    task.write_text(json.dumps({"kind": "multilabel", "labels": ["a", "b", "c"], "hierarchy": {"c": "a"}}))
    result = tailtune.fit(tiny_data("multilabel"), tmp_path / "fit", model=str(tiny_encoder_dir), task=str(task), **TINY)
    state = check_run_like(result.output, "multilabel")
    names = [c["name"] for c in state["units"]["candidates"]["result"]["candidates"]]
    assert any(n.endswith("+hierarchy") for n in names)
    assert json.loads((result.output / "postprocess.json").read_text())["hierarchy_mode"] == "add_parent"
    preds = result.predict(["good great plot story"])
    assert set(preds[0]["probabilities"]) == {"a", "b", "c"}
    assert result.scores["test"]["tuned"] >= 0 and result.winner in names


def test_aspects_without_a_test_split(tiny_data, tmp_path, tiny_encoder_dir):
    import tailtune

    data = tiny_data("aspects", n_train=72)
    (data / "test.jsonl").unlink()
    result = tailtune.fit(data, tmp_path / "fit", model=str(tiny_encoder_dir), **TINY)
    state = check_run_like(result.output, "aspects")
    notes = state["units"]["analyze"]["result"]["notes"]
    assert any(n.startswith("no test split: held out") for n in notes)
    rows = [json.loads(line) for line in (result.output / "heldout" / "test.jsonl").read_text().splitlines()]
    train = [json.loads(line) for line in (result.output / "data" / "train.jsonl").read_text().splitlines()]
    assert rows and len(rows) + len(train) == 72  # carved from the 72 training rows, disjoint
    z = np.load(result.output / "predictions" / "test.npz")["logits"]
    assert z.shape == (len(rows), 2 * 3)


def test_fit_result_needs_a_fit_folder(tmp_path):
    from tailtune.errors import RunDirError
    from tailtune.fit import FitResult

    with pytest.raises(RunDirError, match="fit.json"):
        FitResult.from_dir(tmp_path)
