"""Every kind of bad input raises one DataError naming the file, the row and the fix."""

from __future__ import annotations

import codecs
import json

import pytest
from tt_data_helpers import write_csv, write_jsonl

from tailtune.data import load_dataset
from tailtune.errors import DataError


def _rows(n=20, labels=("a", "b")):
    return [{"text": f"text {i}", "labels": labels[i % len(labels)]} for i in range(n)]


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")


def test_folder_without_train_file(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", _rows())
    with pytest.raises(DataError, match="no train file"):
        load_dataset(tmp_path)


def test_hub_name_refused_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="offline"):
        load_dataset("someorg/some-dataset")


def test_missing_column_lists_columns_and_suggests(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows())
    with pytest.raises(DataError, match=r"'texts' not found .*did you mean 'text'.*\['text', 'labels'\]"):
        load_dataset(tmp_path, text_column="texts")
    with pytest.raises(DataError, match=r"label column 'label' not found.*did you mean 'labels'"):
        load_dataset(tmp_path, label_column="label")


def test_missing_column_in_validation_names_that_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows())
    write_jsonl(tmp_path / "validation.jsonl", [{"body": "x", "labels": "a"}])
    with pytest.raises(DataError, match=r"validation.jsonl.*columns are \['body', 'labels'\]"):
        load_dataset(tmp_path)


def test_empty_text_names_file_and_line_and_drop_option(tmp_path):
    rows = _rows()
    rows[6]["text"] = "   "
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"empty text at .*train.jsonl line 7.*--drop-empty-text"):
        load_dataset(tmp_path)
    data = load_dataset(tmp_path, empty_text="drop")
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 19


def test_null_text_jsonl_and_nan_text_csv(tmp_path):
    rows = _rows()
    rows[3]["text"] = None
    write_jsonl(tmp_path / "j" / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"missing \(null/NaN\) text at .*train.jsonl line 4.*data.empty_text: drop"):
        load_dataset(tmp_path / "j")
    dropped = load_dataset(tmp_path / "j", empty_text="drop")  # a missing text is dropped like an empty one
    assert len(dropped.splits["train"]) + len(dropped.splits["validation"]) == 19
    csv_rows = [("a", "x"), ("", "y"), ("c", "x"), ("d", "y"), ("e", "x"), ("f", "y")]
    write_csv(tmp_path / "c" / "train.csv", ["text", "labels"], csv_rows)
    with pytest.raises(DataError, match=r"missing \(null/NaN\) text at .*train.csv line 3"):
        load_dataset(tmp_path / "c")
    dropped = load_dataset(tmp_path / "c", empty_text="drop", val_fraction=0.34)  # an empty CSV cell
    assert sorted(list(dropped.splits["train"]["text"]) + list(dropped.splits["validation"]["text"])) == list("acdef")


def test_unknown_label_in_validation_names_file_and_line(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows())
    val = _rows(5)
    val[2]["labels"] = "c"
    write_jsonl(tmp_path / "validation.jsonl", val)
    with pytest.raises(DataError, match=r"label 'c' at .*validation.jsonl line 3 does not occur in the training data"):
        load_dataset(tmp_path)


def test_unknown_label_index_in_test(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows(labels=(0, 1, 2)))
    test = _rows(4, labels=(0, 1))
    test[3]["labels"] = 5
    write_jsonl(tmp_path / "test.jsonl", test)
    with pytest.raises(DataError, match=r"index 5 at .*test.jsonl line 4 does not occur in the training data"):
        load_dataset(tmp_path)


def test_unknown_multilabel_name_in_test(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"t{i}", "labels": [["a"], ["b"]][i % 2]} for i in range(20)])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "x", "labels": ["a"]}, {"text": "y", "labels": ["a", "zz"]}])
    with pytest.raises(DataError, match=r"label 'zz' at .*test.jsonl line 2"):
        load_dataset(tmp_path)


