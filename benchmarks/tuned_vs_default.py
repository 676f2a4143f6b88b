"""Benchmark (issue 5): does the validation-tuned decision rule raise TEST macro-F1 over the default?

For each fine-tuned run directory: the rule is tuned on the run's ``predictions/validation.npz``
only, then the default rule (0.5 thresholds / argmax) and the tuned rules are scored on
``predictions/test.npz``. Two tuned rules are reported:

- ``exact``: one exact fit on the whole validation split (``tailtune tune --bootstrap 0``);
- ``bagged``: the shipped default (``tailtune tune``: 100 bootstrap resamples, out-of-bag check per
  unit with ``--margin 0.5``), with its out-of-bag gain and the units it kept.

The reference named in the output is the default rule of the same run on the same test items.
The test split is only read for scoring, never for tuning. Runs come from the recipes in
``benchmarks/recipes/evidence_*.yaml``, e.g.::

    .venv/bin/tailtune train benchmarks/recipes/evidence_reuters.yaml --seed 14 -o runs/evidence/reuters-14
    .venv/bin/python benchmarks/tuned_vs_default.py runs/evidence/* [--out benchmarks/results/tuned_vs_default.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def score_run(run_dir: str, *, resamples: int = 100, margin: float = 0.5) -> dict:
    from tailtune.evaluation.runs import load_predictions, open_run
    from tailtune.evaluation.tuning import tune_decision_rule
    from tailtune.metrics import classification_report, decode

    run = open_run(run_dir)
    task = run.task
    zv, yv = load_predictions(run, "validation")
    zt, yt = load_predictions(run, "test")
    if task.kind == "binary":
        yv, yt = np.asarray(yv).reshape(-1), np.asarray(yt).reshape(-1)
    default = classification_report(yt, decode(zt, task), task)["macro_f1"]
    exact = tune_decision_rule(zv, yv, task, bootstrap=0)
    bagged = tune_decision_rule(zv, yv, task, bootstrap=resamples, margin=margin)
    boot = bagged.postprocess.extra["bootstrap"]
    return {
        "run": str(run_dir), "kind": task.kind,
        "test_default": default,
        "test_exact": classification_report(yt, exact.postprocess.decide(zt, task), task)["macro_f1"],
        "test_bagged": classification_report(yt, bagged.postprocess.decide(zt, task), task)["macro_f1"],
        "validation_gain_exact": exact.gain, "validation_gain_bagged": bagged.gain,
        "oob_gain": boot["oob_gain"], "kept": len(boot["kept"]),
        "units": len(boot["kept"]) + len(boot["reverted"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories written by `tailtune train`")
    parser.add_argument("--resamples", type=int, default=100)
    parser.add_argument("--margin", type=float, default=0.5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tuned_vs_default.json"))
    args = parser.parse_args()
    rows = []
    for run_dir in args.runs:
        if not (Path(run_dir) / "predictions" / "test.npz").is_file():
            print(f"{run_dir}: no predictions/test.npz (unfinished run?), skipped", file=sys.stderr)
            continue
        r = score_run(run_dir, resamples=args.resamples, margin=args.margin)
        rows.append(r)
        print(f"{Path(run_dir).name}: test macro-F1 default {r['test_default']:.4f}  exact {r['test_exact']:.4f} "
              f"({(r['test_exact'] - r['test_default']) * 100:+.2f} pts)  bagged {r['test_bagged']:.4f} "
              f"({(r['test_bagged'] - r['test_default']) * 100:+.2f} pts; out-of-bag {r['oob_gain'] * 100:+.2f}, "
              f"kept {r['kept']}/{r['units']})", flush=True)
    if not rows:
        print("no finished runs to score", file=sys.stderr)
        return 1
    out = {"reference": "default decision rule of the same run on the same test items",
           "resamples": args.resamples, "margin": args.margin, "runs": rows,
           "mean_change_pts": {m: float(np.mean([r[f"test_{m}"] - r["test_default"] for r in rows]) * 100)
                               for m in ("exact", "bagged")}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"mean change: exact {out['mean_change_pts']['exact']:+.2f} pts, bagged "
          f"{out['mean_change_pts']['bagged']:+.2f} pts; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
