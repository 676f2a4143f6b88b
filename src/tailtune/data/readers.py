"""Finding and reading data files into memory-mapped ``datasets.Dataset`` objects.

Every reader goes through the ``datasets`` library (its packaged ``csv``/``json``/``parquet``
builders or ``load_from_disk``), so the rows live in a memory-mapped Arrow file and large data never
has to fit in RAM. Problems a user can cause become :class:`tailtune.errors.DataError`.

CSV/TSV files are read with the delimiter their header uses (``,``/``;``/tab/``|``, see
:func:`sniff_delimiter`); header names are stripped, an empty name becomes ``Unnamed: i`` (as pandas
names it) and a name given twice is an error. Error locations are exact lines: blank lines (which
the parsers skip) and quoted cells spanning lines are counted by re-reading the file when an error
names a row (:meth:`SplitSource.where`).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import datasets
import numpy as np

from tailtune.errors import DataError

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
TEXT_FORMATS = ("csv", "tsv", "jsonl", "json")
SPREADSHEETS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
LABELS_FILE = "labels.txt"
#: column delimiters a csv/tsv file may use (spreadsheets in many locales export ``;``)
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "UTF-32", "utf-32"),
    (codecs.BOM_UTF16_LE, "UTF-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "UTF-16", "utf-16"),
)


@dataclass
class SplitSource:
    """One split as read: where it came from and the raw (not yet encoded) rows.

    ``rows`` maps each current row to its row in the file when rows were dropped (empty texts);
    ``sep`` is the csv/tsv delimiter used; ``notes`` says what the reader decided (a detected delimiter,
    renamed header cells).
    """

    split: str
    origin: str  # file path, or "<folder>#<split>" for load_from_disk / hub data
    fmt: str  # csv, tsv, jsonl, json, parquet, arrow
    dataset: datasets.Dataset
    sep: str | None = None
    rows: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    _lines: dict[int, int] = field(default_factory=dict, repr=False)

    def row_of(self, index: int) -> int:
        """0-based row in the file of current row ``index``."""
        return int(self.rows[index]) if self.rows is not None else int(index)

    def where(self, index: int) -> str:
        """Human locator of 0-based row ``index``: a 1-based line for text files, a row otherwise."""
        row = self.row_of(index)
        if self.fmt == "jsonl":
            return f"{self.origin} line {self.line_of(row)}"
        if self.fmt in ("csv", "tsv"):
            return f"{self.origin} line {self.line_of(row)} (row {row + 1} after the header)"
        return f"{self.origin} row {row + 1}"

    def line_of(self, row: int) -> int:
        """1-based line where file row ``row`` starts (re-reads the file once per row asked for)."""
        if row not in self._lines:
            guess = row + (2 if self.fmt in ("csv", "tsv") else 1)
            try:
                found = _record_line(Path(self.origin), self.fmt, self.sep or ",", row)
            except (OSError, csv.Error, UnicodeDecodeError):
                found = None
            self._lines[row] = found or guess
        return self._lines[row]


def _blank_record(rec: list[str]) -> bool:
    """A record the csv parser skips: an empty line or one holding only spaces."""
    return not rec or (len(rec) == 1 and not rec[0].strip())


@contextmanager
def _big_csv_fields():
    """Let the ``csv`` module read cells of any size (its default limit is 128 KiB)."""
    old = csv.field_size_limit()
    csv.field_size_limit(1 << 30)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _record_line(path: Path, fmt: str, sep: str, row: int) -> int | None:
    """The 1-based line where data row ``row`` starts, skipping blank lines as the parsers do."""
    if fmt == "jsonl":
        count = -1
        with open(path, "rb") as fh:
            for no, line in enumerate(fh, start=1):
                if line.strip():
                    count += 1
                    if count == row:
                        return no
        return None
    with open(path, encoding="utf-8-sig", newline="") as fh, _big_csv_fields():
        reader = csv.reader(fh, delimiter=sep)
        count, previous = -2, 0  # -2: the header is the first non-blank record
        for rec in reader:
            start, previous = previous + 1, reader.line_num
            if _blank_record(rec):
                continue
            count += 1
            if count == row:
                return start
    return None


def _check_head(head: bytes, path: Path) -> None:
    """A UTF-16/UTF-32 start (a byte-order mark, or NUL bytes in the first 64 KiB: spreadsheet
    "Unicode text" exports) as a :class:`DataError` naming the encoding and the fix."""
    for bom, name, codec in _BOMS:
        if head.startswith(bom):
            raise DataError(
                f"{path} is {name} (it starts with the byte-order mark {bom.hex(' ').upper()}), not UTF-8; re-encode "
                f"the file as UTF-8 (e.g. iconv -f {codec} -t utf-8 IN > OUT, or save it from the spreadsheet as "
                f"'CSV UTF-8')"
            )
    if b"\x00" in head:
        at = head.index(b"\x00")
        raise DataError(
            f"{path} holds NUL bytes (first at byte offset {at}): it is UTF-16 without a byte-order mark or not a "
            f"text file; re-encode the file as UTF-8 (e.g. iconv -f utf-16le -t utf-8 IN > OUT)"
        )


def _invalid_byte(path: Path, bad: int, line: int, reason: str) -> DataError:
    return DataError(
        f"{path} is not valid UTF-8: byte offset {bad} (line {line}) {reason}; "
        f"re-encode the file as UTF-8 (e.g. iconv -f cp1252 -t utf-8 for a Windows/Excel export, "
        f"-f latin1 otherwise)"
    )


def check_utf8(path: Path, *, chunk_size: int = 1 << 23) -> None:
    """Raise :class:`DataError` naming the byte offset (and line) of the first invalid UTF-8 byte,
    reading the file in chunks (any size).

    A UTF-16/UTF-32 file (a byte-order mark, or NUL bytes: spreadsheet "Unicode text" exports) is
    named as such.
    """
    with open(path, "rb") as fh:
        _check_head(fh.read(1 << 16), path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    newlines = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            final = not chunk
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                pending = len(exc.object) - len(chunk)  # bytes carried over from the previous chunk
                bad = offset - pending + exc.start
                with open(path, "rb") as again:
                    line = again.read(bad).count(b"\n") + 1 if bad < (1 << 30) else newlines + 1
                raise _invalid_byte(path, bad, line, exc.reason) from None
            if final:
                return
            newlines += chunk.count(b"\n")
            offset += len(chunk)


def read_utf8(path: Path) -> str:
    """The whole text of ``path`` (a UTF-8 byte-order mark dropped), read once; the errors of
    :func:`check_utf8` for anything that is not UTF-8. For inputs read whole anyway (``predict``)."""
    data = Path(path).read_bytes()
    _check_head(data[: 1 << 16], path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        skipped = 3 if data.startswith(codecs.BOM_UTF8) else 0  # utf-8-sig reports offsets after the mark
        bad = exc.start + skipped
        raise _invalid_byte(path, bad, data.count(b"\n", 0, bad) + 1, exc.reason) from None


def refuse_spreadsheet(path: Path, formats=FORMATS) -> None:
    """Raise :class:`DataError` when ``path`` is a spreadsheet (``.xlsx``, ``.ods``, ...): it is read by
    no parser here, and read as text it would be binary noise. ``formats``: the suffixes the caller reads."""
    if path.suffix.lower() in SPREADSHEETS:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r} (a spreadsheet); export it as 'CSV UTF-8' "
            f"(Excel: File > Save As) and pass the .csv, or use one of {sorted(formats)}"
        )


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        refuse_spreadsheet(path)
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(FORMATS)} "
            f"or a `datasets` save_to_disk folder"
        )
    return fmt


def _records(sample: str, sep: str, limit: int = 21) -> list[list[str]]:
    try:
        with _big_csv_fields():
            return [r for r in islice(csv.reader(io.StringIO(sample), delimiter=sep), limit * 2) if not _blank_record(r)][:limit]
    except csv.Error:
        return []


def sniff_delimiter(path: Path, default: str) -> str:
    """The column delimiter of a csv/tsv file.

    ``default`` (``,`` for .csv, tab for .tsv) unless the header is a single column under it while
    another of :data:`DELIMITERS` splits the header into several columns and most of the first 20
    rows into as many: then that one (a spreadsheet in a locale with decimal commas writes ``;``).
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(1 << 16)
    records = _records(sample, default)
    if not records or len(records[0]) > 1:
        return default
    best: tuple[tuple[int, int], str] | None = None
    for sep in DELIMITERS:
        if sep == default:
            continue
        recs = _records(sample, sep)
        width = len(recs[0]) if recs else 0
        if width < 2:
            continue
        rows = recs[1:-1] if len(recs) > 2 else recs[1:]  # the sample may cut the last record
        agree = sum(len(r) == width for r in rows)
        if rows and agree * 2 < len(rows):
            continue
        if best is None or (agree, width) > best[0]:
            best = ((agree, width), sep)
    return best[1] if best else default


