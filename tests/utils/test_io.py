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
