"""The fit folder's process rules (main's conventions): one writer per folder (the run-directory
lock, held for the whole command), an unwritable -o refused before any work (exit 2, nothing
written), and the lock file never counted as "a folder that is not a fit"."""

from __future__ import annotations

import json
import subprocess
import sys

from tailtune.cli.main import main
from tailtune.fit.state import STATE_FILE, open_state
from tailtune.utils.runlock import LOCK_NAME, run_dir_lock

HOLDER = """
import sys, time
from tailtune.utils.runlock import run_dir_lock
with run_dir_lock(sys.argv[1], command="tailtune fit data -o " + sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def _data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"text": f"film {i} {'good' if i % 3 else 'bad'}", "labels": "pos" if i % 3 else "neg"} for i in range(24)]
    for split in ("train", "validation"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_a_second_fit_into_a_busy_folder_exits_2_naming_the_holder(tmp_path, capsys, tiny_encoder_dir):
    out = tmp_path / "fit"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(["fit", str(_data(tmp_path)), "-o", str(out), "--model", str(tiny_encoder_dir), "-q"])
        err = capsys.readouterr().err
        assert code == 2
        assert f"pid {holder.pid}" in err and "tailtune fit data -o" in err and "Traceback" not in err
        assert not (out / STATE_FILE).exists()
    finally:
        holder.kill()
        holder.wait()


def test_an_unwritable_output_exits_2_before_any_work(tmp_path, capsys, tiny_encoder_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["fit", str(_data(tmp_path)), "-o", str(blocker / "fit"), "--model", str(tiny_encoder_dir), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "-o/--output" in err and "is a file" in err and "Traceback" not in err
    assert blocker.read_text() == "not a folder"


def test_an_unwritable_cache_dir_exits_2_before_any_work(tmp_path, capsys, tiny_encoder_dir):
    """The screen writes its embeddings under --cache-dir: a file there failed with a traceback after the
    probe; now it is refused up front, naming the option, and nothing is written."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = tmp_path / "fit"
    code = main(["fit", str(_data(tmp_path)), "-o", str(out), "--model", str(tiny_encoder_dir), "--cache-dir",
                 str(blocker), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "--cache-dir" in err and "not a folder" in err and "Traceback" not in err
    assert not out.exists() and blocker.read_text() == "not a folder"


def test_the_held_lock_is_not_a_foreign_file_and_restart_keeps_it(tmp_path):
    folder = tmp_path / "fit"
    with run_dir_lock(folder):
        state = open_state(folder, {"data": "a", "options": {}}, {})
        state.record("analyze", {}, 1.0)
        again = open_state(folder, {"data": "b", "options": {}}, {}, restart=True)
        assert not again.done("analyze") and (folder / LOCK_NAME).exists()
    assert sorted(p.name for p in folder.iterdir()) == [STATE_FILE]
