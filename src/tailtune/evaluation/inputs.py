"""Reading texts to predict (``tailtune predict --input FILE``) and writing JSONL results.

Input formats, chosen by suffix:

- ``.csv`` / ``.tsv``: a table with a header; the texts are one column (below). The delimiter is
  detected as for training data (``,``/``;``/tab/``|``, :func:`tailtune.data.readers.sniff_delimiter`),
  quoted cells may span lines, and the header line is never a text;
- ``.jsonl`` / ``.ndjson`` / ``.json``: one JSON object per line (``.json`` may also be one array of
  objects), the text in a field (below);
- ``.parquet``: a table; the texts are one column (below), ``lines`` are 1-based row numbers;
- a spreadsheet (``.xlsx``, ``.ods``, ...): refused with the fix (export it as CSV UTF-8), as for
  training data (:func:`tailtune.data.readers.refuse_spreadsheet`);
- anything else (``.txt``): plain text, one text per line (a trailing ``\\r`` is removed).

The text column (field): ``text_column`` when given (``--text-column``); else the run's own text
column (``task.json``'s ``text_column``, passed as ``default_column``), else the first of ``text``,
``sentence``, ``content``, ``review``, ``document`` the file has (also up to letter case).

All files are UTF-8 (a byte-order mark is ignored; UTF-16/32, NUL bytes and invalid bytes are
named as training data's are). A quoted CSV cell that is never closed is an error naming its line
(a lenient parser would make the rest of the file one text). A JSON ``null`` text is empty. **Empty texts** (an empty line, an empty cell,
whitespace only) are skipped, not predicted: there is nothing to classify and a blank line at the
end of a file is common. They are counted in ``skipped`` so the command can say so, and every output
row carries ``line`` (the 1-based input line where its text starts) so results can be joined back
to the input exactly.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.errors import DataError, did_you_mean
from tailtune.utils.io import atomic_write_text, dumps_json

__all__ = ["InputTexts", "read_texts", "write_jsonl"]

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass
class InputTexts:
    texts: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # 1-based line numbers
    skipped: list[int] = field(default_factory=list)  # 1-based numbers of empty lines
    column: str | None = None  # the column/field read (tables and JSON)
    notes: list[str] = field(default_factory=list)

    def add(self, text: str, line: int) -> None:
        if text.strip():
            self.texts.append(text)
            self.lines.append(line)
        else:
            self.skipped.append(line)


def _decode(path: Path) -> str:
    """The file's text, read once; not UTF-8 (a byte-order mark of UTF-16/32, NUL bytes, an invalid
    byte) is the training reader's error (:func:`tailtune.data.readers.read_utf8`)."""
    from tailtune.data.readers import read_utf8

    return read_utf8(path)


def _pick_column(columns: list[str], path: Path, text_column: str | None, default_column: str | None) -> str:
    from tailtune.data.loading import TEXT_CANDIDATES

    if text_column:
        if text_column in columns:
            return text_column
        raise DataError(
            f"{path}: no column {text_column!r}{did_you_mean(text_column, columns)}; its columns are {columns[:20]}. "
            f"Fix: pass the text column with --text-column"
        )
    candidates = list(dict.fromkeys([c for c in (default_column,) if c] + list(TEXT_CANDIDATES)))
    for c in candidates:
        if c in columns:
            return c
    for c in candidates:
        loose = [col for col in columns if col.strip().casefold() == c.casefold()]
        if len(loose) == 1:
            return loose[0]
    raise DataError(
        f"{path}: no text column: looked for {candidates}, found {columns[:20]}"
        f"{did_you_mean(candidates[0], columns)}. Fix: pass the text column with --text-column"
    )


def _read_table(path: Path, body: str, text_column: str | None, default_column: str | None) -> InputTexts:
    from tailtune.data.readers import clean_header, sniff_delimiter, unclosed_quote_error, unclosed_quote_line

    sep = sniff_delimiter(path, TABLE_SUFFIXES[path.suffix.lower()])
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=sep)
    out = InputTexts()
    start, previous, header, col = 0, 0, None, -1
    old = csv.field_size_limit()
    csv.field_size_limit(1 << 30)
    try:
        for rec in reader:
            start, previous = previous + 1, reader.line_num
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                if header is not None:
                    out.skipped.append(start)
                continue
            if header is None:
                header = clean_header(rec, path)
                out.column = _pick_column(header, path, text_column, default_column)
                col = header.index(out.column)
                continue
            out.add(rec[col] if col < len(rec) else "", start)
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({exc}). Fix: check the quoting") from None
    finally:
        csv.field_size_limit(old)
    unclosed = unclosed_quote_line(lambda: io.StringIO(body, newline=""), sep, last_start=start)
    if unclosed is not None:
        raise unclosed_quote_error(path, unclosed)
    if header is None:
        raise DataError(f"{path}: empty. Fix: a header line naming the columns, then one row per text")
    if sep != TABLE_SUFFIXES[path.suffix.lower()]:
        out.notes.append(f"read {path} with {sep!r} as the column delimiter")
    return out


