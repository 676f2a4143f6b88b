"""Deciding honestly: does a fine-tuned candidate beat the baseline outside the noise?

Everything here reads the runs' **validation** predictions only (``predictions/validation.npz``;
every run of a fit has the very same validation items). Each run is scored twice:

- with the **default rule** (argmax / probability 0.5), and
- with the **tuned rule that will ship** (temperature + bagged thresholds/biases), cross-fitted on
  validation halves (:func:`tailtune.evaluation.crossfit.cross_fitted_decisions`): every item is
  decided by a rule tuned without it, so a candidate cannot look better through its own tuning.

A challenger is compared with the baseline on the seeds both finished:

- item level: :func:`~tailtune.experiments.stats.paired_bootstrap` (95% interval of the macro-F1
  difference, all seeds' decisions stacked) and :func:`~tailtune.experiments.stats.paired_permutation`;
- seed level: :func:`~tailtune.experiments.stats.welch_interval` over the per-seed macro-F1s;
- verdict: :func:`~tailtune.experiments.stats.combine_verdicts` of the two, so an ``improvement``
  needs BOTH the item interval (with p < 0.05) and the seed interval above zero. The first says the
  difference is not an accident of which validation items there are, the second that it is not an
  accident of the seed; a difference that only one of them supports is "inside the noise".

The decision rests on the tuned rule (what ships); the default rule's verdicts are recorded next
to it. The winner is the challenger with an ``improvement`` and the highest mean tuned score;
with none, the baseline is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tailtune.evaluation import crossfit  # called through the module: the kill tests patch it there
from tailtune.evaluation.run_dir import load_predictions, open_run
from tailtune.experiments import stats
from tailtune.experiments.stats import item_counts, metric_from_counts, summarize
from tailtune.metrics import decode
from tailtune.metrics._task import int_targets

__all__ = ["DECIDE_BOOTSTRAP", "N_RESAMPLES", "compare_arms", "decide", "run_scores"]

#: bootstrap resamples of each cross-fitted rule (what ``tailtune tune`` uses)
DECIDE_BOOTSTRAP = 100
#: resamples of the paired tests
N_RESAMPLES = 2000
VARIANTS = ("tuned", "default")


def macro_f1(task, y, pred) -> float:
    tp, fp, fn, _ = item_counts(y, pred, task)
    return float(metric_from_counts(tp.sum(0), fp.sum(0), fn.sum(0), kind=task.kind, polarities=len(task.polarities)))


def run_scores(run_dir: Path, task, *, hierarchy_mode: str | None, seed: int = 0) -> dict[str, Any]:
    """Validation logits, targets and both rules' decisions and macro-F1 of one run."""
    logits, targets = load_predictions(open_run(run_dir), "validation")
    y = int_targets(targets, task)
    default = np.asarray(decode(logits, task))
    tuned = crossfit.cross_fitted_decisions(logits, y, task, seed=seed, bootstrap=DECIDE_BOOTSTRAP,
                                            hierarchy_mode=hierarchy_mode)
    return {"logits": logits, "y": y, "default_pred": default, "tuned_pred": tuned,
            "default": macro_f1(task, y, default), "tuned": macro_f1(task, y, tuned)}


def _one_variant(task, y, base: list[dict], cand: list[dict], variant: str) -> dict[str, Any]:
    a = [r[f"{variant}_pred"] for r in base]
    b = [r[f"{variant}_pred"] for r in cand]
    boot = stats.paired_bootstrap(y, a, b, task=task, n_resamples=N_RESAMPLES, seed=0)
    perm = stats.paired_permutation(y, a, b, task=task, n_resamples=N_RESAMPLES, seed=0)
    diff, low, high = stats.welch_interval([r[variant] for r in base], [r[variant] for r in cand])
    item = stats.verdict(low=boot.ci_low, high=boot.ci_high, p_value=perm.p_value)
    seed_level = stats.verdict(low=low, high=high)
    return {"diff": boot.diff, "item_ci": [boot.ci_low, boot.ci_high], "item_p": perm.p_value,
            "item_verdict": item, "seed_diff": diff, "seed_ci": [low, high], "seed_verdict": seed_level,
            "verdict": stats.combine_verdicts([item, seed_level])}


def compare_arms(task, y, base: dict[int, dict], cand: dict[int, dict]) -> dict[str, Any]:
    """Paired tests of a challenger against the baseline on their common seeds (both rules)."""
    seeds = sorted(set(base) & set(cand))
    out: dict[str, Any] = {"seeds": seeds}
    if len(seeds) < 2:
        out["verdict"] = "no detectable difference"
        out["note"] = (f"{len(seeds)} common seed(s): the seed noise cannot be measured, so no difference can be "
                       "called; the baseline is kept")
        return out
    for variant in VARIANTS:
        out[variant] = _one_variant(task, y, [base[s] for s in seeds], [cand[s] for s in seeds], variant)
    out["verdict"] = out["tuned"]["verdict"]
    return out


def _summary(rows: dict[int, dict]) -> dict[str, Any]:
    return {v: summarize([r[v] for r in rows.values()]).to_dict() for v in VARIANTS} | {"seeds": sorted(rows)}


def _reason(baseline: str, winner: str, comparisons: dict[str, dict], summaries: dict[str, dict]) -> str:
    if winner != baseline:
        t = comparisons[winner]["tuned"]
        return (f"{winner} beats {baseline} outside the noise under the tuned rule: +{100 * t['diff']:.1f} points of "
                f"validation macro-F1, item interval [{100 * t['item_ci'][0]:+.1f}, {100 * t['item_ci'][1]:+.1f}] "
                f"(p={t['item_p']:.3g}), seed interval [{100 * t['seed_ci'][0]:+.1f}, {100 * t['seed_ci'][1]:+.1f}]")
    if not comparisons:
        return f"no challenger was fine-tuned; {baseline} is kept"
    parts = []
    for name, c in comparisons.items():
        if "tuned" not in c:
            parts.append(f"{name}: {c['note']}")
            continue
        t = c["tuned"]
        parts.append(f"{name} {100 * t['diff']:+.1f} points ({t['item_verdict']} by items, {t['seed_verdict']} by "
                     f"seeds)")
    return f"no challenger beats {baseline} outside the noise under the tuned rule; {baseline} is kept (" + \
        "; ".join(parts) + ")"


def decide(task, y, arms: dict[str, dict[int, dict]], *, baseline: str) -> dict[str, Any]:
    """Compare every challenger with the baseline; return the decision record for fit.json."""
    comparisons = {name: compare_arms(task, y, arms[baseline], rows) for name, rows in arms.items()
                   if name != baseline}
    summaries = {name: _summary(rows) for name, rows in arms.items() if rows}
    winners = [n for n, c in comparisons.items() if c["verdict"] == "improvement"]
    winner = max(winners, key=lambda n: summaries[n]["tuned"]["mean"]) if winners else baseline
    return {"winner": winner, "baseline": baseline, "rests_on": "tuned", "comparisons": comparisons,
            "summaries": summaries, "improvements": winners,
            "reason": _reason(baseline, winner, comparisons, summaries)}
