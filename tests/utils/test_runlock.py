"""The run-directory lock: exclusive across processes, named holder, released on death (SIGKILL),
re-entrant in one process, nothing left behind, and a fallback for platforms without fcntl."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tailtune.errors import RunDirError
from tailtune.utils import runlock
from tailtune.utils.runlock import LOCK_NAME, RunDirBusy, lock_holder, run_dir_lock

HOLDER = """
import sys, time
from tailtune.utils.runlock import run_dir_lock
with run_dir_lock(sys.argv[1], command="tailtune train r.yaml --output " + sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def _start_holder(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_with_the_holder_named(tmp_path):
    run = tmp_path / "run"
    holder = _start_holder(run)
    try:
        with pytest.raises(RunDirBusy) as info:
            with run_dir_lock(run):
                pass
        message = str(info.value)
        assert f"pid {holder.pid}" in message and socket.gethostname() in message
        assert "tailtune train r.yaml --output" in message and "since 20" in message
        assert "Fix: wait for that process" in message
        assert isinstance(info.value, RunDirError)  # the CLI's exit 2
        assert lock_holder(run)["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_sigkill_leaves_no_stale_lock(tmp_path):
    run = tmp_path / "run"
    holder = _start_holder(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run / LOCK_NAME).exists()  # the file stays, the kernel dropped the lock with the process
    with run_dir_lock(run, command="next") as path:
        assert lock_holder(path)["pid"] == os.getpid() and lock_holder(path)["command"] == "next"
    assert not (run / LOCK_NAME).exists()


def test_reentrant_in_one_process_and_nothing_left_behind(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    with run_dir_lock(run):
        with run_dir_lock(run):  # e.g. train() inside a command that already holds it
            assert (run / LOCK_NAME).is_file()
            assert runlock.is_held_here(run)
        assert (run / LOCK_NAME).is_file()  # still held by the outer block
    assert not runlock.is_held_here(run)
    assert not (tmp_path / "a").exists()  # the folders made for the lock were empty again: removed
    run.mkdir(parents=True)
    (run / "eval.json").write_text("{}")
    with run_dir_lock(run):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["eval.json"]


def test_lock_file_removal_cannot_let_two_holders_in(tmp_path, monkeypatch):
    """A process that opened the lock file just before the holder removed it must not keep a lock on
    the removed file: it re-opens the path (the same-inode check)."""
    run = tmp_path / "run"
    run.mkdir()
    real_open = os.open
    calls = []

    def racing_open(path, flags, mode=0o777, **kw):
        fd = real_open(path, flags, mode, **kw)
        if str(path).endswith(LOCK_NAME) and not calls:
            calls.append(fd)
            os.unlink(path)  # the holder releases between our open and our flock
        return fd

    monkeypatch.setattr(runlock.os, "open", racing_open)
    with run_dir_lock(run):
        assert (run / LOCK_NAME).is_file()
        assert lock_holder(run)["pid"] == os.getpid()
    assert len(calls) == 1


def test_missing_folder_without_create_is_not_locked_and_a_file_is_refused(tmp_path):
    with run_dir_lock(tmp_path / "missing", create=False):
        assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file, not a run directory"):
        with run_dir_lock(tmp_path / "file"):
            pass


def test_fallback_without_fcntl(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "fcntl", None)
    run = tmp_path / "run"
    with run_dir_lock(run):
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
        # another holder on this host that is alive: busy
        (run / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                                 "command": "x", "since": "then"}))
        runlock._HELD.clear()  # pretend to be another process
        with pytest.raises(RunDirBusy, match=f"pid {os.getppid()}"):
            with run_dir_lock(run):
                pass
    # a dead holder's lock file (a killed process) is stale and taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run.mkdir(exist_ok=True))
    (run / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                             "command": "x", "since": "then"}))
    with run_dir_lock(run):
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (run / LOCK_NAME).exists()


def test_the_holder_info_is_readable_while_held(tmp_path):
    run = tmp_path / "run"
    start = time.time()
    with run_dir_lock(run, command="tailtune tune run"):
        info = lock_holder(run)
    assert info["command"] == "tailtune tune run" and info["host"] == socket.gethostname()
    assert info["pid"] == os.getpid() and time.time() - start < 5
