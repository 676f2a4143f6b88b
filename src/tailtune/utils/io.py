"""Atomic file writes: write to a temporary file in the same folder, fsync, rename, fsync the folder.

A killed process therefore leaves either the old file or the new one, never a torn file (at most
a hidden ``.<name>.<random>.tmp`` file, which ``tailtune train --resume`` removes). A failed write
(e.g. disk full) removes its temporary file and raises the ``OSError`` with ``filename`` set to the
target. The file gets the permissions a plain ``open(path, "w")`` would give it (``0o666`` minus the
umask, or the mode of the file it replaces), not the owner-only mode of a temporary file, so a run
directory can be shared. The folder is fsynced after the rename so the new name survives a power
cut too (where the platform allows opening a folder; elsewhere that step is skipped).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_UMASK


_UMASK = _umask()


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _target_mode(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write (e.g. disk full) names the file it was writing
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _default(obj: Any):
    # numpy scalars/arrays and paths appear in metrics and configs
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_json(obj: Any, *, indent: int | None = 2) -> str:
    return json.dumps(obj, indent=indent, default=_default, ensure_ascii=False, allow_nan=True)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> Path:
    return atomic_write_text(path, dumps_json(obj, indent=indent) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> Path:
    """Rewrite a whole JSONL file atomically (history files are small)."""
    return atomic_write_text(path, "".join(dumps_json(r, indent=None) + "\n" for r in rows))


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
