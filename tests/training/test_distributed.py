"""The same entry point under ``torchrun --nproc_per_node 2`` on CPU (gloo): one run directory,
written by rank 0 only, with a history row per epoch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from tiny_runs import tiny_recipe

from tailtune.utils import rundir
from tailtune.utils.io import read_jsonl

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys
from tailtune.recipe import load_recipe
from tailtune.training import train
result = train(load_recipe(sys.argv[1]))
print("rank", os.environ.get("RANK"), "done", result.run_dir, flush=True)
"""


def test_two_process_gloo_run(tiny_data, tiny_encoder_dir, tmp_path):
    out = tmp_path / "run"
    recipe = tiny_recipe("multilabel", tiny_data("multilabel"), tiny_encoder_dir, out)
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT)
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(port), str(script), str(recipe_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-4000:]
    assert stdout.count("done") == 2
    rows = read_jsonl(out / rundir.HISTORY)
    assert [r["epoch"] for r in rows] == [1, 2]
    # 64 examples, batch 8 per process, 2 processes: 4 optimiser steps per epoch
    assert [r["step"] for r in rows] == [4, 8]
    evaluation = json.loads((out / rundir.EVAL).read_text())
    assert set(evaluation) == {"validation", "test"}
    import numpy as np

    npz = np.load(out / rundir.PREDICTIONS_DIR / "validation.npz")
    assert npz["logits"].shape == (24, 3) and npz["targets"].shape == (24, 3)
    assert (out / rundir.MODEL_DIR / "model.safetensors").exists()
    leftovers = [p.name for p in out.rglob(".*.tmp")]
    assert leftovers == []