def test_label_not_in_labels_txt(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows(labels=("a", "b", "c")))
    (tmp_path / "labels.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"label 'c' at .*train.jsonl line 3 is not in .*labels.txt"):
        load_dataset(tmp_path)


def test_label_with_zero_training_examples(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows(labels=("a", "b")))
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    with pytest.raises(DataError, match=r"\['c'\] have zero training examples"):
        load_dataset(tmp_path)
    write_jsonl(tmp_path / "i" / "train.jsonl", _rows(labels=(0, 2)))
    with pytest.raises(DataError, match=r"\['1'\] have zero training examples"):
        load_dataset(tmp_path / "i")


def test_mixed_label_types_jsonl(tmp_path):
    rows = _rows(labels=(0, 1))
    rows[5]["labels"] = "spam"
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"mixed label types .*int at .*line 1 but str at .*line 6"):
        load_dataset(tmp_path)


def test_mixed_label_types_csv(tmp_path):
    write_csv(tmp_path / "train.csv", ["text", "labels"], [(f"t{i}", "spam" if i == 4 else str(i % 2)) for i in range(10)])
    with pytest.raises(DataError, match=r"mixed label types .*index '0' at .*line 2.* name 'spam' at .*line 6"):
        load_dataset(tmp_path)


def test_mixed_label_types_across_splits(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows())
    write_jsonl(tmp_path / "test.jsonl", [{"text": "x", "labels": ["a"]}])
    with pytest.raises(DataError, match=r"mixed label types across splits: .*name labels but .*test.jsonl has name-list"):
        load_dataset(tmp_path)


def test_missing_and_fractional_labels(tmp_path):
    rows = _rows(labels=(0, 1))
    rows[2]["labels"] = None
    write_jsonl(tmp_path / "a" / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"missing label .*line 3"):
        load_dataset(tmp_path / "a")
    rows = _rows(labels=(0.0, 1.0))
    rows[1]["labels"] = 0.5
    write_jsonl(tmp_path / "b" / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"0.5 at .*line 2 \(column 'labels'\) is not a class index"):
        load_dataset(tmp_path / "b")
    write_csv(tmp_path / "c" / "train.csv", ["text", "labels"], [("a", "x"), ("b", ""), ("c", "y")])
    with pytest.raises(DataError, match=r"missing label at .*train.csv line 3"):
        load_dataset(tmp_path / "c")


def test_invalid_utf8_names_byte_offset(tmp_path):
    good = b'{"text": "ok", "labels": "a"}\n'
    path = tmp_path / "train.jsonl"
    path.write_bytes(good * 3 + b'{"text": "caf\xe9", "labels": "b"}\n')
    offset = len(good) * 3 + len(b'{"text": "caf')
    with pytest.raises(DataError, match=rf"not valid UTF-8: byte offset {offset} \(line 4\)"):
        load_dataset(tmp_path)


def test_invalid_utf8_across_chunk_boundary(tmp_path):
    from tailtune.data.readers import check_utf8

    path = tmp_path / "x.csv"
    data = ("é" * 10).encode() + b"\xff" + b"abc"
    path.write_bytes(data)
    for chunk in (3, 4, 7, 64):
        with pytest.raises(DataError, match="byte offset 20 "):
            check_utf8(path, chunk_size=chunk)


