"""Reading prediction inputs: plain text and JSONL, empty-line handling, clear errors."""

from __future__ import annotations

import json

import pytest

from tailtune.errors import DataError
from tailtune.evaluation.inputs import read_texts


def test_plain_text_skips_empty_lines_and_keeps_line_numbers(tmp_path):
    f = tmp_path / "in.txt"
    f.write_bytes(b"first\r\n\r\n  \nsecond\n")
    got = read_texts(f)
    assert got.texts == ["first", "second"] and got.lines == [1, 4] and got.skipped == [2, 3]


def test_jsonl_text_field(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"text": "a"}\n{"text": "  "}\n\n{"text": "b", "id": 3}\n', encoding="utf-8")
    got = read_texts(f)
    assert got.texts == ["a", "b"] and got.lines == [1, 4] and got.skipped == [2, 3]
    f.write_text('{"text": "a"}\n{"body": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: needs a string field 'text'.*\['body'\]"):
        read_texts(f)
    f.write_text('{"text": "a"\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1: not valid JSON"):
        read_texts(f)


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_texts(tmp_path / "none.txt")
    f = tmp_path / "latin.txt"
    f.write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match="not valid UTF-8"):
        read_texts(f)
    f.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no text"):
        read_texts(f)


# ------------------------------------------------------------------------------ tables (issue 18)


def test_csv_input_is_a_table_and_its_header_is_not_a_text(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text('id,text\n1,first text\n2,"second, with a comma"\n3,"two\nlines"\n4,\n5,last\n', encoding="utf-8")
    got = read_texts(f)
    assert got.texts == ["first text", "second, with a comma", "two\nlines", "last"]
    assert got.lines == [2, 3, 4, 7] and got.skipped == [6] and got.column == "text"


def test_the_text_column_defaults_to_the_runs_then_text_and_can_be_named(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("review,text\ngood film,ignored\n", encoding="utf-8")
    assert read_texts(f, default_column="review").texts == ["good film"]
    assert read_texts(f).texts == ["ignored"]
    assert read_texts(f, text_column="review").texts == ["good film"]
    with pytest.raises(DataError, match=r"no column 'reveiw' \(did you mean 'review'\?\).*--text-column"):
        read_texts(f, text_column="reveiw")
    f.write_text("Body,Label\nhello,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"in\.csv: no text column: looked for .*found \['Body', 'Label'\].*--text-column"):
        read_texts(f)
    f.write_text("Text,Label\nhello,x\n", encoding="utf-8")
    assert read_texts(f).texts == ["hello"]


def test_semicolon_csv_tsv_and_bom(tmp_path):
    f = tmp_path / "in.csv"
    f.write_bytes(b"\xef\xbb\xbftext;label\nbonjour, le monde;x\nsalut;y\n")
    got = read_texts(f)
    assert got.texts == ["bonjour, le monde", "salut"] and got.notes
    t = tmp_path / "in.tsv"
    t.write_text("label\ttext\nx\tone\ny\ttwo\n", encoding="utf-8")
    assert read_texts(t).texts == ["one", "two"]
    p = tmp_path / "in.txt"
    p.write_bytes(b"\xef\xbb\xbffirst\nsecond\n")
    assert read_texts(p).texts == ["first", "second"]
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b'\xef\xbb\xbf{"text": "a"}\n')
    assert read_texts(j).texts == ["a"]


def test_jsonl_uses_the_runs_text_field_and_json_arrays(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"sentence": "a", "text": "no"}\n{"sentence": "b"}\n', encoding="utf-8")
    assert read_texts(f, default_column="sentence").texts == ["a", "b"]
    assert read_texts(f, text_column="sentence").texts == ["a", "b"]
    a = tmp_path / "in.json"
    a.write_text('[{"text": "x"}, {"text": ""}, {"text": "y"}]', encoding="utf-8")
    got = read_texts(a)
    assert got.texts == ["x", "y"] and got.lines == [1, 3] and got.skipped == [2]


def test_text_column_is_refused_for_plain_text_and_utf16_is_named(tmp_path):
    p = tmp_path / "in.txt"
    p.write_text("hello\n", encoding="utf-8")
    with pytest.raises(DataError, match="--text-column applies to CSV, TSV and JSONL"):
        read_texts(p, text_column="text")
    p.write_bytes("hello\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"is UTF-16 .*not UTF-8; re-encode the file as UTF-8"):
        read_texts(p)


def test_predict_reads_a_csv_with_its_text_column(tmp_path, run_factory, capsys):
    """Before the fix the header line was predicted as a text (3 rows out for 2 texts)."""
    from tailtune.cli.main import main

    run = run_factory("multiclass")
    f = tmp_path / "in.csv"
    f.write_text("id;text\n1;a fine film\n2;\"a dull, long film\"\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(run), "-i", str(f), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rows] == [2, 3]
    assert "';' as the column delimiter" in capsys.readouterr().err
    assert main(["predict", str(run), "-i", str(f), "-o", str(out), "--text-column", "txt"]) == 2
    assert "no column 'txt' (did you mean 'text'?)" in capsys.readouterr().err


# ------------------------------------------------------------------------------ careless inputs (user pass)


def test_a_spreadsheet_is_refused_not_predicted_as_lines_of_bytes(tmp_path):
    """Before: an .xlsx went down the plain-text path and its bytes were predicted as texts."""
    f = tmp_path / "export.xlsx"
    f.write_bytes(b"PK\x03\x04[Content_Types].xml")
    with pytest.raises(DataError, match=r"export\.xlsx: unsupported file type '\.xlsx' \(a spreadsheet\).*CSV UTF-8"):
        read_texts(f)


def test_nul_bytes_are_named_not_predicted(tmp_path):
    """Before: UTF-16 without a byte-order mark decoded as 'h\\x00i' texts."""
    f = tmp_path / "in.txt"
    f.write_bytes("hi\nthere\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"holds NUL bytes .*UTF-16 without a byte-order mark.*iconv"):
        read_texts(f)


def test_an_unclosed_quote_in_a_csv_names_its_line(tmp_path):
    """Before: the lenient csv reader made the rest of the file one text, silently."""
    f = tmp_path / "in.csv"
    f.write_text('id,text\n1,first\n2,"runaway\n3,third\n4,fourth\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"in\.csv line 3: a quoted cell opens here and is never closed"):
        read_texts(f)


def test_a_json_text_that_is_not_a_string_says_what_it_holds(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"text": "fine"}\n{"text": 5}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2: field 'text' holds int 5, not a string"):
        read_texts(f)
    f.write_text('{"text": "fine"}\n{"text": null}\n', encoding="utf-8")
    got = read_texts(f)
    assert got.texts == ["fine"] and got.skipped == [2]


def test_parquet_input_is_read_as_a_table(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "review": ["good", None, "bad"]}), f)
    got = read_texts(f)
    assert got.texts == ["good", "bad"] and got.lines == [1, 3] and got.skipped == [2] and got.column == "review"
    pq.write_table(pa.table({"text": [1, 2]}), f)
    with pytest.raises(DataError, match=r"column 'text' holds int64, not text"):
        read_texts(f)
    f.write_bytes(b"junk")
    with pytest.raises(DataError, match=r"not a readable Parquet file"):
        read_texts(f)
