"""Atomic writes: content, permissions of a normal file (not the temporary file's 0600), no leftovers."""

from __future__ import annotations

import os
import stat

from tailtune.utils import io
from tailtune.utils.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_file_gets_the_umask_mode_and_no_temp_file_is_left(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    with open(tmp_path / "plain.txt", "w") as fh:  # what a plain open() gives under the same umask
        fh.write("x")
    assert path.read_text() == "hello"
    assert _mode(path) == _mode(tmp_path / "plain.txt") == 0o666 & ~io._UMASK  # not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_replacing_a_file_keeps_its_mode(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text("")
    os.chmod(path, 0o640)
    atomic_write_jsonl(path, [{"a": 1}, {"b": 2}])
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}] and _mode(path) == 0o640
    atomic_write_json(path, {"x": 1})
    assert _mode(path) == 0o640


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    """The rename is made durable: after the file's own fsync, its folder is fsynced."""
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        return real(fd)

    monkeypatch.setattr(io.os, "fsync", spy)
    io.atomic_write_text(tmp_path / "a.json", "{}")
    assert synced == [False, True]
    # a platform or file system that refuses it: the write still succeeds
    def refuse_folders(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError("EINVAL")
        return real(fd)

    monkeypatch.setattr(io.os, "fsync", refuse_folders)
    io.atomic_write_text(tmp_path / "b.json", "{}")
    assert (tmp_path / "b.json").read_text() == "{}"