def test_aspect_polarity_outside_declared_set(tmp_path):
    rows = [{"text": f"t{i}", "labels": [["food#positive"], ["food#negative", "staff#positive"]][i % 2]} for i in range(20)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", [{"text": "x", "labels": ["food#great"]}])
    with pytest.raises(DataError, match=r"polarity 'great' \(aspect 'food'\) at .*validation.jsonl line 1 is outside the declared set"):
        load_dataset(tmp_path)
    spec = {"kind": "aspects", "labels": ["food", "staff"], "polarities": ["positive"]}
    (tmp_path / "validation.jsonl").unlink()
    with pytest.raises(DataError, match=r"polarity 'negative' .*train.jsonl line 2 .*from the task's polarities"):
        load_dataset(tmp_path, task=spec)


def test_aspect_dict_polarity_outside_declared_set(tmp_path):
    rows = [{"text": f"t{i}", "aspects": {"food": ["positive", "negative"][i % 2], "staff": "absent"}} for i in range(10)]
    rows.append({"text": "z", "aspects": {"food": "positive", "staff": "positive"}})
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", [{"text": "y", "aspects": {"food": "meh", "staff": "absent"}}])
    with pytest.raises(DataError, match=r"polarity 'meh' for aspect 'food' at .*test.jsonl line 1"):
        load_dataset(tmp_path)


def test_malformed_pairs_and_empty_file(tmp_path):
    write_jsonl(tmp_path / "a" / "train.jsonl", [{"text": "t", "labels": ["food#positive"]},
                                                 {"text": "u", "labels": ["food#positive#x"]}])
    with pytest.raises(DataError, match="is not 'aspect#polarity'"):
        load_dataset(tmp_path / "a", task="aspects")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "train.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_dataset(tmp_path / "b")


def test_malformed_json_and_unsupported_file(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "labels": "x"}\n{"text": oops}\n')
    with pytest.raises(DataError, match="could not read .*train.jsonl as jsonl"):
        load_dataset(tmp_path)
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        load_dataset(tmp_path / "data.xlsx")


def test_bad_task_arguments(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows(labels=("a", "b", "c")))
    with pytest.raises(DataError, match="did you mean 'multilabel'"):
        load_dataset(tmp_path, task="multilabl")
    with pytest.raises(DataError, match="needs 2 classes"):
        load_dataset(tmp_path, task="binary")
    with pytest.raises(DataError, match="cycle"):
        load_dataset(tmp_path, task={"kind": "multilabel", "labels": ["a", "b", "c"], "hierarchy": {"a": "b", "b": "a"}})
    with pytest.raises(DataError, match="need kind 'multilabel'|aspects need"):
        write_jsonl(tmp_path / "l" / "train.jsonl", [{"text": "t", "labels": ["a"]}, {"text": "u", "labels": ["b"]}])
        load_dataset(tmp_path / "l", task="multiclass")
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset(tmp_path, val_fraction=1.5)


def test_indicator_column_not_binary(tmp_path):
    write_csv(tmp_path / "train.csv", ["text", "a", "b"], [("t", 1, 0), ("u", 0, 2)])
    with pytest.raises(DataError, match=r"indicator column 'b' holds '2' at .*line 3"):
        load_dataset(tmp_path, label_column="a,b")


def test_labels_txt_with_duplicate(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", _rows())
    (tmp_path / "labels.txt").write_text("a\nb\na\n")
    with pytest.raises(DataError, match="names label 'a' twice"):
        load_dataset(tmp_path)


def test_json_array_file_with_bad_text_type(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([{"text": 1, "labels": "a"}, {"text": 2, "labels": "b"}]))
    with pytest.raises(DataError, match="holds int64 values, not text"):
        load_dataset(tmp_path)


def test_fractional_index_inside_a_list(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "labels": [0.0, 1.0]}, {"text": "b", "labels": [1.5]}])
    with pytest.raises(DataError, match=r"1.5 inside the list at .*line 2"):
        load_dataset(tmp_path)


def test_mixed_types_inside_lists(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": "a", "labels": [0, 1]}, {"text": "b", "labels": ["x"]}])
    with pytest.raises(DataError, match="mixed label types"):
        load_dataset(tmp_path)


def test_label_only_in_dropped_empty_rows(tmp_path):
    rows = _rows(labels=("a", "b"))
    rows.append({"text": " ", "labels": "c"})
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"\['c'\] .*only in rows with empty text"):
        load_dataset(tmp_path, empty_text="drop")


def test_text_of_another_json_type_in_one_row_names_the_row(tmp_path):
    rows = _rows()
    rows[3]["text"] = 5
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"text at .*train.jsonl line 4 \(column 'text'\) is int '5', not a string"):
        load_dataset(tmp_path)


