"""Reading prediction inputs: plain text and JSONL, empty-line handling, clear errors."""

from __future__ import annotations

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
    with pytest.raises(DataError, match="not UTF-8"):
        read_texts(f)
    f.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no text"):
        read_texts(f)
