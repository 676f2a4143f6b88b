"""Process-level guarantees with real processes and real signals (docs/reliability.md, "Process and
exit codes"):

- SIGINT to ``tailtune train`` mid-run: exit 130, one "interrupted" line with the resume command,
  no traceback, no torn file, no lock left;
- two ``tailtune train`` processes on one ``--output``: the second exits 2 naming the first (pid,
  host, command, since); the first finishes with its own files only;
- ``tailtune ablate --workers 2``: SIGINT to the parent stops both workers (no orphan) and exits
  130; workers that fail (a corrupt encoder) make the ablation exit non-zero;
- an unwritable output (permission denied) for every command that writes: exit 2, one message
  naming the path and the fix, nothing written. As root the child drops CAP_DAC_OVERRIDE, so the
  folder's mode bits apply to it as to any user.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tailtune.utils.runlock import LOCK_NAME, lock_holder

HERE = Path(__file__).resolve().parent
if str(HERE.parent / "training") not in sys.path:
    sys.path.insert(0, str(HERE.parent / "training"))

from tiny_runs import tiny_recipe, write_tiny_data  # noqa: E402

pytestmark = pytest.mark.slow


def _env(tmp: Path, cache: str = "hf-cache") -> dict:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               HF_DATASETS_CACHE=str(tmp / cache), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job may have inherited SIG_IGN


def _cli(tmp: Path, *args: str, cache: str = "hf-cache") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tailtune.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(tmp, cache), preexec_fn=_default_sigint)


def _wait_for(predicate, *, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended (exit {proc.returncode}) before {what}\n{out}\n{err}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _recipe(tmp: Path, encoder: Path, name: str, *, output: Path, epochs: int, seed: int = 13,
            kind: str = "multiclass", **over) -> Path:
    data = tmp / f"data-{kind}"
    if not data.exists():
        write_tiny_data(data, kind)
    recipe = tiny_recipe(kind, data, encoder, output, **over)
    recipe["train"].update(epochs=epochs, seed=seed)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _all_files_parse(run: Path) -> None:
    for path in run.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        elif path.suffix == ".yaml":
            yaml.safe_load(path.read_text())


# ---------------------------------------------------------------------------------------------
def test_sigint_to_train_exits_130_with_no_torn_file_and_no_lock_left(tmp_path, tiny_encoder_dir):
    run = tmp_path / "run"
    recipe = _recipe(tmp_path, tiny_encoder_dir, "long", output=run, epochs=400)
    proc = _cli(tmp_path, "train", str(recipe), "-q")
    _wait_for(lambda: (run / "history.jsonl").exists(), timeout=240, what="the first epoch", proc=proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, f"{out}\n{err}"
    assert "interrupted" in err and "Traceback" not in err, err
    assert f"continue with: tailtune train --resume {run}" in out.replace("\n", "")
    _all_files_parse(run)
    assert not (run / LOCK_NAME).exists()
    assert [p.name for p in run.glob(".*.tmp")] == []


def test_two_trains_on_one_output_the_second_exits_2_naming_the_first(tmp_path, tiny_encoder_dir):
    run = tmp_path / "run"
    first = _cli(tmp_path, "train", str(_recipe(tmp_path, tiny_encoder_dir, "a", output=run, epochs=2, seed=13)), "-q")
    try:
        _wait_for(lambda: (lock_holder(run) or {}).get("pid") == first.pid and (run / "recipe.yaml").exists(),
                  timeout=240, what="the first train's lock and its first files", proc=first)
        os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run while the second one starts
        # its own datasets cache: the stopped first process may hold the shared cache's file lock
        second = _cli(tmp_path, "train", str(_recipe(tmp_path, tiny_encoder_dir, "b", output=run, epochs=2, seed=99)),
                      "-q", cache="hf-cache-second")
        out2, err2 = second.communicate(timeout=240)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out1, err1 = first.communicate(timeout=300)
    assert second.returncode == 2, f"{out2}\n{err2}"
    errors = [line for line in err2.splitlines() if line.startswith("error:")]
    message = " ".join(err2.split())
    assert len(errors) == 1 and "Traceback" not in err2, err2
    assert f"pid {first.pid} on host" in message and "tailtune train" in message and "since 20" in message
    assert "Fix: wait for that process to finish" in message
    assert first.returncode == 0, f"{out1}\n{err1}"
    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"]["seed"] == 13  # only the first's files
    assert (run / "eval.json").is_file() and not (run / LOCK_NAME).exists()


def test_sigint_to_ablate_stops_both_workers_and_exits_130(tmp_path, tiny_encoder_dir):
    out = tmp_path / "ablation"
    recipe = _recipe(tmp_path, tiny_encoder_dir, "slow", output=tmp_path / "unused", epochs=400)
    parent = _cli(tmp_path, "ablate", str(recipe), "--seeds", "2", "--workers", "2", "--out", str(out), "--no-compare")
    locks = [out / "slow" / f"seed-{s}" for s in (13, 14)]

    def workers():
        pids = [(lock_holder(p) or {}).get("pid") for p in locks]
        return pids if all(pids) else None  # both inside train(), holding their run directories

    pids = _wait_for(workers, timeout=300, what="both workers training", proc=parent)
    os.kill(parent.pid, signal.SIGINT)  # the parent only, as `kill -INT`; a terminal's Ctrl-C reaches all
    stdout, stderr = parent.communicate(timeout=120)
    assert parent.returncode == 130, f"{stdout}\n{stderr}"
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not any(_alive(pid) for pid in pids), "a worker outlived the interrupted ablation"
    assert not any((p / LOCK_NAME).exists() for p in locks)
    assert "interrupted; run the same command again to continue" in stdout


def test_failed_workers_make_ablate_exit_non_zero(tmp_path, tiny_encoder_dir, monkeypatch, capsys):
    from tailtune.cli.main import main

    broken = tmp_path / "broken-encoder"
    shutil.copytree(tiny_encoder_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)  # a torn download
    recipe = _recipe(tmp_path, broken, "corrupt", output=tmp_path / "unused", epochs=1)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    code = main(["ablate", str(recipe), "--seeds", "2", "--workers", "2", "--out", str(tmp_path / "abl"),
                 "--no-compare"])
    shown = capsys.readouterr().out
    assert code == 1, shown
    assert "2 run(s) failed" in shown and "exit 2" in shown  # each worker: one message, exit 2
    log = (tmp_path / "abl" / "corrupt" / "seed-13.log").read_text()
    assert "Traceback" not in log and "the encoder's weights in" in log and "cannot be read" in log


# ---------------------------------------------------------------------------------------------
DRIVER = r"""
import contextlib, io, json, sys
from tailtune.cli.main import main
results = []
for argv in json.loads(sys.argv[1]):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except BaseException as exc:  # a traceback would have been printed: record it
            import traceback
            code, err = "raised", io.StringIO(traceback.format_exc())
    results.append({"argv": argv, "code": code, "err": err.getvalue()})