def unclosed_quote_line(open_text, sep: str, *, last_start: int | None = None) -> int | None:
    """The 1-based line where the last record of a csv text opens a quoted cell it never closes, else ``None``.

    ``open_text()`` returns a new text stream over the file (``newline=""``). Such a quote runs to the
    end of the file (it can only be in the last record): Python's lenient csv reader makes every later
    line part of one cell, and pandas stops with "EOF inside string" and a row number, not a line.
    ``last_start``: the line where the last record starts (0: no record), when the caller has read the
    records already; else one lenient pass finds it.
    """
    start = last_start
    if start is None:
        with open_text() as fh, _big_csv_fields():
            reader = csv.reader(fh, delimiter=sep)
            start = previous = 0
            for _ in reader:
                start, previous = previous + 1, reader.line_num
    if start == 0:
        return None
    with open_text() as fh, _big_csv_fields():
        try:
            for _ in csv.reader(islice(fh, start - 1, None), delimiter=sep, strict=True):
                pass
        except csv.Error as exc:
            return start if "unexpected end of data" in str(exc) else None
    return None


def unclosed_quote_error(path: Path, line: int) -> DataError:
    """The message for :func:`unclosed_quote_line`'s finding."""
    return DataError(
        f"{path} line {line}: a quoted cell opens here and is never closed, so every later line would be part of "
        f"it; close the quote, or write a quote inside a quoted cell as two (\"\")"
    )


