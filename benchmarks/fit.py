"""``tailtune fit`` on the shared data sets: the final model's test macro-F1 against the plain
baseline's, measured in the same run.

For every data set, ``tailtune.fit`` runs with the budget given (it continues a fit already in the
run folder). Then, and only then, the test split is read here:

- **fit**: the shipped model (an ensemble or one model, its bagged rule) on the test split, with the
  default rule and with the shipped rule (``eval.json`` of the fit folder);
- **baseline (the reference)**: the plain CE/BCE runs the fit itself trained (same seeds, same
  epochs and training texts, same encoder), each predicted on the test split here, scored with the
  default rule and with a bagged rule tuned on its own validation predictions (what ``tailtune tune``
  gives a user of plain CE/BCE); their mean over the seeds;
- **paired interval**: :func:`tailtune.experiments.stats.paired_bootstrap` of fit's decisions against
  the baseline seeds' stacked decisions on the same test items (2000 resamples, 95%).

Nothing here feeds back into the fit: its choices were recorded before this script reads test.

Usage::

    .venv/bin/python benchmarks/fit.py                           # the four shared sets, CPU budgets
    .venv/bin/python benchmarks/fit.py --datasets sms_spam --budget 12m
    .venv/bin/python benchmarks/fit.py --device cuda --budgets tweeteval_emotion=90s,...   # GPU (fit_gpu.sh)

Writes ``benchmarks/results/fit_<device>.json`` (rewritten after every data set) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("sms_spam", "tweeteval_emotion", "mams_acsa", "reuters21578_modapte")
#: CPU budgets that fit the 2-core development machine (the planner adapts the work to them)
CPU_BUDGETS = {"sms_spam": "12m", "tweeteval_emotion": "15m", "mams_acsa": "15m", "reuters21578_modapte": "20m"}
DATA_OPTIONS = {"reuters21578_modapte": {"empty_text": "drop"}}


def _load_avg() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _test_items(folder: Path) -> tuple[list[str], np.ndarray]:
    texts = [json.loads(line)["text"] for line in (folder / "heldout" / "test.jsonl").read_text().splitlines() if line]
    with np.load(folder / "predictions" / "test.npz") as f:
        return texts, np.asarray(f["targets"])


def _encoded(task, y):
    y = np.rint(np.asarray(y, dtype=np.float64)).astype(np.int64)
    return y.reshape(-1) if task.kind in ("binary", "multiclass") else y


def _baseline_seed(run: Path, texts: list[str], y_test, task, device: str) -> dict:
    """One baseline run on test: default rule, and the bagged rule tuned on its validation predictions."""
    from tailtune.evaluation.predictor import Predictor
    from tailtune.evaluation.run_dir import load_predictions, open_run
    from tailtune.evaluation.tuning import tune_decision_rule
    from tailtune.fit.decide import macro_f1
    from tailtune.metrics import decode

    logits = Predictor.from_run_dir(run, device=device).predict_logits(texts)
    val_logits, val_y = load_predictions(open_run(run), "validation")
    rule = tune_decision_rule(val_logits, _encoded(task, val_y), task).postprocess
    default, tuned = np.asarray(decode(logits, task)), rule.decide(logits, task)
    return {"default_pred": default, "tuned_pred": tuned, "default": macro_f1(task, y_test, default),
            "tuned": macro_f1(task, y_test, tuned)}


def evaluate(folder: Path, device: str) -> dict:
    """The table row of one finished fit folder (reads its test split; see the module docstring)."""
    from tailtune.evaluation.postprocess import PostProcess
    from tailtune.evaluation.run_dir import load_predictions, open_run
    from tailtune.experiments.stats import paired_bootstrap
    from tailtune.fit.decide import macro_f1
    from tailtune.metrics import decode

    state = json.loads((folder / "fit.json").read_text())
    units = {k: v.get("result") or {} for k, v in state["units"].items()}
    run = open_run(folder)
    task = run.task
    texts, targets = _test_items(folder)
    y = _encoded(task, targets)
    logits, _ = load_predictions(run, "test")
    fit_pred = {"default": np.asarray(decode(logits, task)), "tuned": PostProcess.load(folder / "postprocess.json").decide(logits, task)}
    runs = units["decide"]["runs"]["baseline"]
    base = [_baseline_seed(folder / r["run_dir"], texts, y, task, device) for _, r in sorted(runs.items())]
    row = {"winner": units["decide"]["winner"], "ensemble": units["final"]["ensemble"],
           "fit": {v: macro_f1(task, y, fit_pred[v]) for v in ("default", "tuned")},
           "baseline_seeds": {v: [b[v] for b in base] for v in ("default", "tuned")}}
    row["baseline_mean"] = {v: float(np.mean(row["baseline_seeds"][v])) for v in ("default", "tuned")}
    for variant in ("default", "tuned"):
        test = paired_bootstrap(y, [b[f"{variant}_pred"] for b in base], fit_pred[variant], task=task, n_resamples=2000)
        row[f"paired_{variant}"] = {"diff": test.diff, "ci": [test.ci_low, test.ci_high], "p": test.p_value}
    plan, replan = units.get("plan") or {}, units.get("replan") or {}
    row["plan"] = {"arms": replan.get("arms", plan.get("arms")), "seeds": replan.get("seeds", plan.get("seeds")),
                   "epochs": plan.get("epochs"), "train_size": plan.get("train_size"), "cuts": plan.get("steps")}
    row["budget_s"], row["spent_s"] = state["options"]["budget_s"], state["spent_s"]
    row["decision"] = units["decide"]["reason"]
    return row


def _table(rows: dict) -> str:
    out = ["| data | budget | wall | trained | winner | fit test macro-F1 (default / shipped rule) | baseline mean "
           "(default / tuned) | fit - baseline, shipped vs tuned [95% CI] |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        if "error" in r:
            out.append(f"| {name} | {r.get('budget')} | | | error: {r['error']} | | | |")
            continue
        p, t = r["plan"], r["paired_tuned"]
        trained = f"{len(p['arms'] or [])} arms x {len(p['seeds'] or [])} seeds, {p['epochs']} ep, {p['train_size']:,} texts"
        out.append(f"| {name} | {r['budget_s'] / 60:.0f} min | {r['wall_s'] / 60:.1f} min | {trained} | {r['winner']}"
                   f"{' (ensemble)' if r['ensemble'] else ''} | {r['fit']['default']:.4f} / **{r['fit']['tuned']:.4f}** | "
                   f"{r['baseline_mean']['default']:.4f} / {r['baseline_mean']['tuned']:.4f} | {100 * t['diff']:+.1f} "
                   f"[{100 * t['ci'][0]:+.1f}, {100 * t['ci'][1]:+.1f}] |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--budget", default=None, help="one budget for every data set (default: CPU_BUDGETS)")
    ap.add_argument("--budgets", default="", help="name=budget,... overrides")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", default=os.environ.get("TAILTUNE_BENCH_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--model", default=os.environ.get("TAILTUNE_BENCH_MODEL"))
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bench-fit"))
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/fit_<device>.json)")
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    import tailtune
    from tailtune.fit.api import resolve_device

    device = resolve_device(args.device)[0]
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"fit_{device}.json")
    budgets = dict(CPU_BUDGETS)
    if args.budget:
        budgets = dict.fromkeys(args.datasets, args.budget)
    budgets.update(dict(kv.split("=", 1) for kv in args.budgets.split(",") if kv))
    report = {"command": "python " + " ".join([os.path.relpath(__file__, ROOT), *(argv or sys.argv[1:])]),
              "device": device, "machine_before": _load_avg(), "cpu_count": os.cpu_count(), "datasets": {}}
    for name in args.datasets:
        data = Path(args.data) / name
        if not (data / "train.jsonl").exists():
            report["datasets"][name] = {"error": f"{data} missing", "budget": budgets.get(name)}
            continue
        folder = Path(args.runs) / f"{name}-{device}"
        start, load = time.monotonic(), _load_avg()
        try:
            tailtune.fit(data, folder, model=args.model, budget=budgets.get(name, "15m"), seeds=args.seeds,
                         device=args.device, max_epochs=args.max_epochs, show_progress=not args.quiet,
                         **DATA_OPTIONS.get(name, {}))
            row = evaluate(folder, device)
        except Exception as exc:  # noqa: BLE001 - record and go on with the next data set
            row = {"error": f"{type(exc).__name__}: {exc}", "budget": budgets.get(name)}
        row.update(wall_s=round(time.monotonic() - start, 1), load_at_start=load, folder=str(folder))
        report["datasets"][name] = row
        report["machine_after"] = _load_avg()
        from tailtune.utils.io import atomic_write_json

        atomic_write_json(out, report)
        print(_table(report["datasets"]), flush=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
