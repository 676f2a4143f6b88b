"""Input that used to be silently misread (issue 18): each test failed on the code before the fix.

Joined multi-label strings, a kind inferred from a minority of rows, NFC/NFD label spellings, a
semicolon CSV, label indices that are not class indices, and a declared label absent from a
subsample; plus what spreadsheets and exports leave behind (empty or duplicated header cells,
blank rows and lines, UTF-16, bracketed lists written as text, a BOM in labels.txt).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import unicodedata

import numpy as np
import pytest
from tt_data_helpers import write_csv, write_jsonl

from tailtune.data import load_dataset
from tailtune.errors import DataError

EMOTIONS = ["anger", "approval", "disapproval", "joy", "neutral"]


def _joined_rows(n: int = 60) -> list[tuple[str, str]]:
    rows = []
    for i in range(n):
        a, b = EMOTIONS[i % 5], EMOTIONS[(i * 2 + 1) % 5]
        rows.append((f"text {i}", f"{a},{b}" if i % 3 == 0 and a != b else a))
    return rows


# ------------------------------------------------------------------------------ joined labels


def test_comma_joined_labels_name_the_separator_and_how_to_declare_it(tmp_path):
    path = write_csv(tmp_path / "goemo.csv", ["text", "labels"], _joined_rows())
    with pytest.raises(DataError) as info:
        load_dataset(path)
    msg = str(info.value)
    assert "joined by ','" in msg and "goemo.csv line 2 (row 1 after the header)" in msg
    assert "data.label_sep: ','" in msg and "--label-sep ," in msg and "task.kind: multiclass" in msg
    data = load_dataset(path, label_sep=",")
    assert data.task.kind == "multilabel" and data.task.labels == sorted(EMOTIONS)
    # declared single-class names are not second-guessed
    assert load_dataset(path, task="multiclass").task.kind == "multiclass"


def test_pipe_joined_labels_in_a_folder_are_caught_in_train(tmp_path):
    rows = [(t, y.replace(",", "|")) for t, y in _joined_rows()]
    write_csv(tmp_path / "train.csv", ["text", "labels"], rows)
    write_csv(tmp_path / "validation.csv", ["text", "labels"], [("x", "disapproval|neutral")])
    with pytest.raises(DataError, match=r"joined by '\|'.*--label-sep '\|'"):
        load_dataset(tmp_path)


def test_an_unknown_validation_label_that_joins_known_ones_says_so(tmp_path):
    write_csv(tmp_path / "train.csv", ["text", "labels"], [(f"t{i}", EMOTIONS[i % 5]) for i in range(20)])
    write_csv(tmp_path / "validation.csv", ["text", "labels"], [("x", "joy"), ("y", "disapproval,neutral")])
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    msg = str(info.value)
    assert "validation.csv line 3" in msg and "joined by ','" in msg and "--label-sep" in msg


# ------------------------------------------------------------------------------ a kind from a minority


def _pair_rows(n: int = 40) -> list[dict]:
    aspects, pols = ["food", "staff", "price"], ["positive", "negative", "neutral"]
    return [{"text": f"review {i}", "labels": [f"{aspects[i % 3]}#{pols[i % 3]}", f"{aspects[(i + 1) % 3]}#{pols[(i + 2) % 3]}"]}
            for i in range(n)]


def test_one_others_entry_does_not_turn_aspects_into_multilabel(tmp_path):
    rows = _pair_rows()
    rows[17]["labels"] = ["OTHERS"]
    path = write_jsonl(tmp_path / "reviews.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_dataset(path)
    msg = str(info.value)
    assert "'OTHERS' at" in msg and "reviews.jsonl line 18" in msg
    assert "task.kind: aspects" in msg and "--task multilabel" in msg
    with pytest.raises(DataError, match=r"aspect label 'OTHERS' at \S* line 18 is not 'aspect#polarity'"):
        load_dataset(path, task="aspects")
    assert load_dataset(path, task="multilabel").task.kind == "multilabel"


# ------------------------------------------------------------------------------ Unicode forms


def test_nfc_and_nfd_spellings_of_a_label_are_one_class_with_a_warning(tmp_path):
    nfd, nfc = unicodedata.normalize("NFD", "café"), unicodedata.normalize("NFC", "café")
    assert nfd != nfc
    rows = [(f"t{i}", [nfc, nfd, "bar"][i % 3]) for i in range(30)]
    data = load_dataset(write_csv(tmp_path / "train.csv", ["text", "labels"], rows))
    assert data.task.labels == ["bar", nfc]
    warning = next(n for n in data.notes if "NFC" in n)
    assert warning.startswith("warning:") and "train.csv line 3" in warning and "now one class" in warning


def test_nfd_names_in_labels_txt_aspect_dicts_and_lists_match_nfc_data(tmp_path):
    nfd, nfc = unicodedata.normalize("NFD", "Phở"), unicodedata.normalize("NFC", "Phở")
    write_jsonl(tmp_path / "ml" / "train.jsonl", [{"text": f"t{i}", "labels": [[nfc], ["pin"], [nfd, "pin"]][i % 3]}
                                                 for i in range(12)])
    (tmp_path / "ml" / "labels.txt").write_text(f"pin\n{nfd}\n", encoding="utf-8")
    data = load_dataset(tmp_path / "ml")
    assert data.task.labels == ["pin", nfc]
    assert data.targets["train"].sum(axis=0).tolist()[1] + data.targets["validation"].sum(axis=0).tolist()[1] == 8
    rows = [{"text": f"t{i}", "aspects": {[nfc, nfd][i % 2]: ["positive", "negative"][i % 2 // 1], "pin": "neutral"}}
            for i in range(12)]
    write_jsonl(tmp_path / "asp" / "train.jsonl", rows)
    data = load_dataset(tmp_path / "asp")
    assert data.task.kind == "aspects" and sorted(data.task.labels) == sorted([nfc, "pin"])


# ------------------------------------------------------------------------------ delimiters


def test_a_semicolon_csv_is_read_with_its_delimiter_and_says_so(tmp_path):
    rows = [(f"hello, world {i}", "spam" if i % 3 == 0 else "ham") for i in range(30)]
    path = write_csv(tmp_path / "excel.csv", ["text", "labels"], rows, sep=";")
    data = load_dataset(path)
    assert data.task.labels == ["ham", "spam"]
    texts = sorted(t for ds in data.splits.values() for t in ds["text"])
    assert texts == sorted(t for t, _ in rows)
    assert any("';' as the column delimiter" in n for n in data.notes)


def test_a_tsv_written_with_commas_and_a_tab_csv(tmp_path):
    rows = [(f"message {i}", "b" if i % 2 else "a") for i in range(20)]
    assert load_dataset(write_csv(tmp_path / "a.tsv", ["text", "labels"], rows, sep=",")).task.labels == ["a", "b"]
    assert load_dataset(write_csv(tmp_path / "b.csv", ["text", "labels"], rows, sep="\t")).task.labels == ["a", "b"]


# ------------------------------------------------------------------------------ indices


@pytest.mark.parametrize("value, pattern", [
    ("Infinity", r"label inf at \S*train\.jsonl line 5 \(column 'labels'\) is not a class index"),
    ("-Infinity", r"label -inf at \S*train\.jsonl line 5 \(column 'labels'\) is not a class index"),
    ("1e300", r"label 1e\+300 at \S*train\.jsonl line 5 \(column 'labels'\) is not a class index"),
    ("99999999999999999999999", r"at \S*train\.jsonl line 5 \(column 'labels'\) is not a class index"),
    ("[0, Infinity]", r"label inf inside the list at \S*train\.jsonl line 5 \(column 'labels'\)"),
])
def test_non_finite_and_huge_indices_name_file_row_and_column(tmp_path, value, pattern):
    lines = [json.dumps({"text": f"t{i}", "labels": i % 2 if "[" not in value else [i % 2]}) for i in range(8)]
    lines[4] = '{"text": "t4", "labels": ' + value + '}'
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=pattern):
        load_dataset(tmp_path)


def test_a_huge_index_string_in_a_csv_names_the_row(tmp_path):
    rows = [(f"t{i}", str(i % 3)) for i in range(9)] + [("x", "99999999999999999999999")]
    with pytest.raises(DataError, match=r"'99999999999999999999999' at \S*train\.csv line 11 .*column 'labels'"):
        load_dataset(write_csv(tmp_path / "train.csv", ["text", "labels"], rows))


def test_one_label_value_of_2000000000_is_refused_before_any_allocation(tmp_path):
    """Before the fix this built 2e9 class names (SIGKILL at 23 GB); under a 2 GiB address-space limit
    the child must end with the DataError naming the row, not a MemoryError."""
    rows = [{"text": f"t{i}", "labels": i % 28} for i in range(56)]
    rows[30]["labels"] = 2_000_000_000
    write_jsonl(tmp_path / "train.jsonl", rows)
    code = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from tailtune.data import load_dataset
        from tailtune.errors import DataError
        try:
            load_dataset({str(tmp_path)!r}, cache_dir={str(tmp_path / 'cache')!r})
        except DataError as exc:
            print("DataError:", exc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "DataError: label index 2000000000 at" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "train.jsonl line 31 (column 'labels') is far beyond the other indices" in proc.stdout


def test_an_index_beyond_labels_txt_is_bounded_without_allocating(tmp_path):
    rows = [{"text": f"t{i}", "labels": [i % 3]} for i in range(12)] + [{"text": "x", "labels": [2_000_000_000]}]
    write_jsonl(tmp_path / "train.jsonl", rows)
    (tmp_path / "labels.txt").write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"label index 2000000000 at \S* line 13 is out of range: \S*labels\.txt names 3"):
        load_dataset(tmp_path)


# ------------------------------------------------------------------------------ a declared label absent from a subsample

NAMES = [f"emo{i}" for i in range(28)]


def _subsample(folder, missing: int, *, labels_txt: bool = True, test: bool = False):
    used = [i for i in range(28) if i != missing]
    write_jsonl(folder / "train.jsonl", [{"text": f"t{j}", "labels": [used[j % 27]]} for j in range(270)])
    if test:
        write_jsonl(folder / "test.jsonl", [{"text": f"x{j}", "labels": [j % 28, (j + 1) % 28]} for j in range(56)])
    if labels_txt:
        (folder / "labels.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return folder


def test_a_declared_label_absent_from_a_subsample_suggests_a_fix_that_works(tmp_path):
    folder = _subsample(tmp_path, missing=5, test=True)
    with pytest.raises(DataError) as info:
        load_dataset(folder)
    msg = str(info.value)
    assert "['emo5'] have zero training examples" in msg and "renumbers" in msg
    assert "data.unused_labels: drop" in msg and "--drop-unused-labels" in msg
    data = load_dataset(folder, unused_labels="drop")  # the suggested fix
    assert data.task.labels == NAMES[:5] + NAMES[6:]
    # every other label keeps its name: test row 0 holds emo0 and emo1, row 6 holds emo6 and emo7
    test = data.targets["test"]
    assert [data.task.labels[c] for c in np.flatnonzero(test[0])] == ["emo0", "emo1"]
    assert [data.task.labels[c] for c in np.flatnonzero(test[6])] == ["emo6", "emo7"]
    assert [data.task.labels[c] for c in np.flatnonzero(test[5])] == ["emo6"]  # emo5 removed from its row
    assert any("left out label(s) ['emo5']" in n for n in data.notes)


def test_a_hierarchy_naming_a_left_out_label_says_why_and_which_entries(tmp_path):
    """Before: "hierarchy names 'emo5', which is not a label; labels: [...]" although emo5 is in
    labels.txt: the user had asked for unused_labels: drop and was not told that was the reason."""
    folder = _subsample(tmp_path, missing=5)
    with pytest.raises(DataError, match=r"task\.hierarchy names \['emo5'\], left out of the task for having no "
                                        r"training example \(unused_labels: drop\); remove the entries naming them "
                                        r"from task\.hierarchy \(emo5: emo1\)"):
        load_dataset(folder, task={"kind": "multilabel", "hierarchy": {"emo5": "emo1", "emo6": "emo1"}},
                     unused_labels="drop")
    data = load_dataset(folder, task={"kind": "multilabel", "hierarchy": {"emo6": "emo1"}}, unused_labels="drop")
    assert data.task.hierarchy == {"emo6": "emo1"}


def test_the_task_labels_route_selects_by_name_from_labels_txt(tmp_path):
    """The recipe's task.labels (27 names, labels.txt keeping all 28) used to give 'index 27 out of range'."""
    folder = _subsample(tmp_path, missing=5)
    selected = NAMES[:5] + NAMES[6:]
    for task in ({"labels": selected}, {"kind": "multilabel", "labels": selected}):
        data = load_dataset(folder, task=task)
        assert data.task.labels == selected and data.task.kind == "multilabel"
        y = np.concatenate([data.targets["train"], data.targets["validation"]])
        assert y.sum(axis=0).min() > 0 and y.shape[1] == 27


