"""Print the headline figures of a ``gpu_kit.sh`` run from the JSON files in its output folder.

Usage: python benchmarks/kit_summary.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(folder: Path, pattern: str) -> dict | None:
    for path in sorted(folder.glob(pattern)):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{path.name}: unreadable ({exc})")
    return None


def losses(d: dict) -> None:
    t = d.get("targets", {})
    for key, v in t.items():
        ratio = v.get("ratio")
        print(f"  losses {key}: {ratio:.2f}x (target <= {v['target']}) met={v['met']}" if ratio is not None
              else f"  losses {key}: not measured")


def predict(d: dict) -> None:
    tps = d.get("texts_per_s", {})
    print(f"  predict: tailtune {tps.get('tailtune', 0):.0f} texts/s vs pipeline {tps.get('pipeline', 0):.0f} -> "
          f"{d.get('speedup_vs_pipeline', 0):.2f}x (target >= 1.5); max |logit diff| "
          f"{d.get('max_abs_logit_diff_vs_ordered_loop', float('nan')):.1e}")


def step_overhead(d: dict) -> None:
    print(f"  micro encoder, batch {d.get('batch_size')}, {d.get('steps')} steps; clock: "
          f"{next((r.get('clock') for r in d.get('arms', {}).values() if 'clock' in r), '?')}")
    for arm, row in d.get("arms", {}).items():
        if "error" in row:
            print(f"    {arm:22s} ERROR {row['error'][:120]}")
            continue
        ratio = row.get("ratio_vs_vanilla")
        print(f"    {arm:22s} {row['ms_per_step']:8.2f} ms/step  {row['syncs_per_step']:5.2f} syncs/step"
              + (f"  {ratio:.2f}x vanilla" if ratio else "")
              + (f"  compile {row['compile_s']:.1f} s" if row.get("compile_s") else ""))
    for check in d.get("agreement", []):
        print(f"    first losses {check['arm']} vs {check['reference']} ({check['expected']}): "
              f"max abs diff {check['max_abs_diff']:.1e} {'ok' if check['ok'] else 'DIFFERENT'}")
    for name, t in d.get("targets", {}).items():
        verdict = "" if "met" not in t else (" -> met" if t["met"] else " -> NOT met")  # the floor: a reference
        print(f"    target {name}: {t['ratio']:.2f}{verdict}")


def throughput(d: dict) -> None:
    peak = d.get("peak", {})
    print(f"  throughput: peak {peak.get('flops_per_s', 0) / 1e12:.1f} TFLOP/s ({peak.get('dtype')})")
    for suite, rec in d.get("suites", {}).items():
        for arm, row in rec.get("arms", {}).items():
            if "error" in row:
                print(f"    {suite:20s} {arm:24s} ERROR {row['error'][:120]}")
                continue
            ratio = row.get("samples_per_s_ratio_vs_vanilla")
            print(f"    {suite:20s} {arm:24s} {row['samples_per_s']:9.1f} samples/s {row['tokens_per_s']:10.0f} tok/s "
                  f"MFU {row['mfu']:6.1%} F1 {row['macro_f1']:.4f} mem {row.get('peak_memory_gib') or 0:5.1f} GiB"
                  + (f"  {ratio:.2f}x vanilla" if ratio else "")
                  + (f"  compile {row['compile_s']:.0f} s" if row.get("compile_s") else "")
                  + ("  CAPPED (F1 of a partly trained model)" if row.get("capped") else "")
                  + ("  (changes results)" if row.get("changes_results") else ""))
    for s in d.get("skipped", []):
        print(f"    skipped {s['suite']}/{s['arm']} (budget: about {s.get('estimate_s', '?')} s, {s.get('left_s', '?')} s left)")
    for name, t in d.get("targets", {}).items():
        met = t.get("met") if isinstance(t, dict) else t
        detail = {k: v for k, v in t.items() if k != "met"} if isinstance(t, dict) else {}
        print(f"    target {name}: {'met' if met else 'NOT met'} {detail if detail else ''}")


def finetune(d: dict) -> None:
    for name, rec in d.get("datasets", {}).items():
        for arm, row in rec.get("arms", {}).items():
            f1, sps = row["macro_f1"], row["train_samples_per_s"]
            extra = ""
            if "gain_in_sd" in row:
                g = row["gain_in_sd"]
                extra = (f"  gain {row['macro_f1_minus_baseline']:+.4f} ({'n/a' if g is None else f'{g:+.1f}'} sd), "
                         f"{row['samples_per_s_ratio_vs_baseline']:.2f}x samples/s")
            print(f"    {name:22s} {arm:22s} F1 {f1['mean']:.4f} +- {f1['sd']:.4f} (n={len(f1['values'])}) "
                  f"{sps['mean']:8.1f} samples/s{extra}")
    for s in d.get("skipped", []):
        print(f"    skipped {s.get('dataset')} seed {s.get('seed', '-')}: {s['reason']}")


def main(argv=None) -> int:
    folder = Path((argv or sys.argv[1:] or ["."])[0])
    print(f"summary of {folder}")
    env = _load(folder, "env.json") or {}
    if not env.get("cuda_available"):
        print("  (CPU run: a smoke test of the code paths; the targets below apply to the GPU and CPU figures are not GPU figures)")
    optional = ("predict_*.json", "finetune*.json")  # stages that run only when asked for
    for pattern, show in (("step_overhead-*.json", step_overhead), ("losses-*.json", losses),
                          ("train_throughput*.json", throughput), ("predict_*.json", predict),
                          ("finetune*.json", finetune)):
        data = _load(folder, pattern)
        if data is None:
            if pattern not in optional:
                print(f"  {pattern}: no file")
            continue
        print(f"{pattern.split('*')[0].rstrip('-_')}:")
        try:
            show(data)
        except (KeyError, TypeError, ValueError) as exc:  # a partial file from a stage stopped at its cap
            print(f"  incomplete ({type(exc).__name__}: {exc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
