"""Benchmark: which decision-rule tuning generalises? Measured on VALIDATION data only.

For each data set of ``../shared/data``: frozen all-MiniLM-L6-v2 embeddings (cached, as
``tailtune screen`` makes them), the ``ce`` screening head trained for ``--seeds`` seeds, and the
validation logits of each seed. Each seed's validation split is cut at random into two halves
(``--cuts`` times): the rule is tuned on one half (temperature, then thresholds/biases) and scored on
the other. The reference is the default rule (0.5 thresholds / argmax) on the same held-out half; the
script prints the mean held-out macro-F1 change of each tuning method against it:

- ``exact``: one exact fit (``tune_decision_rule(..., bootstrap=0)``);
- ``margin=m``: the bagged rule with the out-of-bag check (``bootstrap=--resamples, margin=m``).

No test split is read: this is how the tuning defaults were chosen (docs/evaluation.md). Writes
``benchmarks/results/tune_rules.json``.

    .venv/bin/python benchmarks/tune_rules.py [--data tweeteval_emotion,sms_spam,mams_acsa,reuters21578_modapte]
        [--seeds 10] [--cuts 2] [--resamples 30] [--margins 0,0.5,1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data"
DATASETS = "tweeteval_emotion,sms_spam,mams_acsa,reuters21578_modapte"


def validation_logits(folder: Path, seeds: list[int], max_length: int) -> tuple[object, np.ndarray, dict]:
    """The task, validation targets and ``{seed: validation logits}`` of the ``ce`` screening head."""
    import torch

    from tailtune.data import load_dataset
    from tailtune.experiments.embeddings import get_embeddings
    from tailtune.experiments.screen import parse_recipe_specs, prepare_recipe, target_tensor, train_head

    loaded = load_dataset(folder, empty_text="drop")
    task = loaded.task
    texts = {k: list(loaded.splits[k]["text"]) for k in ("train", "validation")}
    emb = get_embeddings(texts, model="sentence-transformers/all-MiniLM-L6-v2", max_length=max_length,
                         show_progress=False)
    torch.set_num_threads(1)
    prepared = prepare_recipe(parse_recipe_specs("ce")[0], task, loaded.targets["train"])
    targets = {k: target_tensor(task, loaded.targets[k]) for k in ("train", "validation")}
    logits = {s: train_head(prepared, task, emb.arrays, targets, seed=s)["logits"]["validation"] for s in seeds}
    return task, np.asarray(loaded.targets["validation"]), logits


def held_out_gains(task, y, logits: dict, *, cuts: int, resamples: int, margins: list[float]) -> dict:
    from tailtune.evaluation import tuning
    from tailtune.metrics import classification_report, decode

    rng = np.random.default_rng(123)
    methods = ["exact"] + [f"margin={m:g}" for m in margins]
    gains: dict[str, list[float]] = {m: [] for m in methods}
    for z in logits.values():
        z = np.asarray(z, dtype=np.float64)
        for _ in range(cuts):
            perm = rng.permutation(len(y))
            a, b = perm[: len(y) // 2], perm[len(y) // 2:]
            default = classification_report(y[b], decode(z[b], task), task)["macro_f1"]
            for method in methods:
                kw = {"bootstrap": 0} if method == "exact" else {
                    "bootstrap": resamples, "margin": float(method.split("=")[1])}
                rule = tuning.tune_decision_rule(z[a], y[a], task, **kw).postprocess
                gains[method].append(classification_report(y[b], rule.decide(z[b], task), task)["macro_f1"] - default)
    return {m: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                "worse_share": float(np.mean(np.asarray(v) < -1e-12)), "n": len(v)} for m, v in gains.items()}


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATASETS, help="comma-separated folders under ../shared/data")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--cuts", type=int, default=2)
    parser.add_argument("--resamples", type=int, default=30)
    parser.add_argument("--margins", default="0,0.5,1")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tune_rules.json"))
    args = parser.parse_args()
    margins = [float(m) for m in args.margins.split(",")]
    seeds = list(range(13, 13 + args.seeds))
    results, t0 = {}, time.perf_counter()
    for name in args.data.split(","):
        folder = SHARED / name
        if not (folder / "validation.jsonl").exists():
            print(f"{name}: not present under {SHARED}, skipped", file=sys.stderr)
            continue
        task, y, logits = validation_logits(folder, seeds, args.max_length)
        results[name] = {"validation_size": int(len(y)),
                         **held_out_gains(task, y, logits, cuts=args.cuts, resamples=args.resamples, margins=margins)}
        row = "  ".join(f"{m} {r['mean'] * 100:+.2f} pts (worse {r['worse_share']:.0%})"
                        for m, r in results[name].items() if m != "validation_size")
        print(f"{name} (validation {len(y)}): held-out macro-F1 change vs the default rule: {row}", flush=True)
    out = {"reference": "default decision rule on the same held-out validation half", "seeds": seeds,
           "cuts": args.cuts, "resamples": args.resamples, "results": results,
           "wall_s": time.perf_counter() - t0, "platform": platform.platform()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
