"""check_writable: one message before any work, naming the option, the path and the fix; creates nothing."""

from __future__ import annotations

import os

import pytest

from tailtune.errors import TailtuneError
from tailtune.utils import paths
from tailtune.utils.paths import NotWritable, check_writable


def test_writable_paths_pass_and_nothing_is_created(tmp_path):
    check_writable(tmp_path / "new" / "run", option="--output")
    check_writable(tmp_path / "out.jsonl", option="--output", kind="file")
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotWritable, match=r"--out \S+f exists and is not a folder\. Fix: choose a folder"):
        check_writable(tmp_path / "f", option="--out")
    with pytest.raises(NotWritable, match=r"f is a file, so no folder can be made there"):
        check_writable(tmp_path / "f" / "run", option="--output")
    with pytest.raises(NotWritable, match="is a folder, not a file"):
        check_writable(tmp_path, option="--output", kind="file")


def test_permission_denied_names_the_folder_and_the_fix(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(paths.os, "access", lambda p, mode: os.fspath(p) != os.fspath(ro))
    with pytest.raises(NotWritable) as info:
        check_writable(ro / "run", option="--output")
    message = str(info.value)
    assert message.startswith(f"--output {ro / 'run'}: cannot write the folder") and str(ro) in message
    assert "Fix: choose a folder you can write to" in message
    assert isinstance(info.value, TailtuneError) and isinstance(info.value, OSError)
    with pytest.raises(NotWritable, match=r"cannot write into .*ro \(permission denied"):
        check_writable(ro, option="RUN")
    with pytest.raises(ValueError, match="kind must be"):
        check_writable(ro, option="x", kind="dir")