def test_removing_an_index_label_from_labels_txt_explains_the_renumbering(tmp_path):
    folder = _subsample(tmp_path, missing=5)
    (folder / "labels.txt").write_text("\n".join(NAMES[:5] + NAMES[6:]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"index 27 at .*out of range.*renumbers the labels after it.*unused_labels: drop"):
        load_dataset(folder)


def test_removing_a_name_label_from_labels_txt_works(tmp_path):
    rows = [{"text": f"t{j}", "labels": [NAMES[j % 28]] if j % 28 != 5 else ["emo0"]} for j in range(280)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    (tmp_path / "labels.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"\['emo5'\] .*remove them from \S*labels\.txt"):
        load_dataset(tmp_path)
    (tmp_path / "labels.txt").write_text("\n".join(n for n in NAMES if n != "emo5") + "\n", encoding="utf-8")
    assert len(load_dataset(tmp_path).task.labels) == 27


def test_unused_index_without_labels_txt_drops_by_value(tmp_path):
    folder = _subsample(tmp_path, missing=5, labels_txt=False, test=True)
    with pytest.raises(DataError, match=r"label index\(es\) \['5'\] have zero training examples .*unused_labels: drop"):
        load_dataset(folder)
    data = load_dataset(folder, unused_labels="drop")
    assert "5" not in data.task.labels and len(data.task.labels) == 27
    # re-reading with the trained task (what `evaluate --recompute` does) maps indices by value
    again = load_dataset(folder, task=data.task.to_dict(), unused_labels="drop")
    assert np.array_equal(again.targets["test"], data.targets["test"])
    assert [again.task.labels[c] for c in np.flatnonzero(again.targets["test"][6])] == ["6", "7"]


# ------------------------------------------------------------------------------ what spreadsheets leave behind


def test_trailing_empty_header_cells_and_padded_names(tmp_path):
    body = "Text , Label,,\n" + "".join(f"m {i},{'a' if i % 2 else 'b'},,\n" for i in range(20))
    (tmp_path / "train.csv").write_text(body, encoding="utf-8")
    data = load_dataset(tmp_path / "train.csv")
    assert data.task.labels == ["a", "b"] and data.task.text_column == "Text"
    assert any("Unnamed: 2" in n for n in data.notes) and any("'Text'" in n for n in data.notes)


def test_a_duplicated_header_name_is_an_error(tmp_path):
    (tmp_path / "train.csv").write_text("text,labels,text\na,b,c\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"names column 'text' twice \(columns 1 and 3\); rename or delete one"):
        load_dataset(tmp_path / "train.csv")


def test_blank_rows_of_a_spreadsheet_are_dropped_with_empty_text_drop(tmp_path):
    body = "text,labels\n" + "".join(f"m {i},{'a' if i % 2 else 'b'}\n" for i in range(20)) + ",\n,\n"
    (tmp_path / "train.csv").write_text(body, encoding="utf-8")
    with pytest.raises(DataError, match=r"missing \(null/NaN\) text at \S* line 22 .*empty_text='drop'"):
        load_dataset(tmp_path / "train.csv")
    data = load_dataset(tmp_path / "train.csv", empty_text="drop")
    assert sum(len(d) for d in data.splits.values()) == 20 and any("2 blank row(s)" in n for n in data.notes)


def test_error_lines_count_blank_lines_and_multi_line_cells(tmp_path):
    body = 'text,labels\na,x\n\n"two\nlines",y\nb,\n'
    (tmp_path / "train.csv").write_text(body, encoding="utf-8")
    with pytest.raises(DataError, match=r"missing label at \S*train\.csv line 6 \(row 3 after the header\)"):
        load_dataset(tmp_path / "train.csv")
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "train.jsonl").write_text(
        '{"text": "a", "labels": "x"}\n\n{"text": "b", "labels": "y"}\n  \n{"text": "c", "labels": null}\n')
    with pytest.raises(DataError, match=r"missing label at \S*train\.jsonl line 5 "):
        load_dataset(tmp_path / "j")


@pytest.mark.parametrize("encoding, pattern", [
    ("utf-16", r"is UTF-16 \(it starts with the byte-order mark FF FE\).*iconv -f utf-16"),
    ("utf-16-le", r"holds NUL bytes .*UTF-16 without a byte-order mark"),
])
def test_utf16_exports_are_named(tmp_path, encoding, pattern):
    (tmp_path / "train.csv").write_bytes("text,labels\na,b\n".encode(encoding))
    with pytest.raises(DataError, match=pattern):
        load_dataset(tmp_path / "train.csv")


def test_a_spreadsheet_file_says_how_to_export_it(tmp_path):
    (tmp_path / "train.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match=r"a spreadsheet\); export it as 'CSV UTF-8'"):
        load_dataset(tmp_path / "train.xlsx")


def test_labels_txt_with_a_byte_order_mark(tmp_path):
    write_csv(tmp_path / "train.csv", ["text", "labels"], [(f"t{i}", "ham" if i % 2 else "spam") for i in range(20)])
    (tmp_path / "labels.txt").write_bytes(b"\xef\xbb\xbfham\r\nspam\r\n")
    assert load_dataset(tmp_path).task.labels == ["ham", "spam"]


@pytest.mark.parametrize("cells, labels", [
    (["['joy', 'love']", "['anger']", "[]"], ["anger", "joy", "love"]),
    (["[0, 2]", "[1]", "[2]"], ["0", "1", "2"]),
    (['["joy"]', '["anger", "joy"]', '["anger"]'], ["anger", "joy"]),
])
def test_lists_written_as_text_by_pandas_are_lists(tmp_path, cells, labels):
    rows = [(f"t{i}", cells[i % 3]) for i in range(30)]
    data = load_dataset(write_csv(tmp_path / "train.csv", ["text", "labels"], rows))
    assert data.task.kind == "multilabel" and data.task.labels == labels
    assert any("as lists" in n for n in data.notes)


def test_labels_differing_only_in_case_are_flagged(tmp_path):
    rows = [(f"t{i}", ["spam", "Spam", "ham"][i % 3]) for i in range(30)]
    data = load_dataset(write_csv(tmp_path / "train.csv", ["text", "labels"], rows))
    assert data.task.labels == ["Spam", "ham", "spam"]
    assert any(n.startswith("warning:") and "'Spam' / 'spam'" in n for n in data.notes)