def test_aspect_dict_with_a_non_name_polarity_names_the_row(tmp_path):
    rows = [{"text": f"t{i}", "labels": {"food": "positive", "staff": "negative"}} for i in range(10)]
    rows[6]["labels"]["staff"] = 3
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"aspect 'staff' at .*line 7 .*has polarity 3, not a name"):
        load_dataset(tmp_path)


def test_booleans_mixed_with_integer_indices_are_indices(tmp_path):
    """JSON true/false next to 0/1 (scalars or in lists) read as indices instead of crashing in Arrow."""
    rows = [{"text": f"t{i}", "labels": [1, 0, True, False][i % 4]} for i in range(20)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    data = load_dataset(tmp_path)
    assert data.task.kind == "binary"
    assert sorted(set(data.targets["train"].tolist()) | set(data.targets["validation"].tolist())) == [0, 1]
    rows = [{"text": f"t{i}", "labels": [[0, True], [1], [False, 1]][i % 3]} for i in range(30)]
    write_jsonl(tmp_path / "ml" / "train.jsonl", rows)
    data = load_dataset(tmp_path / "ml")
    assert data.task.kind == "multilabel" and data.task.labels == ["0", "1"]


def test_booleans_beside_indices_beyond_one_name_the_row(tmp_path):
    """true among class indices 0..2 is not a class: an error naming the file, row and column."""
    rows = [{"text": f"t{i}", "labels": [0, 1, 2][i % 3]} for i in range(12)] + [{"text": "x", "labels": True}]
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"true/false at \S*train\.jsonl line 13 \(column 'labels'\) is a boolean .*line 3"):
        load_dataset(tmp_path)
    rows = [{"text": f"t{i}", "labels": [[0, True], [1], [False, 2]][i % 3]} for i in range(30)]
    write_jsonl(tmp_path / "ml" / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"true/false inside the list at \S* line 1 .*beyond 0/1"):
        load_dataset(tmp_path / "ml")


def test_a_missing_column_names_the_flag_and_the_recipe_field(tmp_path):
    """Before: `tailtune train` users were told "name it with --label-column", a flag train lacks."""
    write_jsonl(tmp_path / "train.jsonl", [{"review": f"t {i}", "tags": "ab"[i % 2]} for i in range(20)])
    with pytest.raises(DataError, match=r"no label column .*name it with --label-column \(recipe: data\.labels, "
                                        r"e\.g\. --set data\.labels=NAME\)"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match=r"text column 'body' not found .*pick one with --text-column \(recipe: data\.text"):
        load_dataset(tmp_path, text_column="body", label_column="tags")


@pytest.mark.parametrize("data", [
    codecs.BOM_UTF16_LE + "text,label\n".encode("utf-16-le"),
    "text,label\n".encode("utf-16-le"),  # NUL bytes, no mark
    ("é" * 10).encode() + b"\xff" + b"abc\n",
    codecs.BOM_UTF8 + b"a\nb\n" + b"\xc3(" + b"\n",
])
def test_read_utf8_says_what_check_utf8_says(tmp_path, data):
    """predict reads its input once (read_utf8); what it refuses, and the message, are the training
    reader's (check_utf8, which streams): the same encoding named, the same byte offset and line."""
    from tailtune.data.readers import check_utf8, read_utf8

    path = tmp_path / "x.csv"
    path.write_bytes(data)
    with pytest.raises(DataError) as streamed:
        check_utf8(path)
    with pytest.raises(DataError) as whole:
        read_utf8(path)
    assert str(whole.value) == str(streamed.value)


def test_read_utf8_drops_a_utf8_mark(tmp_path):
    from tailtune.data.readers import read_utf8

    path = tmp_path / "x.csv"
    path.write_bytes(codecs.BOM_UTF8 + "text\nçé\n".encode())
    assert read_utf8(path) == "text\nçé\n"
