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


def test_arms_run_cheapest_first_and_caps_bound_the_estimates():
    suites, arms = ["minilm-tweeteval", "bert-base-128", "minilm-synthetic40k"], ["vanilla", "tailtune", "tailtune-graphs"]
    jobs = sorted(((s, a) for s in suites for a in arms),
                  key=lambda j: (tt.estimate_s(j[0], j[1], tt.SUITES[j[0]], 45.0), suites.index(j[0]), arms.index(j[1])))
    order = [f"{s}/{a}" for s, a in jobs]
    for suite in suites:  # a suite's compiled arm after its plain arms (it pays the compilation)
        assert order.index(f"{suite}/tailtune-graphs") > order.index(f"{suite}/tailtune") > order.index(f"{suite}/vanilla")
    assert order[-1] == "minilm-synthetic40k/tailtune-graphs"  # the 40k suite is the dearest
    uncapped = tt.estimate_s("minilm-synthetic40k", "vanilla", tt.SUITES["minilm-synthetic40k"])
    assert tt.estimate_s("minilm-synthetic40k", "vanilla", tt.SUITES["minilm-synthetic40k"], 45.0) < uncapped
    assert set(tt.CHANGES_RESULTS) <= set(tt.ARMS)


def test_targets_judge_only_comparable_arms():
    row = {"samples_per_s": 100.0, "macro_f1": 0.5, "mfu": 0.1}
    suites = {"minilm-tweeteval": {"arms": {
        "vanilla": row, "tailtune-graphs": {**row, "samples_per_s": 250.0, "macro_f1": 0.498},
        "tailtune-graphs-grouped": {**row, "samples_per_s": 400.0, "changes_results": True},
        "tailtune": {**row, "capped": True}}}}
    targets = tt._targets(suites)
    assert targets["minilm-tweeteval tailtune-graphs: samples/s >= 2x vanilla"] == {"ratio": 2.5, "met": True}
    assert targets["minilm-tweeteval tailtune-graphs: macro-F1 within 0.5 points of vanilla"]["met"] is True
    assert not any("grouped" in k or " tailtune:" in k for k in targets)


def test_step_overhead_loss_agreement():
    so = pytest.importorskip("step_overhead")
    arms = {"tailtune": {"first_losses": [1.0, 0.9]}, "tailtune-trainer-loop": {"first_losses": [1.0, 0.9]},
            "compile": {"first_losses": [1.0 + 1e-7, 0.9]}, "buckets": {"first_losses": [1.1, 0.9]}}
    checks = {c["arm"]: c for c in so.agreement(arms)}
    assert checks["tailtune"]["ok"] and checks["tailtune"]["expected"] == "exact"
    assert checks["compile"]["ok"] and not checks["buckets"]["ok"]
    assert so.targets({"vanilla": {"ms_per_step": 10.0}, "compile-model": {"ms_per_step": 4.0}}) == {
        "compile-model: host ms/step <= 0.5x vanilla": {"ratio": 0.4, "met": True}}


def test_kit_summary_reads_partial_files(tmp_path, capsys):
    ks = pytest.importorskip("kit_summary")
    (tmp_path / "env.json").write_text(json.dumps({"cuda_available": False}))
    (tmp_path / "step_overhead-cpu.json").write_text(json.dumps({"arms": {
        "vanilla": {"ms_per_step": 8.0, "syncs_per_step": 3.0, "clock": "process CPU time"},
        "tailtune": {"ms_per_step": 6.0, "syncs_per_step": 1.0, "ratio_vs_vanilla": 0.75}},
        "targets": {"tailtune: host ms/step <= 0.5x vanilla": {"ratio": 0.75, "met": False},
                    "floor (bare loop, not a target)": {"ratio": 0.6}}}))
    (tmp_path / "train_throughput.json").write_text(json.dumps({"suites": {"minilm-tweeteval": {"arms": {
        "vanilla": {"samples_per_s": 100.0, "tokens_per_s": 2000.0, "mfu": 0.01, "macro_f1": 0.5}}}},
        "skipped": [{"suite": "minilm-synthetic40k", "arm": "vanilla", "estimate_s": 62, "left_s": 10}]}))
    assert ks.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tailtune" in out and "0.75x vanilla" in out and "skipped minilm-synthetic40k/vanilla" in out
    assert "0.75 -> NOT met" in out and "floor (bare loop, not a target): 0.60\n" in out  # a reference, no verdict
    assert "incomplete" not in out
    assert "losses-*.json: no file" in out and "predict" not in out


def test_kit_script_parses():
    subprocess.run(["bash", "-n", str(BENCH / "gpu_kit.sh")], check=True)