def _json_text(obj: Any, path: Path, where: str, column: str) -> str:
    text = obj.get(column) if isinstance(obj, dict) else None
    if isinstance(obj, dict) and column in obj and not isinstance(text, str):
        if text is None:
            return ""  # null: an empty text, skipped and counted like an empty string
        raise DataError(
            f"{path}, {where}: field {column!r} holds {type(text).__name__} {json.dumps(text)[:60]}, not a string. "
            f'Fix: write the text as a JSON string ({{"{column}": "..."}}), or pass the text field with --text-column'
        )
    if not isinstance(text, str):
        raise DataError(
            f"{path}, {where}: needs a string field {column!r} (got {type(obj).__name__}"
            f"{' with keys ' + str(sorted(obj)[:5]) if isinstance(obj, dict) else ''}). "
            f'Fix: write {{"{column}": "..."}} per line, or pass the field with --text-column'
        )
    return text


def _json_field(obj: Any, text_column: str | None, default_column: str | None) -> str:
    """The field holding the text: the explicit one, else the first candidate the first object has
    (else the first candidate, which the first object then lacks: the error names it)."""
    from tailtune.data.loading import TEXT_CANDIDATES

    if text_column:
        return text_column
    candidates = list(dict.fromkeys([c for c in (default_column,) if c] + list(TEXT_CANDIDATES)))
    keys = list(obj) if isinstance(obj, dict) else []
    return next((c for c in candidates if c in keys), None) or next(
        (k for c in candidates for k in keys if k.strip().casefold() == c), candidates[0])


def _read_json(path: Path, body: str, text_column: str | None, default_column: str | None) -> InputTexts:
    out = InputTexts()
    if path.suffix.lower() == ".json" and body.lstrip().startswith("["):
        try:
            records = json.loads(body)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}). Fix: one array of objects") from None
        for i, obj in enumerate(records):
            if out.column is None:
                out.column = _json_field(obj, text_column, default_column)
            out.add(_json_text(obj, path, f"record {i + 1}", out.column), i + 1)
        return out
    lines = body.split("\n")
    for no, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if no < len(lines) or line:  # the newline ending the file is not a line
                out.skipped.append(no)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {no}: not valid JSON ({exc.msg}). Fix: one JSON object per line") from None
        if out.column is None:
            out.column = _json_field(obj, text_column, default_column)
        out.add(_json_text(obj, path, f"line {no}", out.column), no)
    return out


def _read_lines(body: str) -> InputTexts:
    out = InputTexts()
    lines = body.split("\n")
    for no, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip() and no == len(lines) and not line:
            continue  # the newline ending the file is not a line
        out.add(line, no)
    return out


def _read_parquet(path: Path, text_column: str | None, default_column: str | None) -> InputTexts:
    """A Parquet table's text column; ``lines`` are 1-based row numbers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
        names = list(table.schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}). Fix: rewrite it, or give a CSV/JSONL file") from None
    out = InputTexts(column=_pick_column(names, path, text_column, default_column))
    values = table.read(columns=[out.column]).column(0)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise DataError(
            f"{path}: column {out.column!r} holds {values.type}, not text. Fix: pass the text column with --text-column"
        )
    for row, text in enumerate(values.to_pylist(), start=1):
        out.add(text or "", row)
    return out


def read_texts(
    path: str | os.PathLike, *, text_column: str | None = None, default_column: str | None = None
) -> InputTexts:
    """Read the texts of ``path`` (formats, the text column and empty texts: the module docstring).

    Raises:
        DataError: the file is missing, not UTF-8, has no such column, a JSON line is not an object
            with a string text field, or it holds no text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"--input {path}: no such file. Fix: pass a text file (one text per line), a CSV/TSV file with a "
            f"text column, or a JSONL file"
        )
    from tailtune.data.readers import refuse_spreadsheet

    suffix = path.suffix.lower()
    refuse_spreadsheet(path, formats=[*TABLE_SUFFIXES, *JSON_SUFFIXES, ".parquet", ".txt"])
    if suffix == ".parquet":
        out = _read_parquet(path, text_column, default_column)
        if not out.texts:
            raise DataError(f"{path}: holds no text (every {out.column!r} is empty). Fix: one text per row")
        return out
    body = _decode(path)
    if suffix in TABLE_SUFFIXES:
        out = _read_table(path, body, text_column, default_column)
    elif suffix in JSON_SUFFIXES:
        out = _read_json(path, body, text_column, default_column)
    else:
        if text_column:
            raise DataError(
                f"{path}: --text-column applies to CSV, TSV and JSONL input; a {suffix or 'plain'} file holds one "
                f"text per line. Fix: drop --text-column, or give a .csv/.tsv/.jsonl file"
            )
        out = _read_lines(body)
    if not out.texts:
        what = f"every {out.column!r} is empty" if out.column else "every line is empty"
        raise DataError(f"{path}: holds no text ({what}). Fix: one text per line")
    return out


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` as JSONL atomically."""
    return atomic_write_text(path, "".join(dumps_json(r, indent=None) + "\n" for r in rows))
