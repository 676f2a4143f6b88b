"""The analysis stage's checks of what a fit needs from the data: a validation split the cross-fitted
rule can be cut from (exit 2 naming the file, nothing written) and declared labels without training
examples (the fix the loader names works for ``fit``)."""

from __future__ import annotations

import json

from tailtune.cli.main import main
from tailtune.evaluation.crossfit import MIN_ITEMS
from tailtune.fit.analysis import load_input
from tailtune.fit.options import FitOptions


def _write(folder, splits: dict[str, list[dict]], labels: list[str] | None = None):
    folder.mkdir(parents=True)
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if labels:
        (folder / "labels.txt").write_text("\n".join(labels) + "\n")
    return folder


def _rows(n: int, labels=("pos", "neg")):
    return [{"text": f"film {i} {labels[i % len(labels)]}", "labels": labels[i % len(labels)]} for i in range(n)]


def test_a_validation_file_too_small_to_decide_on_exits_2_and_writes_nothing(tmp_path, capsys, tiny_encoder_dir):
    data = _write(tmp_path / "data", {"train": _rows(40), "validation": _rows(MIN_ITEMS - 1)})
    out = tmp_path / "fit"
    assert main(["fit", str(data), "-o", str(out), "--model", str(tiny_encoder_dir), "-q", "--max-epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "validation.jsonl" in err and f"{MIN_ITEMS - 1} validation row(s)" in err and "Fix:" in err
    assert "Traceback" not in err and not out.exists()


def test_a_data_set_too_small_to_hold_out_a_validation_split_names_it(tmp_path, capsys, tiny_encoder_dir):
    data = _write(tmp_path / "data", {"train": _rows(20)})  # 10% held out: 2 rows
    out = tmp_path / "fit"
    assert main(["fit", str(data), "-o", str(out), "--model", str(tiny_encoder_dir), "-q", "--max-epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "train.jsonl (held out" in err and "more training rows" in err and not out.exists()


def test_unused_labels_are_refused_with_a_fix_fit_accepts_and_dropped_with_it(tmp_path, capsys):
    rows = [{"text": f"film {i}", "labels": [i % 2] if i % 3 else []} for i in range(30)]
    data = _write(tmp_path / "data", {"train": rows, "validation": rows[:10]}, labels=["a", "b", "ghost"])
    out = tmp_path / "fit"
    assert main(["fit", str(data), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "ghost" in err and "tailtune fit --drop-unused-labels" in err and not out.exists()
    loaded = load_input(FitOptions(data=data, output=out, unused_labels="drop"))
    assert loaded.task.labels == ["a", "b"]
    assert FitOptions(data=data, output=out, unused_labels="drop").fingerprint()["unused_labels"] == "drop"
    assert "unused_labels" not in FitOptions(data=data, output=out).fingerprint()  # older fit folders continue
