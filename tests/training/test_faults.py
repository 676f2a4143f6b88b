"""``tailtune.training.faults``: complete checkpoints, what a resume removes, failed writes in words.

The error shapes are the ones measured on a full tmpfs (safetensors 0.8, torch 2.13): safetensors
raises ``SafetensorError("Error while serializing: I/O error: No space left on device (os error
28)")``, ``torch.save`` a ``RuntimeError`` with no errno, Python writes ``OSError(ENOSPC)``.
End-to-end runs (SIGKILL, disk full, resume) are in ``tests/reliability/test_kill_resume.py``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors import SafetensorError

from tailtune.errors import StorageError, TailtuneError
from tailtune.training import faults
from tailtune.training.checkpoints import find_checkpoint
from tailtune.training.faults import (
    RunWriteError,
    checkpoint_is_complete,
    describe_write_failure,
    remove_interrupted,
    write_error_reason,
)
from tailtune.training.outputs import storage_message as _storage_message
from tailtune.utils.io import atomic_write_bytes, atomic_write_text


def _checkpoint(root: Path, step: int, *, state: str | None = None, skip: str | None = None) -> Path:
    folder = root / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        if name != skip:
            (folder / name).write_bytes(b"x")
    if skip != "trainer_state.json":
        text = json.dumps({"global_step": step, "best_model_checkpoint": None}) if state is None else state
        (folder / "trainer_state.json").write_text(text)
    return folder


def test_checkpoint_is_complete(tmp_path):
    assert checkpoint_is_complete(_checkpoint(tmp_path / "a", 4))
    whole = json.dumps({"global_step": 4, "log_history": [{"loss": 1.0}]})
    assert not checkpoint_is_complete(_checkpoint(tmp_path / "b", 4, state=whole[: len(whole) // 2]))  # torn
    assert not checkpoint_is_complete(_checkpoint(tmp_path / "c", 4, state=json.dumps({"global_step": 2})))
    assert not checkpoint_is_complete(_checkpoint(tmp_path / "d", 4, skip="optimizer.pt"))
    assert not checkpoint_is_complete(_checkpoint(tmp_path / "e", 4, skip="trainer_state.json"))
    assert not checkpoint_is_complete(tmp_path / "a" / "checkpoints")  # not a checkpoint-<step> folder


def test_find_checkpoint_skips_a_newer_incomplete_one(tmp_path):
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 4)
    _checkpoint(tmp_path, 6, state='{"global_step": 6, "log_hi')  # killed while writing its state
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-4"


def test_remove_interrupted_removes_only_leftovers(tmp_path):
    keep = [
        _checkpoint(tmp_path, 2),
        tmp_path / "history.jsonl",
        tmp_path / "model" / "tokenizer.json",
        tmp_path / ".hidden-but-not-temporary",
    ]
    for path in keep[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    gone = [
        _checkpoint(tmp_path, 4, skip="model.safetensors"),
        tmp_path / ".history.jsonl.ab12cd.tmp",
        tmp_path / "predictions" / ".test.npz.x1.tmp",
        tmp_path / "model" / ".tok-x1y2",
    ]
    for path in gone[1:3]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    (gone[3]).mkdir()
    (gone[3] / "tokenizer.json").write_text('{"trunc')
    removed = remove_interrupted(tmp_path)
    assert sorted(removed) == sorted(gone)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in gone)
    assert remove_interrupted(tmp_path / "missing") == []


def _torch_zip_writer_error() -> RuntimeError:
    """What torch.save raises when the disk fills (no errno; the iostream error is its context)."""
    try:
        try:
            raise RuntimeError("basic_ios::clear: iostream error")
        except RuntimeError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")  # noqa: B904
    except RuntimeError as exc:
        return exc


def test_write_error_reason_of_the_measured_error_shapes(tmp_path, monkeypatch):
    rust = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert write_error_reason(rust) == "no space left on device"
    assert write_error_reason(OSError(errno.ENOSPC, "No space left on device")) == "no space left on device"
    assert write_error_reason(OSError(errno.EFBIG, "File too large")) == "file too large"
    assert write_error_reason(OSError(errno.EROFS, "Read-only file system")) == "read-only file system"
    if hasattr(errno, "EDQUOT"):
        assert write_error_reason(OSError(errno.EDQUOT, "Disk quota exceeded")) == "disk quota exceeded"
    chained = RuntimeError("saving failed")
    chained.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert write_error_reason(chained) == "no space left on device"
    # a failed read, or an unrelated error, is not a storage failure
    assert write_error_reason(FileNotFoundError(errno.ENOENT, "No such file or directory")) is None
    assert write_error_reason(ValueError("bad value")) is None
    # inside a checkpoint save (path known): any OSError, and torch's errno-less writer failure
    assert write_error_reason(PermissionError(errno.EACCES, "Permission denied"), path=tmp_path) == "permission denied"
    torch_error = _torch_zip_writer_error()
    assert write_error_reason(torch_error) is None
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(faults.shutil, "disk_usage", lambda p: type(usage)(usage.total, usage.total, 0))
    assert write_error_reason(torch_error, path=tmp_path / "checkpoint-4") == "no space left on device (0 MiB free)"
    monkeypatch.setattr(faults.shutil, "disk_usage", lambda p: type(usage)(usage.total, 0, usage.total))
    assert write_error_reason(torch_error, path=tmp_path) == "the write failed (unexpected pos 576 vs 534)"


def test_describe_write_failure_names_the_file_or_folder(tmp_path):
    err = OSError(errno.ENOSPC, "No space left on device")
    err.filename = str(tmp_path / "history.jsonl")
    assert describe_write_failure(err) == (tmp_path / "history.jsonl", "no space left on device")
    wrapped = RuntimeError("trainer failed")
    wrapped.__context__ = RunWriteError(tmp_path / "checkpoints" / "checkpoint-4", "no space left on device")
    assert describe_write_failure(wrapped) == (tmp_path / "checkpoints" / "checkpoint-4", "no space left on device")
    assert describe_write_failure(OSError(errno.ENOSPC, "full")) == (None, "no space left on device")
    assert describe_write_failure(KeyError("x")) is None


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_names_the_target(tmp_path, monkeypatch):
    target = tmp_path / "eval.json"
    atomic_write_text(target, "old\n")
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[:3])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k)))
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"new content\n")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]  # no temporary file left


def test_storage_message_says_what_why_what_is_left_and_the_fix(tmp_path):
    _checkpoint(tmp_path, 2)
    msg = _storage_message(tmp_path, tmp_path / "checkpoints" / "checkpoint-4", "no space left on device")
    assert msg.startswith(f"could not write checkpoints/checkpoint-4 in {tmp_path}: no space left on device.")
    assert "last complete checkpoint is checkpoints/checkpoint-2" in msg
    assert msg.endswith(f"then continue with: tailtune train --resume {tmp_path}")
    assert "\n" not in msg
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    msg = _storage_message(fresh, None, "disk quota exceeded")
    assert "could not write a file" in msg and "--resume trains again from the start" in msg
    err = StorageError(msg)
    assert isinstance(err, TailtuneError) and isinstance(err, OSError) and err.exit_code == 2


def test_cli_prints_one_error_line_and_stops_the_progress_bars(tmp_path, monkeypatch, capsys):
    """A failed training never reaches on_train_end: the CLI stops the live bars itself."""
    from types import SimpleNamespace

    import tailtune.training.pipeline as pipeline_module
    from tailtune.cli.main import main

    started = []

    def failing_train(recipe, *, resume=None, callbacks=(), on_findings=None, on_notes=None):
        (bars,) = callbacks
        bars.on_train_begin(None, SimpleNamespace(is_world_process_zero=True, max_steps=4, global_step=0), None)
        started.append(bars)
        raise StorageError(f"could not write history.jsonl in {resume}: no space left on device [disk /x]")

    monkeypatch.setattr(pipeline_module, "train", failing_train)
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert started and started[0]._progress is None
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.strip()] == [
        f"error: could not write history.jsonl in {tmp_path}: no space left on device [disk /x]"
    ]