def _csv_header(path: Path, sep: str) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh, _big_csv_fields():  # -sig: a BOM is not part of the name
        reader = csv.reader(fh, delimiter=sep)
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise DataError(f"could not read the header of {path}: {exc}; check the file is well-formed csv") from None
        try:
            has_data = any(r for r in reader)  # stops at the first non-blank data row
        except csv.Error:  # the real parser reads it and names the problem
            has_data = True
    if not row:
        raise DataError(f"{path} has no header row; the first line must name the columns")
    if not has_data:
        raise DataError(f"{path} has a header but no data rows; add one row per text below the header")
    return row


def clean_header(names: list[str], path: Path) -> list[str]:
    """Header names stripped of surrounding spaces; an empty one becomes ``Unnamed: i`` (0-based
    position, as pandas names it); a name given twice is a :class:`DataError`."""
    out = [n.strip() or f"Unnamed: {i}" for i, n in enumerate(names)]
    first: dict[str, int] = {}
    for i, n in enumerate(out):
        if n in first:
            raise DataError(
                f"the header of {path} names column {n!r} twice (columns {first[n] + 1} and {i + 1}); rename or "
                f"delete one of them"
            )
        first[n] = i
    return out


def _check_json_not_blank(path: Path) -> None:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return
    raise DataError(f"{path} holds only whitespace; write one JSON object per line (text and label fields)")


