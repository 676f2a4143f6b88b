"""An exclusive, process-wide lock on a run directory (one writer at a time).

``with run_dir_lock(path, command="tailtune train r.yaml"):`` holds an OS lock on the file
``<path>/.tailtune.lock`` for the duration of the block:

- **exclusive across processes**: ``fcntl.flock(LOCK_EX | LOCK_NB)``; a second process gets
  :class:`RunDirBusy` (a :class:`~tailtune.errors.RunDirError`, CLI exit 2) naming the holder: its
  pid, host, command and since when (the holder writes them into the lock file);
- **released on process death**: the kernel drops a ``flock`` when its holder dies, even by
  SIGKILL, so a killed run never leaves a stale lock (a leftover lock *file* is unlocked and simply
  taken by the next process);
- **re-entrant within a process** (``train`` holds it and the CLI's report step takes it again);
- **nothing left behind**: the lock file is removed on release (the next acquirer checks that the
  file it locked is still the one at the path, so removal cannot let two holders in), and a folder
  the lock had to create is removed again when it is still empty (a refused or failed start leaves
  the tree as it was).

Platforms without ``fcntl`` (Windows) fall back to creating the lock file exclusively
(``O_CREAT | O_EXCL``); a file whose holder is no longer alive on this host is taken over as stale.

This module sits in ``utils`` (bottom layer): training, evaluation, reports and the CLI all call it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tailtune.errors import RunDirError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RunDirBusy", "is_held_here", "lock_holder", "run_dir_lock"]

#: the lock file inside a run directory (hidden; ignored by every "is this folder empty" check)
LOCK_NAME = ".tailtune.lock"


class RunDirBusy(RunDirError):
    """Another process holds the run directory's lock; the message names it and the fix."""


@dataclass
class _Held:
    fd: int | None
    path: Path
    count: int = 1
    created: list[Path] = field(default_factory=list)


_HELD: dict[str, _Held] = {}
_GUARD = threading.Lock()


def _default_command() -> str:
    argv = list(sys.argv) or ["python"]
    name = Path(argv[0]).name
    if name in ("main.py", "__main__.py"):
        name = "tailtune"
    return shlex.join([name, *argv[1:]])


def _holder_info(command: str | None) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command or _default_command(),
        "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def lock_holder(path: str | os.PathLike) -> dict | None:
    """The holder a lock file names (``pid``, ``host``, ``command``, ``since``), or None when there is
    no lock file or it cannot be read (the holder may not have written it yet)."""
    lock = Path(path) / LOCK_NAME
    for attempt in range(3):
        try:
            info = json.loads(lock.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError):
            info = None
        if isinstance(info, dict):
            return info
        time.sleep(0.05 * (attempt + 1))  # written right after the lock is taken: wait a moment
    return None


def _busy(path: Path, holder: dict | None) -> RunDirBusy:
    if holder:
        who = (
            f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"(`{holder.get('command', '?')}`, since {holder.get('since', '?')})"
        )
    else:
        who = "another process (it has not written its name yet)"
    return RunDirBusy(
        f"{path} is in use by {who}; two processes writing one run directory would mix their files. "
        f"Fix: wait for that process to finish (or stop it), or use another folder. The lock is "
        f"{path / LOCK_NAME}; the system releases it when its holder exits, even when killed"
    )


def _make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and missing parents; return the folders created (deepest last)."""
    missing = []
    cur = path
    while not cur.exists():
        missing.append(cur)
        if cur.parent == cur:
            break
        cur = cur.parent
    path.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def _write_info(fd: int, info: dict) -> None:
    data = (json.dumps(info) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


def _acquire_flock(path: Path, info: dict) -> int:
    lock = path / LOCK_NAME
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(path, lock_holder(path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the file we locked must still be the one at the path (a releasing holder unlinks it)
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            _write_info(fd, info)
            return fd
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _acquire_exclusive_file(path: Path, info: dict) -> None:
    """Fallback without ``fcntl``: the lock file's existence is the lock; a dead holder's is stale."""
    lock = path / LOCK_NAME
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = lock_holder(path)
            stale = bool(holder) and holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", 0)))
            if not stale:
                raise _busy(path, holder) from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        try:
            _write_info(fd, info)
        finally:
            os.close(fd)
        return
    raise _busy(path, lock_holder(path))


def _release(held: _Held) -> None:
    with contextlib.suppress(FileNotFoundError):
        (held.path / LOCK_NAME).unlink()  # while still holding it: the next acquirer re-checks the path
    if held.fd is not None:
        os.close(held.fd)  # drops the flock
    for folder in reversed(held.created):  # folders made for the lock, if nothing else went into them
        try:
            folder.rmdir()
        except OSError:
            break


@contextlib.contextmanager
def run_dir_lock(path: str | os.PathLike, *, command: str | None = None, create: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock of run directory ``path`` for the block (see the module docstring).

    Args:
        path: the run directory.
        command: what the holder is doing, shown to a process that finds the lock taken (default:
            this process's command line).
        create: create ``path`` (and parents) when missing; they are removed again on release if
            still empty. With ``create=False`` a missing folder is not locked (the caller's own
            "no such run directory" error follows).

    Raises:
        RunDirBusy: another process holds the lock.
        RunDirError: ``path`` is a file (with ``create``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir() and create:
        raise RunDirError(f"{path}: is a file, not a run directory. Fix: pass the run's folder (a new one for a new run)")
    if not path.is_dir() and not create:  # the caller's own "no such run directory" error follows
        yield path
        return
    key = os.path.realpath(path)
    with _GUARD:
        held = _HELD.get(key)
        if held is not None:
            held.count += 1
    if held is None:
        created = _make_dirs(path)
        info = _holder_info(command)
        try:
            fd = _acquire_flock(path, info) if fcntl is not None else _acquire_exclusive_file(path, info)
        except BaseException:
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise
        held = _Held(fd, path, created=created)
        with _GUARD:
            _HELD[key] = held
    try:
        yield path
    finally:
        with _GUARD:
            held.count -= 1
            last = held.count == 0
            if last:
                _HELD.pop(key, None)
        if last:
            _release(held)


def is_held_here(path: str | os.PathLike) -> bool:
    """Whether this process holds the lock of ``path`` now."""
    return os.path.realpath(path) in _HELD
