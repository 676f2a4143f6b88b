"""Faults during training (issue 9): SIGKILL at random points, and a full disk.

One uninterrupted reference run (tiny random BERT, multiclass, 3 epochs, class-balanced sampler,
early stopping, gradient accumulation; CPU, one thread, fixed seed) records every point where a
run can be stopped (:mod:`faultrun`: optimiser steps, tailtune's atomic writes, each Trainer
checkpoint file written in place, checkpoint rotation, the final writes). Then:

- ``test_sigkill_then_resume``: for 5 kinds of moment, a point drawn at random (seeded:
  ``TAILTUNE_FAULT_SEED``, default below) is hit with SIGKILL. Right after the kill no file of the
  run directory is torn (every JSON/JSONL/YAML/safetensors/npz/torch file parses in full) apart from
  the files of checkpoint folders that ``find_checkpoint`` does not take (incomplete ones) and
  hidden temporary files; ``tailtune train --resume RUN`` then ends with no leftovers and with the
  history (but for timings), ``eval.json``, predictions and model weights of the reference.
- ``test_disk_full_then_resume``: a write fails as on a full disk (ENOSPC; in a checkpoint's
  weights, in a checkpoint's optimiser state, in ``history.jsonl``): ``tailtune train`` exits 2
  with ONE error line (what, where, why, the fix, the resume command) and no traceback, leaves no
  torn or partial file, keeps the last complete checkpoint, and ``--resume`` then matches the
  reference.
- ``test_real_full_disk`` (opt-in): the same with a real full file system, when
  ``TAILTUNE_FULL_DISK_DIR`` names a folder on a small one (e.g. a 64 MiB tmpfs).

The children are forked from one warm process (``faultrun.Zygote``), so a kill costs no imports;
they run ``tailtune train`` through the CLI's ``main`` but skip its closing ``report.html`` (a
rendering step after training, written atomically like the rest; it would double the run time).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from tailtune.training.faults import checkpoint_is_complete
from tailtune.training.run import find_checkpoint
from tailtune.utils import rundir
from tailtune.utils.io import read_jsonl

HERE = Path(__file__).resolve().parent
for _helpers in (HERE, HERE.parent / "training"):  # faultrun; tiny_runs
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

from faultrun import Zygote  # noqa: E402
from tiny_runs import tiny_recipe, write_tiny_data  # noqa: E402

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("TAILTUNE_FAULT_SEED", "9"))
TIMING = ("time_s", "eval_time_s")
CHECKPOINT_WRITES = ("safetensors", "torch_save", "trainer_state")

#: the 5 kinds of moment a kill is drawn from (one random event of the reference trace each)
MOMENTS = {
    "before-first-checkpoint": lambda e: e["phase"] == "train" and e["ckpts"] == 0,
    "training-step": lambda e: e["kind"] == "step" and e["ckpts"] >= 1,
    "inside-checkpoint-save": lambda e: e["kind"] in CHECKPOINT_WRITES and e["ckpts"] >= 1,
    "history-write-or-rotation": lambda e: e["phase"] == "train"
    and e["ckpts"] >= 1
    and ((e["kind"] in ("atomic", "replace") and e["detail"] == rundir.HISTORY) or e["kind"] == "rmtree"),
    "final-writes": lambda e: e["phase"] == "final",
}


class Lab:
    """The shared set-up: data, recipe, the warm zygote and the reference run with its trace."""

    def __init__(self, root: Path, encoder: Path, cache: Path):
        self.root = root
        self.cache = cache
        data = write_tiny_data(root / "data", "multiclass", n_train=32, n_eval=12)
        recipe = tiny_recipe("multiclass", data, encoder, root / "unused", sampler="class_balanced")
        recipe["train"].update(epochs=3, batch_size=8, grad_accum=2)
        recipe["early_stopping"] = {"metric": "macro_f1", "patience": 2}
        self.recipe = root / "recipe.yaml"
        self.recipe.write_text(yaml.safe_dump(recipe))
        self.zygote = Zygote(root / "zygote.log", env={"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
        self.ref = root / "reference"
        trace = root / "reference-trace.jsonl"
        result = self.train(["--output", str(self.ref)], name="reference", trace=trace)
        assert result["exitcode"] == 0, self.log("reference")
        self.events = read_jsonl(trace)

    def train(self, args: list[str], *, name: str, fault: dict | None = None, trace: Path | None = None, resume=None):
        argv = ["train", "--resume", str(resume), "-q"] if resume else ["train", str(self.recipe), "-q", *args]
        return self.zygote.run(
            {
                "argv": argv,
                "out": str(self.root / f"{name}.out"),
                "err": str(self.root / f"{name}.err"),
                "trace": str(trace) if trace else None,
                "fault": fault,
                "datasets_cache": str(self.cache),
                "report": False,  # the CLI's closing report.html: rendering it costs seconds per run
                "timeout": 600,
            }
        )

    def log(self, name: str) -> str:
        out = (self.root / f"{name}.out").read_text(errors="replace")[-3000:]
        err = (self.root / f"{name}.err").read_text(errors="replace")[-3000:]
        return f"--- stdout\n{out}\n--- stderr\n{err}"

    def draw(self, moment: str) -> dict:
        events = [e for e in self.events if MOMENTS[moment](e)]
        assert events, f"the reference trace has no event for {moment}"
        return random.Random(f"{SEED}:{moment}").choice(events)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_encoder_dir):
    """The children's ``datasets`` cache is a module folder (never ~/.cache, never a test's tmp_path)."""
    lab = Lab(tmp_path_factory.mktemp("faults"), tiny_encoder_dir, tmp_path_factory.mktemp("hf-datasets-faults"))
    yield lab
    lab.zygote.close()


# ---------------------------------------------------------------------------------------------
# "no torn file": every file of a run directory read in full
def _check_file(path: Path) -> None:
    """Raise when ``path`` is not a complete file of its format (nothing is unpickled)."""
    data = path.read_bytes()
    if path.suffix == ".json":
        json.loads(data)
    elif path.suffix == ".jsonl":
        assert data.endswith(b"\n"), "last line unterminated"
        [json.loads(line) for line in data.splitlines() if line.strip()]
    elif path.suffix == ".yaml":
        assert isinstance(yaml.safe_load(data), dict)
    elif path.suffix == ".safetensors":
        from safetensors.numpy import load

        load(data)  # header, offsets and every tensor's bytes
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            [npz[k] for k in npz.files]  # zip CRCs are checked on read
    elif path.suffix in (".pt", ".pth", ".bin"):
        with zipfile.ZipFile(path) as archive:  # torch.save writes a zip archive
            assert archive.testzip() is None
    elif path.suffix == ".html":
        assert data.rstrip().endswith(b"</html>")  # report.html, when a run writes one
    else:
        assert data, "empty"


def scan(run: Path) -> tuple[list[str], list[str]]:
    """(torn files, leftovers): leftovers are temporary files, tokenizer scratch folders and the
    files of checkpoint folders that are not complete (never resumed from)."""
    torn, leftovers = [], []
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        rel = path.relative_to(run)
        parts = rel.parts
        temporary = (path.name.startswith(".") and path.name.endswith(".tmp")) or any(
            p.startswith(".tok-") for p in parts
        )
        in_checkpoint = parts[0] == rundir.CHECKPOINTS_DIR and len(parts) > 2
        if temporary or (in_checkpoint and not checkpoint_is_complete(run / parts[0] / parts[1])):
            leftovers.append(str(rel))
        else:
            try:
                _check_file(path)
            except Exception as exc:  # noqa: BLE001 - any failure to read it in full is a torn file
                torn.append(f"{rel}: {type(exc).__name__}: {exc}")
    return torn, leftovers


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def assert_same_result(run: Path, ref: Path) -> None:
    """History (but for timings), eval.json, predictions and the final weights equal the reference."""
    from safetensors.numpy import load_file

    assert _strip(read_jsonl(run / rundir.HISTORY)) == _strip(read_jsonl(ref / rundir.HISTORY))
    assert json.loads((run / rundir.EVAL).read_text()) == json.loads((ref / rundir.EVAL).read_text())
    for split in ("validation", "test"):
        with np.load(run / rundir.PREDICTIONS_DIR / f"{split}.npz") as got, np.load(
            ref / rundir.PREDICTIONS_DIR / f"{split}.npz"
        ) as want:
            assert np.array_equal(got["logits"], want["logits"]) and np.array_equal(got["targets"], want["targets"])
    got, want = (load_file(d / rundir.MODEL_DIR / "model.safetensors") for d in (run, ref))
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def assert_history_is_a_prefix(run: Path, ref: Path) -> None:
    if (run / rundir.HISTORY).exists():
        got, want = _strip(read_jsonl(run / rundir.HISTORY)), _strip(read_jsonl(ref / rundir.HISTORY))
        assert got == want[: len(got)]


# ---------------------------------------------------------------------------------------------
def test_reference_run_is_clean_and_traced(lab):
    torn, leftovers = scan(lab.ref)
    assert torn == [] and leftovers == []
    kinds = {e["kind"] for e in lab.events}
    assert {"step", "atomic", "replace", "safetensors", "torch_save", "trainer_state", "rmtree", "tok_move"} <= kinds
    assert [r["epoch"] for r in read_jsonl(lab.ref / rundir.HISTORY)] == [1, 2, 3]


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_then_resume(lab, moment):
    point = lab.draw(moment)
    where = f"SIGKILL at {point} (seed {SEED})"
    print(where)  # shown with -rA / -s: which point this seed drew
    run = lab.root / f"kill-{moment}"
    result = lab.train(["--output", str(run)], name=f"kill-{moment}", fault={"mode": "kill", **point})
    assert result["exitcode"] == -signal.SIGKILL, f"{where}: the child was not killed\n{lab.log(f'kill-{moment}')}"

    torn, leftovers = scan(run)
    assert torn == [], f"{where}: torn files {torn}"
    checkpoint = find_checkpoint(run)
    if checkpoint is not None:  # the checkpoint a resume takes is complete (its files passed the scan)
        assert not any(item.startswith(f"{rundir.CHECKPOINTS_DIR}/{checkpoint.name}/") for item in leftovers)
    if point["kind"] in CHECKPOINT_WRITES:  # killed mid-way through checkpoint-<step>: never resumed from
        assert find_checkpoint(run) != run / rundir.CHECKPOINTS_DIR / f"checkpoint-{point['step']}", where
    assert_history_is_a_prefix(run, lab.ref)
    if (run / rundir.EVAL).exists():
        assert json.loads((run / rundir.EVAL).read_text()) == json.loads((lab.ref / rundir.EVAL).read_text())

    result = lab.train([], name=f"resume-{moment}", resume=run)
    assert result["exitcode"] == 0, f"{where}: resume failed\n{lab.log(f'resume-{moment}')}"
    torn, leftovers = scan(run)
    assert torn == [] and leftovers == [], f"{where}: after resume torn {torn}, leftovers {leftovers}"
    assert_same_result(run, lab.ref)


# ---------------------------------------------------------------------------------------------
#: the write that fails (kind, n-th of its kind, file), what the message names, the checkpoint left
DISK_FULL = {
    "checkpoint-weights": ("safetensors", 2, "model.safetensors", "checkpoints/checkpoint-4", "checkpoint-2"),
    "checkpoint-optimizer": ("torch_save", 6, "optimizer.pt", "checkpoints/checkpoint-4", "checkpoint-2"),
    # atomic writes 1-4: recipe.yaml, task.json, resolved.json, lint.json; then the history of epoch 1, ...
    "history": ("atomic", 7, rundir.HISTORY, rundir.HISTORY, "checkpoint-4"),
}


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.mark.parametrize("case", list(DISK_FULL))
def test_disk_full_then_resume(lab, case):
    kind, n, detail, what, left = DISK_FULL[case]
    event = next(e for e in lab.events if e["kind"] == kind and e["n"] == n)
    assert event["detail"] == detail and event["ckpts"] >= 1, event
    run = lab.root / f"full-{case}"
    result = lab.train(["--output", str(run)], name=f"full-{case}", fault={"mode": "enospc", "kind": kind, "n": n})
    err = (lab.root / f"full-{case}.err").read_text()
    assert result["exitcode"] == 2, lab.log(f"full-{case}")
    line = _one_error_line(err)
    for part in (f"could not write {what} in {run}", "no space left on device", f"checkpoints/{left}",
                 "free space", f"tailtune train --resume {run}"):
        assert part in line, (part, line)

    torn, leftovers = scan(run)
    assert torn == [] and leftovers == [], (torn, leftovers)  # a failed write removes its partial files
    assert find_checkpoint(run) == run / rundir.CHECKPOINTS_DIR / left
    assert_history_is_a_prefix(run, lab.ref)
    assert not (run / rundir.EVAL).exists()

    result = lab.train([], name=f"resume-full-{case}", resume=run)  # "after freeing space"
    assert result["exitcode"] == 0, lab.log(f"resume-full-{case}")
    assert scan(run) == ([], [])
    assert_same_result(run, lab.ref)


def test_real_full_disk(lab):
    """Opt-in: ``TAILTUNE_FULL_DISK_DIR`` is a folder on a small file system (say a 64 MiB tmpfs,
    ``mount -t tmpfs -o size=64m tmpfs DIR``). The test fills it to leave room for about one and a
    half checkpoints, trains there, expects the clear error, deletes the filler and resumes."""
    base = os.environ.get("TAILTUNE_FULL_DISK_DIR")
    if not base:
        pytest.skip("set TAILTUNE_FULL_DISK_DIR to a folder on a small file system to run this test")
    base = Path(base)
    ckpt = max((lab.ref / rundir.CHECKPOINTS_DIR).glob("checkpoint-*"))
    ckpt_bytes = sum(p.stat().st_size for p in ckpt.rglob("*") if p.is_file())
    run, filler = base / "tailtune-full-run", base / "tailtune-filler"
    shutil.rmtree(run, ignore_errors=True)
    filler.unlink(missing_ok=True)
    room = int(ckpt_bytes * 1.5)
    free = shutil.disk_usage(base).free
    if free < room:
        pytest.skip(f"{base} has {free} bytes free, less than the {room} the test needs")
    with open(filler, "wb") as fh:
        fh.truncate(0)
        chunk = b"\0" * (1 << 20)
        while shutil.disk_usage(base).free > room + len(chunk):
            fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    try:
        result = lab.train(["--output", str(run)], name="real-full")
        err = (lab.root / "real-full.err").read_text()
        assert result["exitcode"] == 2, lab.log("real-full")
        line = _one_error_line(err)
        assert "no space left on device" in line and f"tailtune train --resume {run}" in line, line
        assert scan(run) == ([], [])
        assert find_checkpoint(run) is not None
    finally:
        filler.unlink(missing_ok=True)
    result = lab.train([], name="real-full-resume", resume=run)
    assert result["exitcode"] == 0, lab.log("real-full-resume")
    assert scan(run) == ([], [])
    assert_same_result(run, lab.ref)
    shutil.rmtree(run, ignore_errors=True)