@contextmanager
def _quiet_datasets_logger():
    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _csv_options(path: Path, fmt: str) -> tuple[dict, str, list[str]]:
    """``datasets`` csv-builder options for ``path``, the delimiter and the notes on what was decided."""
    default = "\t" if fmt == "tsv" else ","
    sep = sniff_delimiter(path, default)
    notes = []
    if sep != default:
        notes.append(
            f"read {path} with {_DELIMITER_NAMES[sep]} as the column delimiter (its header is one column when split "
            f"on {_DELIMITER_NAMES[default]})"
        )
    raw = _csv_header(path, sep)
    header = clean_header(raw, path)
    kwargs = dict(
        sep=sep,
        encoding="utf-8-sig",
        keep_default_na=False,
        na_values=[""],
        features=datasets.Features({name: datasets.Value("string") for name in header}),
    )
    if header != raw:
        kwargs.update(column_names=header, header=0)
        renamed = [f"{r!r} -> {h!r}" for r, h in zip(raw, header, strict=True) if r != h]
        notes.append(f"renamed header cells of {path}: {', '.join(renamed[:5])}{' ...' if len(renamed) > 5 else ''}")
    return kwargs, sep, notes


def read_file(path: Path, *, split: str, cache_dir: str | None = None) -> SplitSource:
    """Read one csv/tsv/jsonl/json/parquet file with the ``datasets`` packaged builders.

    CSV/TSV cells are read as strings (only empty cells are missing), so a column never changes type
    between chunks; labels are interpreted afterwards.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    fmt = file_format(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; it needs a header/records with a text and a label column")
    if fmt in TEXT_FORMATS:
        check_utf8(path)
    kwargs: dict = {}
    sep, notes = None, []
    if fmt in ("csv", "tsv"):
        kwargs, sep, notes = _csv_options(path, fmt)
        builder = "csv"
    elif fmt in ("jsonl", "json"):
        _check_json_not_blank(path)
        builder = "json"
    else:
        builder = "parquet"
    try:
        with _quiet_datasets_logger():  # its ERROR log line would repeat the DataError below
            ds = datasets.load_dataset(
                builder, data_files={"train": str(path)}, split="train", cache_dir=cache_dir, **kwargs
            )
    except DataError:
        raise
    except Exception as exc:  # the builders raise many types for malformed files
        if "corresponds to no data" in str(exc):  # `[]`, or only `{}` records: nothing to build a table from
            raise DataError(f"{path} holds no records; add at least one record with a text and a label") from None
        if sep is not None:
            line = unclosed_quote_line(lambda: open(path, encoding="utf-8-sig", newline=""), sep)
            if line is not None:
                raise unclosed_quote_error(path, line) from None
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        cause = exc.__cause__ or exc.__context__
        if cause is not None and str(cause).strip():
            message += f" ({str(cause).strip().splitlines()[0]})"
        raise DataError(f"could not read {path} as {fmt}: {message}; check the file is well-formed {fmt}") from None
    if len(ds) == 0:
        raise DataError(f"{path} holds no rows; add at least one record with a text and a label")
    return SplitSource(split=split, origin=str(path), fmt=fmt, dataset=ds, sep=sep, notes=notes)


def _find_split_file(folder: Path, split: str) -> Path | None:
    found = [
        p
        for alias in SPLIT_ALIASES[split]
        for p in sorted(folder.glob(f"{alias}.*"))
        if p.suffix.lower() in FORMATS and p.is_file()
    ]
    if len(found) > 1:
        raise DataError(
            f"{folder} holds several files for split {split!r}: {[p.name for p in found]}; keep one"
        )
    return found[0] if found else None


def is_saved_dataset(folder: Path) -> bool:
    return folder.is_dir() and any(
        (folder / name).is_file() for name in ("dataset_dict.json", "state.json", "dataset_info.json")
    )


def _offline() -> bool:
    flags = (os.environ.get(v, "") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags) or bool(
        getattr(datasets.config, "HF_HUB_OFFLINE", False)
    )


def _from_dataset_dict(obj, origin: str) -> list[SplitSource]:
    if isinstance(obj, datasets.Dataset):
        return [SplitSource("train", f"{origin}#train", "arrow", obj)]
    names = {str(k): k for k in obj.keys()}
    sources = []
    for split in SPLITS:
        key = next((names[a] for a in SPLIT_ALIASES[split] if a in names), None)
        if key is not None:
            sources.append(SplitSource(split, f"{origin}#{key}", "arrow", obj[key]))
    if not any(s.split == "train" for s in sources):
        raise DataError(f"{origin} has splits {sorted(names)} but none named 'train'; rename one to 'train'")
    return sources


def discover(source, *, cache_dir: str | None = None) -> tuple[list[SplitSource], Path | None]:
    """Read every split of ``source``; return them (train first) and the ``labels.txt`` path if any.

    ``source`` is a folder of ``train.*``/``validation.*``/``test.*`` files (plus optional
    ``labels.txt``), a single file (only a train split), a ``datasets`` ``save_to_disk`` folder, or a
    hub dataset name (attempted only when not offline).
    """
    path = Path(os.fspath(source)).expanduser()
    if path.is_file():
        return [read_file(path, split="train", cache_dir=cache_dir)], None
    if is_saved_dataset(path):
        try:
            obj = datasets.load_from_disk(str(path))
        except Exception as exc:
            raise DataError(f"could not load the saved dataset {path}: {exc}") from None
        return _from_dataset_dict(obj, str(path)), None
    if path.is_dir():
        files = {split: _find_split_file(path, split) for split in SPLITS}
        if files["train"] is None:
            present = sorted(p.name for p in path.iterdir())[:20]
            raise DataError(
                f"{path} has no train file (train.csv, train.tsv, train.jsonl, train.json or train.parquet); "
                f"it holds {present}"
            )
        sources = [read_file(f, split=s, cache_dir=cache_dir) for s, f in files.items() if f is not None]
        labels_txt = path / LABELS_FILE
        return sources, labels_txt if labels_txt.is_file() else None
    # not on disk: maybe a hub name such as "org/name"
    text = os.fspath(source)
    looks_like_hub = path.suffix.lower() not in FORMATS and text.count("/") <= 1 and not text.startswith((".", "/", "~"))
    if not looks_like_hub:
        raise DataError(f"data path {text} does not exist; give a file, a folder of split files or a dataset name")
    if _offline():
        raise DataError(
            f"data path {text} does not exist locally and the hub is offline (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE); "
            f"give a local file or folder, or go online to load the hub dataset {text!r}"
        )
    try:
        obj = datasets.load_dataset(text, cache_dir=cache_dir)
    except Exception as exc:
        raise DataError(f"could not load hub dataset {text!r}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    return _from_dataset_dict(obj, text), None


def nfc(text: str) -> str:
    """``text`` in Unicode normal form C (one spelling for 'café' typed as é or as e + U+0301)."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def read_labels_file(path: Path, notes: list[str] | None = None) -> list[str]:
    """One label name per line (a byte-order mark and blank lines ignored), in Unicode NFC;
    duplicates rejected. A name that NFC changed is reported in ``notes``."""
    check_utf8(path)
    names: list[str] = []
    lines: list[int] = []
    changed = []
    for no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if nfc(name) != name:
            changed.append(no)
        names.append(nfc(name))
        lines.append(no)
    if not names:
        raise DataError(f"{path} is empty; write one label name per line or delete it")
    seen: dict[str, int] = {}
    for name, no in zip(names, lines, strict=True):
        if name in seen:
            how = " (the two differ only in their Unicode form)" if {seen[name], no} & set(changed) else ""
            raise DataError(f"{path} names label {name!r} twice (line {no}), first at line {seen[name]}{how}; keep one")
        seen[name] = no
    if changed and notes is not None:
        notes.append(f"normalised {len(changed)} label name(s) of {path} to Unicode NFC (first at line {changed[0]})")
    return names
