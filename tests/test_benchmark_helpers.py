"""The pure pieces of benchmarks/train_throughput.py and the GPU kit that need no GPU: the FLOPs
formula behind MFU, the synthetic data sets, the run order under a budget and the kit's shell syntax."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

tt = pytest.importorskip("train_throughput")


def test_flops_count_the_layer_matmul_weights_and_attention():
    from transformers import BertConfig, BertModel

    shape = {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 256}
    model = BertModel(BertConfig(vocab_size=100, **shape))
    matmul_weights = sum(p.numel() for n, p in model.encoder.named_parameters() if n.endswith(".weight")
                         and p.ndim == 2)
    lengths = np.array([10, 20])
    got = tt.train_flops(lengths, layers=3, hidden=64, ffn=256)
    attention = 12 * 3 * 64 * (10**2 + 20**2)
    assert got == pytest.approx(6 * matmul_weights * 30 + attention)


def test_synthetic_sets_have_the_promised_shape(tmp_path):
    words = [f"w{i:05d}" for i in range(400)]
    full = tt.write_synthetic(tmp_path / "full", words, n_train=20, n_eval=5, labels=4, full=True, max_length=16)
    rows = [json.loads(x) for x in (tmp_path / "full" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(len(r["text"].split()) == 16 + 32 for r in rows)
    assert all(isinstance(r["labels"], str) for r in rows) and full["words_median"] == 48

    tt.write_synthetic(tmp_path / "ml", words, n_train=2000, n_eval=10, labels=6, full=False, max_length=128)
    rows = [json.loads(x) for x in (tmp_path / "ml" / "train.jsonl").read_text().splitlines()]
    lengths = np.array([len(r["text"].split()) for r in rows])
    assert 24 <= np.median(lengths) <= 32 and lengths.min() >= 4
    names = (tmp_path / "ml" / "labels.txt").read_text().split()
    counts = np.array([sum(n in r["labels"] for r in rows) for n in names])
    assert (counts > 0).all() and counts[0] > 3 * counts[-1]  # Zipf-like: imbalanced
    # every label's cue word survives truncation: it sits in the first max_length - 2 words
    cues = {n: words[3 * k: 3 * k + 3] for k, n in enumerate(names)}
    for r in rows[:200]:
        head = set(r["text"].split()[:126])
        assert all(head & set(cues[lab]) for lab in r["labels"])


def test_core_pairs_and_compile_on_the_mfu_shape_run_first():
    suites, arms = list(tt.SUITES), ["vanilla", "tailtune", "tailtune-compile", "tailtune-plain"]
    jobs = sorted(((s, a) for s in suites for a in arms),
                  key=lambda j: (tt.priority(*j), suites.index(j[0]), arms.index(j[1])))
    first = jobs[: 2 * len(suites) + 1]
    assert ("bert-base-128", "tailtune-compile") in first
    assert all((s, a) in first for s in suites for a in ("vanilla", "tailtune"))
    assert jobs[-1][1] == "tailtune-plain"


def test_kit_script_parses():
    subprocess.run(["bash", "-n", str(BENCH / "gpu_kit.sh")], check=True)
