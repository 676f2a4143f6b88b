"""Interrupted runs and failed writes: what counts as a complete checkpoint, what a resume removes,
and how a failed write (disk full, quota, file too large) becomes one clear error.

A run directory can be interrupted at any instant (SIGKILL, power cut of the process, a full disk):

- files tailtune writes (``recipe.yaml``, ``task.json``, ``history.jsonl``, ``eval.json``,
  ``predictions/*.npz``, ``model/*``) go through :mod:`tailtune.utils.io` (temporary file + rename):
  a reader sees the old file or the new one; an interruption can only leave a hidden temporary file
  ``.<name>.<random>.tmp`` (and ``model/.tok-*/``, the tokenizer's scratch folder) behind;
- Trainer checkpoints are written in place, ``trainer_state.json`` last; a checkpoint folder counts
  as complete only when that file parses and names the folder's step and the weights and optimiser
  state are present (:func:`checkpoint_is_complete`). An interrupted one is never resumed from.

:func:`remove_interrupted` deletes those leftovers when a run is resumed; a failed checkpoint save
removes its own partial folder (:class:`~tailtune.training.trainer.TailtuneTrainer`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

__all__ = [
    "CHECKPOINT_FILES",
    "RunWriteError",
    "checkpoint_is_complete",
    "describe_write_failure",
    "remove_interrupted",
    "write_error_reason",
]

#: files a checkpoint needs to be resumed from (``trainer_state.json`` is written last)
CHECKPOINT_FILES = ("model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json")
_TRAINER_STATE = "trainer_state.json"
# errnos only a write produces
_WRITE_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EFBIG: "file too large",
    errno.EROFS: "read-only file system",
}
if hasattr(errno, "EDQUOT"):
    _WRITE_ERRNOS[errno.EDQUOT] = "disk quota exceeded"
# Rust writers (safetensors, tokenizers) report "I/O error: No space left on device (os error 28)"
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
# torch.save's C++ zip writer loses the errno: "[enforce fail at inline_container.cc:...] unexpected pos"
_TORCH_WRITER = ("inline_container.cc", "PytorchStreamWriter", "iostream error")
_BRACKETED = re.compile(r"\[[^\]]*\]")
_LOW_SPACE = 64 * 1024 * 1024  # below this much free space a writer failure without errno is a full disk


class RunWriteError(OSError):
    """A write into the run directory failed; ``path`` is the file or checkpoint folder, ``reason``
    the cause in words (``"no space left on device"``). The original error is ``__cause__``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"could not write {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def checkpoint_is_complete(path: str | os.PathLike) -> bool:
    """Whether a ``checkpoint-<step>`` folder can be resumed from.

    True when ``trainer_state.json`` parses (a torn JSON object never does), names
    ``global_step == <step>``, and the weights, optimiser and scheduler files exist. The Trainer
    writes ``trainer_state.json`` after every other file, so a complete one means all the files
    before it were written in full.
    """
    path = Path(path)
    suffix = path.name.rsplit("-", 1)[-1]
    if not (path.is_dir() and path.name.startswith("checkpoint-") and suffix.isdigit()):
        return False
    if not all((path / name).is_file() for name in CHECKPOINT_FILES):
        return False
    try:
        state = json.loads((path / _TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(state, dict) and state.get("global_step") == int(suffix)


def _is_temp_file(path: Path) -> bool:
    """A temporary file of :func:`tailtune.utils.io.atomic_write_bytes` (``.<name>.<random>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file()


def remove_interrupted(run_dir: str | os.PathLike, *, checkpoints_dir: str = "checkpoints") -> list[Path]:
    """Delete what an interrupted run left behind; returns the removed paths.

    Removed: temporary files of atomic writes anywhere in the run directory, tokenizer scratch
    folders ``model/.tok-*``, and checkpoint folders that are not complete
    (:func:`checkpoint_is_complete`). Complete files and checkpoints are never touched.
    """
    run_dir = Path(run_dir)
    removed: list[Path] = []
    if not run_dir.is_dir():
        return removed
    for path in sorted(run_dir.rglob(".*")):
        if _is_temp_file(path):
            path.unlink(missing_ok=True)
            removed.append(path)
        elif path.is_dir() and path.name.startswith(".tok-"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    ckpt_root = run_dir / checkpoints_dir
    if ckpt_root.is_dir():
        for path in sorted(ckpt_root.glob("checkpoint-*")):
            if path.is_dir() and not checkpoint_is_complete(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def write_error_reason(exc: BaseException, *, path: str | os.PathLike | None = None) -> str | None:
    """The cause of a failed write in words, or ``None`` when ``exc`` is not a storage failure.

    Recognised anywhere in the exception chain: ``OSError`` with ``ENOSPC``/``EDQUOT``/``EFBIG``/
    ``EROFS`` (errnos only a write produces), and a Rust writer's ``(os error N)`` with one of those
    codes (safetensors, tokenizers). When ``path`` is given, the caller knows a write was in
    progress there (a checkpoint save): then also any other ``OSError`` (its ``strerror``, e.g.
    permission denied) and torch.save's zip-writer failure, which carries no errno and is called a
    full disk when less than 64 MiB are free there.
    """
    errors = list(_chain(exc))
    for err in errors:
        if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:
            return _WRITE_ERRNOS[err.errno]
        match = _RUST_OS_ERROR.search(str(err))
        if match and int(match.group(1)) in _WRITE_ERRNOS:
            return _WRITE_ERRNOS[int(match.group(1))]
    if path is None:
        return None
    for err in errors:
        if isinstance(err, OSError) and err.errno:
            return (err.strerror or os.strerror(err.errno)).lower()
    if any(marker in str(err) for err in errors for marker in _TORCH_WRITER):
        free = _free_bytes(Path(path))
        if free is not None and free < _LOW_SPACE:
            return f"no space left on device ({free // (1024 * 1024)} MiB free)"
        text = _BRACKETED.sub("", str(exc)).strip(" .\n")  # torch: "[enforce fail at ...] . unexpected pos"
        return f"the write failed ({text.splitlines()[0] if text else type(exc).__name__})"
    return None


def describe_write_failure(exc: BaseException) -> tuple[Path | None, str] | None:
    """``(path, reason)`` of a failed write, or ``None`` when ``exc`` is something else.

    ``path`` is the checkpoint folder of a :class:`RunWriteError`, else the ``filename`` of the
    ``OSError`` (atomic writes name their target file), else ``None``. Outside a checkpoint save
    only the write-only errnos of :func:`write_error_reason` count (a failed read is not a full disk).
    """
    for err in _chain(exc):
        if isinstance(err, RunWriteError):
            return err.path, err.reason
    reason = write_error_reason(exc)
    filename = next((e.filename for e in _chain(exc) if isinstance(e, OSError) and e.filename), None)
    if reason is None:
        return None
    return (Path(os.fsdecode(filename)) if filename else None), reason


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None
