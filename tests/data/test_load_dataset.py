"""load_dataset on the shared benchmark data and on small files of every format and label layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tt_data_helpers import write_csv, write_jsonl

from tailtune.data import TaskSpec, load_dataset

# ---------------------------------------------------------------------------------------- shared data


def _jsonl(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_sms_spam_binary(shared_data):
    path = shared_data("sms_spam")
    data = load_dataset(path)
    assert data.task.kind == "binary" and data.task.labels == ["ham", "spam"]
    assert list(data.splits) == ["train", "validation", "test"]
    stats = json.loads((path / "stats.json").read_text())
    for split, ds in data.splits.items():
        assert ds.column_names == ["text", "labels"]
        assert len(ds) == stats["splits"][split]
    rows = _jsonl(path / "train.jsonl")
    assert data.splits["train"]["labels"][:50] == [r["labels"] for r in rows[:50]]
    assert data.files["test"].endswith("test.jsonl")


def test_tweeteval_multiclass(shared_data):
    data = load_dataset(shared_data("tweeteval_emotion"))
    assert data.task.kind == "multiclass"
    assert data.task.labels == ["anger", "joy", "optimism", "sadness"]
    assert np.bincount(data.targets["train"]).min() > 0


def test_reuters_multilabel_multi_hot(shared_data):
    path = shared_data("reuters21578_modapte")
    data = load_dataset(path, empty_text="drop")
    assert data.task.kind == "multilabel" and data.task.num_outputs == 90
    assert data.task.labels == (path / "labels.txt").read_text().split()
    rows = [r for r in _jsonl(path / "train.jsonl") if r["text"].strip()]
    y = np.asarray(data.splits["train"]["labels"][:20])
    assert y.shape == (20, 90)
    for r, row in zip(rows[:20], y):
        assert sorted(np.flatnonzero(row).tolist()) == sorted(r["labels"])
    assert any("dropped" in n for n in data.notes)


def test_mams_aspects_from_pairs_and_from_dict_agree(shared_data):
    path = shared_data("mams_acsa")
    pairs = load_dataset(path)
    assert pairs.task.kind == "aspects"
    assert pairs.task.polarities == ["positive", "negative", "neutral"]
    assert sorted(pairs.task.labels) == pairs.task.labels and len(pairs.task.labels) == 8
    dicts = load_dataset(path, label_column="aspects", task=pairs.task.to_dict())
    for split in pairs.targets:
        np.testing.assert_array_equal(pairs.targets[split], dicts.targets[split])
    stats = json.loads((path / "stats.json").read_text())
    y = pairs.targets["train"]
    for i, aspect in enumerate(pairs.task.labels):
        counts = np.bincount(y[:, i], minlength=4)
        expected = stats["train_aspect_polarity_counts"][aspect]
        assert counts.tolist() == [expected[c] for c in pairs.task.aspect_classes]
    # dict order when inferred from the dict column
    assert load_dataset(path, label_column="aspects").task.labels == stats["aspects"]


# ---------------------------------------------------------------------------------------- small files

ROWS = [(f"text number {i}", ["ham", "spam", "eggs"][i % 3 if i % 5 else 2]) for i in range(60)]


def _names():
    return sorted({lab for _, lab in ROWS})


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_every_format_same_result(tmp_path, fmt):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / fmt
    folder.mkdir()
    for split, rows in {"train": ROWS, "validation": ROWS[:12], "test": ROWS[12:24]}.items():
        path = folder / f"{split}.{fmt}"
        if fmt in ("csv", "tsv"):
            write_csv(path, ["text", "label"], rows, sep="\t" if fmt == "tsv" else ",")
        elif fmt == "jsonl":
            write_jsonl(path, [{"text": t, "label": y} for t, y in rows])
        elif fmt == "json":
            path.write_text(json.dumps([{"text": t, "label": y} for t, y in rows]), encoding="utf-8")
        else:
            pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [y for _, y in rows]}), path)
    data = load_dataset(folder)
    assert data.task == TaskSpec(kind="multiclass", labels=_names(), label_column="label")
    names = _names()
    assert data.targets["train"].tolist() == [names.index(y) for _, y in ROWS]
    assert len(data.splits["test"]) == 12


def test_single_file_is_split_stratified_and_deterministic(tmp_path):
    rows = [(f"doc {i}", "rare" if i % 20 == 0 else "common") for i in range(400)]
    path = write_csv(tmp_path / "all.csv", ["text", "label"], rows)
    a = load_dataset(path, seed=1, val_fraction=0.25)
    b = load_dataset(path, seed=1, val_fraction=0.25)
    c = load_dataset(path, seed=2, val_fraction=0.25)
    assert a.task.kind == "binary" and a.task.labels == ["common", "rare"]
    assert len(a.splits["validation"]) == 100 and len(a.splits["train"]) == 300
    assert list(a.splits["validation"]["text"]) == list(b.splits["validation"]["text"])
    assert list(a.splits["validation"]["text"]) != list(c.splits["validation"]["text"])
    assert int(a.targets["validation"].sum()) == 5  # 20 rare -> 25% of them
    assert not set(a.splits["validation"]["text"]) & set(a.splits["train"]["text"])
    assert "held out" in a.files["validation"]


def test_missing_validation_carved_but_test_untouched(tmp_path):
    rows = [{"text": f"t{i}", "labels": i % 4} for i in range(200)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", rows[:40])
    data = load_dataset(tmp_path)
    assert len(data.splits["test"]) == 40 and data.splits["test"]["text"] == [r["text"] for r in rows[:40]]
    assert len(data.splits["validation"]) == 20
    assert np.bincount(data.targets["validation"]).tolist() == [5, 5, 5, 5]


def test_integer_labels_with_labels_txt_and_without(tmp_path):
    rows = [{"text": f"t{i}", "labels": i % 3} for i in range(30)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows[:6])
    assert load_dataset(tmp_path).task.labels == ["0", "1", "2"]
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\n")
    assert load_dataset(tmp_path).task.labels == ["red", "green", "blue"]


def test_csv_integer_labels_and_names_from_labels_txt(tmp_path):
    write_csv(tmp_path / "train.csv", ["text", "labels"], [(f"t{i}", i % 2) for i in range(20)])
    write_csv(tmp_path / "validation.csv", ["text", "labels"], [("a", "1"), ("b", "0")])
    (tmp_path / "labels.txt").write_text("neg\npos\n")
    data = load_dataset(tmp_path)
    assert data.task == TaskSpec(kind="binary", labels=["neg", "pos"])
    assert data.targets["validation"].tolist() == [1, 0]


def test_task_override_kind_and_label_order(tmp_path):
    rows = [{"text": f"t{i}", "labels": ["no", "yes"][i % 2]} for i in range(20)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows[:4])
    assert load_dataset(tmp_path).task.kind == "binary"
    assert load_dataset(tmp_path, task="multiclass").task.kind == "multiclass"
    spec = load_dataset(tmp_path, task={"kind": "binary", "labels": ["yes", "no"]})
    assert spec.task.labels == ["yes", "no"] and spec.targets["train"][:2].tolist() == [1, 0]
    ml = load_dataset(tmp_path, task="multilabel")
    assert ml.task.kind == "multilabel" and ml.targets["train"].shape == (20, 2)
    task_file = TaskSpec(kind="multiclass", labels=["yes", "no"]).to_json(tmp_path / "t" / "task.json")
    assert load_dataset(tmp_path, task=task_file).task.labels == ["yes", "no"]


def test_multilabel_list_names_delimited_and_indicator_columns(tmp_path):
    labels = [["a"], ["a", "b"], [], ["c"], ["b", "c"], ["a"]] * 5
    expected = np.array([[lab in row for lab in "abc"] for row in labels], dtype=np.float32)
    write_jsonl(tmp_path / "lists" / "train.jsonl", [{"text": f"t{i}", "labels": r} for i, r in enumerate(labels)])
    write_csv(tmp_path / "delim" / "train.csv", ["text", "tags"], [(f"t{i}", "|".join(r)) for i, r in enumerate(labels)])
    write_csv(
        tmp_path / "ind" / "train.csv", ["text", "a", "b", "c"],
        [(f"t{i}", *[int(lab in r) for lab in "abc"]) for i, r in enumerate(labels)],
    )
    idx_rows = [{"text": f"t{i}", "labels": ["abc".index(x) for x in r]} for i, r in enumerate(labels)]
    write_jsonl(tmp_path / "idx" / "train.jsonl", idx_rows)
    (tmp_path / "idx" / "labels.txt").write_text("a\nb\nc\n")
    results = [
        load_dataset(tmp_path / "lists"),
        load_dataset(tmp_path / "delim", label_column="tags", label_sep="|"),
        load_dataset(tmp_path / "ind", label_column="a,b,c"),
        load_dataset(tmp_path / "ind", label_column=["a", "b", "c"]),
        load_dataset(tmp_path / "idx"),
    ]
    for data in results:
        assert data.task.kind == "multilabel" and data.task.labels == ["a", "b", "c"]
        got = np.concatenate([data.targets["train"], data.targets["validation"]])
        order = list(data.splits["train"]["text"]) + list(data.splits["validation"]["text"])
        ref = expected[[int(t[1:]) for t in order]]
        np.testing.assert_array_equal(got, ref)
        assert data.splits["train"].features["labels"].length == 3


def test_aspect_pairs_absent_cells_and_dicts(tmp_path):
    rows = [
        {"text": "a", "labels": ["food#positive"], "asp": {"food": "positive", "staff": "absent"}},
        {"text": "b", "labels": ["staff#negative", "food#neutral"], "asp": {"food": "neutral", "staff": "negative"}},
        {"text": "c", "labels": [], "asp": {"food": "absent", "staff": "absent"}},
    ] * 10
    write_jsonl(tmp_path / "train.jsonl", rows)
    a = load_dataset(tmp_path)
    assert a.task.kind == "aspects" and a.task.labels == ["food", "staff"]
    assert a.task.polarities == ["positive", "negative", "neutral"]
    b = load_dataset(tmp_path, label_column="asp")
    both = lambda d: np.concatenate([d.targets["train"], d.targets["validation"]])  # noqa: E731
    texts = lambda d: list(d.splits["train"]["text"]) + list(d.splits["validation"]["text"])  # noqa: E731
    ref = {"a": [0, 3], "b": [2, 1], "c": [3, 3]}
    for d in (a, b):
        np.testing.assert_array_equal(both(d), np.array([ref[t] for t in texts(d)]))


def test_hierarchy_passes_through(tmp_path):
    rows = [{"text": f"t{i}", "labels": [["animal", "dog"], ["animal"], ["plant"]][i % 3]} for i in range(30)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    spec = {"kind": "multilabel", "labels": ["animal", "dog", "plant"], "hierarchy": {"dog": "animal"}}
    assert load_dataset(tmp_path, task=spec).task.hierarchy == {"dog": "animal"}


def test_saved_datasets_folder(tmp_path):
    import datasets

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": [f"t{i}" for i in range(40)], "label": [i % 2 for i in range(40)]}),
        "test": datasets.Dataset.from_dict({"sentence": ["x", "y"], "label": [0, 1]}),
    })
    dd.save_to_disk(str(tmp_path / "saved"))
    data = load_dataset(tmp_path / "saved")
    assert data.task.kind == "binary" and data.task.text_column == "sentence"
    assert set(data.splits) == {"train", "validation", "test"}
    assert data.splits["test"]["text"] == ["x", "y"]


def test_csv_with_byte_order_mark(tmp_path):
    (tmp_path / "train.csv").write_bytes(b"\xef\xbb\xbftext,labels\nhello,a\nworld,b\nfoo,a\nbar,b\n")
    data = load_dataset(tmp_path, val_fraction=0.5)
    assert data.task.text_column == "text"
    texts = list(data.splits["train"]["text"]) + list(data.splits["validation"]["text"])
    assert sorted(texts) == ["bar", "foo", "hello", "world"]


def test_partial_task_dicts(tmp_path):
    rows = [{"text": f"t{i}", "labels": [["b#positive"], ["a#negative"]][i % 2]} for i in range(20)]
    write_jsonl(tmp_path / "a" / "train.jsonl", rows)
    data = load_dataset(tmp_path / "a", task={"kind": "aspects", "labels": ["b", "a"]})
    assert data.task.labels == ["b", "a"] and data.task.polarities == ["positive", "negative"]
    rows = [{"text": f"t{i}", "labels": [["animal", "dog"], ["animal"], ["plant"]][i % 3]} for i in range(30)]
    write_jsonl(tmp_path / "m" / "train.jsonl", rows)
    data = load_dataset(tmp_path / "m", task={"kind": "multilabel", "hierarchy": {"dog": "animal"}})
    assert data.task.hierarchy == {"dog": "animal"} and data.task.labels == ["animal", "dog", "plant"]
    from tailtune.errors import DataError

    with pytest.raises(DataError, match="not a label"):
        load_dataset(tmp_path / "m", task={"kind": "multilabel", "hierarchy": {"cat": "animal"}})


def test_parquet_integer_and_list_labels(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [f"t{i}" for i in range(20)], "labels": [[i % 3, 3] for i in range(20)]}),
                   tmp_path / "train.parquet")
    pq.write_table(pa.table({"text": ["x"], "labels": [[0]]}), tmp_path / "test.parquet")
    data = load_dataset(tmp_path)
    assert data.task.kind == "multilabel" and data.task.labels == ["0", "1", "2", "3"]
    assert data.targets["test"].tolist() == [[1.0, 0.0, 0.0, 0.0]]
    assert data.files["test"].endswith("test.parquet")


def test_hub_name_loaded_when_online(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, **kwargs):
        calls.append(name)
        return datasets.DatasetDict({
            "train": datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]}),
            "validation": datasets.Dataset.from_dict({"text": ["v"], "label": [1]}),
        })

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_dataset("someorg/imbalanced-reviews")
    assert calls == ["someorg/imbalanced-reviews"]
    assert data.task.kind == "binary" and data.files["validation"] == "someorg/imbalanced-reviews#validation"
