"""Finding and reading data files into memory-mapped ``datasets.Dataset`` objects.

Every reader goes through the ``datasets`` library (its packaged ``csv``/``json``/``parquet``
builders or ``load_from_disk``), so the rows live in a memory-mapped Arrow file and large data never
has to fit in RAM. Problems a user can cause become :class:`tailtune.errors.DataError`.
"""

from __future__ import annotations

import codecs
import csv
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import datasets

from tailtune.errors import DataError

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
TEXT_FORMATS = ("csv", "tsv", "jsonl", "json")
LABELS_FILE = "labels.txt"


@dataclass
class SplitSource:
    """One split as read: where it came from and the raw (not yet encoded) rows."""

    split: str
    origin: str  # file path, or "<folder>#<split>" for load_from_disk / hub data
    fmt: str  # csv, tsv, jsonl, json, parquet, arrow
    dataset: datasets.Dataset

    def where(self, index: int) -> str:
        """Human locator of 0-based row ``index``: a 1-based line for text files, a row otherwise."""
        if self.fmt == "jsonl":
            return f"{self.origin} line {index + 1}"
        if self.fmt in ("csv", "tsv"):
            return f"{self.origin} line {index + 2} (row {index + 1} after the header)"
        return f"{self.origin} row {index + 1}"


def check_utf8(path: Path, *, chunk_size: int = 1 << 23) -> None:
    """Raise :class:`DataError` naming the byte offset (and line) of the first invalid UTF-8 byte."""
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
                raise DataError(
                    f"{path} is not valid UTF-8: byte offset {bad} (line {line}) {exc.reason}; "
                    f"re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
            if final:
                return
            newlines += chunk.count(b"\n")
            offset += len(chunk)


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(FORMATS)} "
            f"or a `datasets` save_to_disk folder"
        )
    return fmt


def _csv_header(path: Path, sep: str) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: a byte-order mark is not part of the name
        reader = csv.reader(fh, delimiter=sep)
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise DataError(f"could not read the header of {path}: {exc}; check the file is well-formed csv") from None
        try:
            has_data = any(r for r in reader)  # stops at the first non-blank data row
        except csv.Error:  # e.g. a cell over the csv module's size limit: the real parser reads it
            has_data = True
    if not row:
        raise DataError(f"{path} has no header row; the first line must name the columns")
    if not has_data:
        raise DataError(f"{path} has a header but no data rows; add one row per text below the header")
    return row


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
    if fmt in ("csv", "tsv"):
        sep = "\t" if fmt == "tsv" else ","
        header = _csv_header(path, sep)
        kwargs = dict(
            sep=sep,
            encoding="utf-8-sig",
            keep_default_na=False,
            na_values=[""],
            features=datasets.Features({name: datasets.Value("string") for name in header}),
        )
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
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        cause = exc.__cause__ or exc.__context__
        if cause is not None and str(cause).strip():
            message += f" ({str(cause).strip().splitlines()[0]})"
        raise DataError(f"could not read {path} as {fmt}: {message}; check the file is well-formed {fmt}") from None
    if len(ds) == 0:
        raise DataError(f"{path} holds no rows; add at least one record with a text and a label")
    return SplitSource(split=split, origin=str(path), fmt=fmt, dataset=ds)


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


def read_labels_file(path: Path) -> list[str]:
    """One label name per line; blank lines ignored; duplicates rejected."""
    check_utf8(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path} is empty; write one label name per line or delete it")
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(f"{path} names label {name!r} twice (line {i + 1}); keep one")
        seen.add(name)
    return names