print(json.dumps(results))
"""


def _drop_dac_override():
    _default_sigint()
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: root then obeys the mode bits
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_unwritable_outputs_are_one_message_for_every_command(tmp_path, tiny_encoder_dir, real_run):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro_run = tmp_path / "ro-run"
    shutil.copytree(real_run, ro_run)
    recipe = _recipe(tmp_path, tiny_encoder_dir, "r", output=ro / "run", epochs=1)
    data = tmp_path / "data-multiclass"
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    cases = [
        ["train", str(recipe), "-q"],
        ["train", str(recipe), "-q", "--output", str(ro)],
        ["analyze", str(data), "--out", str(ro / "analysis")],
        ["predict", str(real_run), "--text", "good movie", "--output", str(ro / "p.jsonl")],
        ["tune", str(ro_run)],
        ["evaluate", str(ro_run)],
        ["report", str(ro_run)],
        ["report", str(real_run), "--out", str(ro / "report.html")],
        ["ensemble", str(real_run), str(ro_run), "--out", str(ro / "ens")],
        ["screen", str(data), "--out", str(ro / "screen")],
        ["ablate", str(recipe), "--out", str(ro / "abl")],
        ["sweep", str(recipe), "--space", str(space), "--out", str(ro / "sweep")],
        ["compare", str(real_run), "--output", str(ro / "c.json")],
        ["postmortem", str(real_run), "--baseline", str(real_run), "--out", str(ro / "pm.md")],
        ["demo", "--output", str(ro / "demo")],
    ]
    for path in [ro, ro_run, *ro_run.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = _snapshot(tmp_path / "ro-run"), _snapshot(ro)
    try:
        done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases)], capture_output=True, text=True,
                              env=_env(tmp_path), preexec_fn=_drop_dac_override, timeout=600)
    except subprocess.SubprocessError as exc:  # pragma: no cover - a kernel without prctl
        pytest.skip(f"cannot drop privileges for the test: {exc}")
    finally:
        for path in [ro, ro_run, *ro_run.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for r in results:
        shown = f"{' '.join(r['argv'])}: exit {r['code']}\n{r['err']}"
        errors = [line for line in r["err"].splitlines() if line.startswith("error:")]
        message = " ".join(r["err"].split())
        assert r["code"] == 2, shown
        assert len(errors) == 1 and "Traceback" not in r["err"], shown
        assert ("permission denied" in message.lower() or "read-only" in message.lower()), shown
        assert "Fix:" in message and (str(ro) in message or str(ro_run) in message), shown
    assert (_snapshot(tmp_path / "ro-run"), _snapshot(ro)) == before  # nothing written, nothing removed
