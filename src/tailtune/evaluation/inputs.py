"""Reading texts to predict (``tailtune predict --input FILE``) and writing JSONL results.

Input formats, chosen by suffix:

- ``.jsonl`` / ``.json`` lines: one JSON object per line with a ``text`` field (string);
- anything else: plain text, one text per line (UTF-8; a trailing ``\\r`` is removed).

**Empty lines** (empty or whitespace only) are skipped, not predicted: there is nothing to classify
and a blank line at the end of a file is common. They are counted in ``skipped`` so the command can
say so, and every output row carries ``line`` (the 1-based input line number) so results can be
joined back to the input exactly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.errors import DataError
from tailtune.utils.io import atomic_write_text, dumps_json

__all__ = ["InputTexts", "read_texts", "write_jsonl"]


@dataclass
class InputTexts:
    texts: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # 1-based line numbers
    skipped: list[int] = field(default_factory=list)  # 1-based numbers of empty lines


def read_texts(path: str | os.PathLike) -> InputTexts:
    """Read the texts of ``path`` (formats and empty-line handling in the module docstring).

    Raises:
        DataError: the file is missing, not UTF-8, a JSONL line is not an object with a string
            ``text``, or no line holds text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"--input {path}: no such file. Fix: pass a text file (one text per line) or a JSONL file"
        )
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}). Fix: re-encode the file as UTF-8") from None
    jsonl = path.suffix.lower() in (".jsonl", ".json", ".ndjson")
    out = InputTexts()
    for no, line in enumerate(raw.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if no < raw.count("\n") + 1 or line:  # the newline ending the file is not a line
                out.skipped.append(no)
            continue
        if jsonl:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}, line {no}: not valid JSON ({exc.msg}). Fix: one JSON object per line"
                ) from None
            text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                raise DataError(
                    f"{path}, line {no}: needs a string field 'text' (got {type(obj).__name__}"
                    f"{' with keys ' + str(sorted(obj)[:5]) if isinstance(obj, dict) else ''}). "
                    'Fix: write {"text": "..."} per line'
                )
            if not text.strip():
                out.skipped.append(no)
                continue
        else:
            text = line
        out.texts.append(text)
        out.lines.append(no)
    if not out.texts:
        raise DataError(f"{path}: holds no text (every line is empty). Fix: one text per line")
    return out


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` as JSONL atomically."""
    return atomic_write_text(path, "".join(dumps_json(r, indent=None) + "\n" for r in rows))
