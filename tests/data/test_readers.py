"""Reader-level rules shared by training data and prediction inputs (data/readers.py)."""

from __future__ import annotations

import io

import pytest
from tt_data_helpers import write_csv

from tailtune.data import load_dataset
from tailtune.data.readers import refuse_spreadsheet, unclosed_quote_line
from tailtune.errors import DataError


def _lines(text: str, sep: str = ",") -> int | None:
    return unclosed_quote_line(lambda: io.StringIO(text, newline=""), sep)


def test_an_unclosed_quote_is_found_at_the_line_that_opens_it():
    assert _lines('text,labels\na,b\n"never closed,b\nc,d\n') == 3
    assert _lines('text,labels\r\n"two\r\nlines",b\r\n"open\r\n') == 4  # a closed multi-line cell before it
    assert _lines('text,labels\na,b\n"closed\nacross lines",b\n') is None
    assert _lines('text,labels\nmy 5" tv,b\n') is None  # a quote inside an unquoted cell is text
    assert _lines('text,labels\n"x"y,b\n') is None  # lenient parsers accept text after a closing quote
    assert _lines("") is None


def test_training_csv_with_an_unclosed_quote_names_the_file_line(tmp_path):
    """Before: pandas' "EOF inside string starting at row 41", a 0-based data row, not the line."""
    rows = [(f"text {i}", "ab"[i % 2]) for i in range(40)]
    write_csv(tmp_path / "train.csv", ["text", "labels"], rows)
    with open(tmp_path / "train.csv", "a", encoding="utf-8") as fh:
        fh.write('"runaway,a\nmore,b\n')
    with pytest.raises(DataError, match=r"train\.csv line 42: a quoted cell opens here and is never closed"):
        load_dataset(tmp_path)


def test_spreadsheets_are_refused_with_the_export_fix(tmp_path):
    with pytest.raises(DataError, match=r"a spreadsheet\); export it as 'CSV UTF-8'.*'\.txt'"):
        refuse_spreadsheet(tmp_path / "x.ODS", formats=[".csv", ".txt"])
    refuse_spreadsheet(tmp_path / "x.csv")  # not a spreadsheet: nothing to say
