"""Up-front checks of the paths a command will write, so it fails before any work, with one message.

``check_writable(path, option="--output")`` raises :class:`NotWritable` (a
:class:`~tailtune.errors.TailtuneError`, CLI exit 2) when the folder ``path`` (or, with
``kind="file"``, the folder that will hold the file ``path``) cannot be created or written by this
process: permission denied, a read-only file system, or a file standing where a folder must be. The
check creates nothing. The CLI also turns any later ``PermissionError``/``EROFS`` into one message
(``tailtune.cli.main``); this check only makes it come first and name the option.
"""

from __future__ import annotations

import os
from pathlib import Path

from tailtune.errors import TailtuneError

__all__ = ["NotWritable", "check_writable"]


class NotWritable(TailtuneError, OSError):
    """A path a command must write cannot be written; the message names it, the option and the fix."""


def _nearest_existing(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def _reason(folder: Path) -> str:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return "permission denied"
    return "read-only file system" if st.f_flag & getattr(os, "ST_RDONLY", 1) else "permission denied"


def check_writable(path: str | os.PathLike, *, option: str, kind: str = "folder") -> None:
    """Raise :class:`NotWritable` unless this process can write the folder (or file) ``path``.

    Args:
        path: the folder a command writes into (``kind="folder"``) or the file it writes (``"file"``).
        option: how the user gave it (``--output``, ``--out``, ``RUN``), quoted in the message.
        kind: ``folder`` or ``file``.
    """
    if kind not in ("folder", "file"):
        raise ValueError(f"kind must be 'folder' or 'file', got {kind!r}")
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise NotWritable(f"{option} {path}: is a folder, not a file. Fix: give a file path")
    folder = path if kind == "folder" else (path.parent if str(path.parent) else Path("."))
    probe = _nearest_existing(folder)
    if probe == folder and not probe.is_dir():
        raise NotWritable(f"{option} {folder} exists and is not a folder. Fix: choose a folder path (a new "
                          "folder or an existing one)")
    if not probe.is_dir():
        raise NotWritable(
            f"{option} {path}: {probe} is a file, so no folder can be made there. Fix: choose another path",
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "into" if probe == folder else f"the folder {folder} under"
        raise NotWritable(
            f"{option} {path}: cannot write {where} {probe} ({_reason(probe)}). Fix: choose a folder you can "
            f"write to, or change the permissions of {probe}",
        )
