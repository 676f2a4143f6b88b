"""Automatic post-mortem: a candidate run (or several seeds) against a baseline, in Markdown.

Sections: verdict (with an interval, see :mod:`tailtune.reports.compare`), metric table with deltas
(accuracy, macro-F1, the recall of each minority class, the train/validation gap at the best
epoch), recipe changes, the epoch table with gap trend labels, probable causes (history rules and
recipe lint) and concrete next steps.

Example:
    >>> text = postmortem(["runs/focal-s13", "runs/focal-s14"], ["runs/ce-s13", "runs/ce-s14"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tailtune.diagnostics import Finding, epoch_table, lint_recipe, load_run, run_rules
from tailtune.diagnostics.rundata import RunData, _num
from tailtune.errors import RunDirError
from tailtune.reports.compare import Comparison, compare_values, paired_bootstrap

#: recipe fields that differ between any two runs and say nothing about the recipe
IGNORED_RECIPE_KEYS = ("train.seed", "output", "tailtune_version", "name")

RunLike = "str | os.PathLike | RunData"


def _load(run) -> RunData:
    return run if isinstance(run, RunData) else load_run(run)


def _split(runs: Sequence[RunData]) -> str | None:
    for split in ("test", "validation"):
        if all(isinstance((r.eval or {}).get(split), dict) for r in runs):
            return split
    return None


def metrics_of(run: RunData, split: str | None) -> dict[str, Any]:
    """``{accuracy, macro_f1, gap, per_class}`` of a run on ``split`` (``None``: the best history row)."""
    if split is not None:
        rep = run.eval[split]
    else:
        rep = (run.best_row or {}).get("validation") or {}
    table = epoch_table(run)
    best = next((r for r in table if r["best"]), table[-1] if table else None)
    return {
        "accuracy": _num(rep.get("accuracy")),
        "macro_f1": _num(rep.get("macro_f1")),
        "gap": best["gap"] if best else None,
        "per_class": rep.get("per_class") or {},
    }


def minority_classes(runs: Sequence[RunData]) -> list[str]:
    """Classes with fewer training examples than the mean class (share < 1/C), rarest first."""
    for run in runs:
        counts = run.class_counts
        if counts:
            mean = sum(counts.values()) / len(counts)
            return sorted((k for k, v in counts.items() if v < mean), key=lambda k: counts[k])
    for run in runs:
        pc = metrics_of(run, _split([run]))["per_class"]
        sup = {k: float(v.get("support") or 0) for k, v in pc.items()}
        if sup:
            mean = sum(sup.values()) / len(sup)
            return sorted((k for k, v in sup.items() if v < mean), key=lambda k: sup[k])
    return []


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict) and d:
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = d
    return out


def recipe_changes(candidate: dict | None, baseline: dict | None) -> list[tuple[str, Any, Any]]:
    """``(field, baseline value, candidate value)`` for every differing recipe field (seed, output ignored)."""
    a, b = _flatten(candidate or {}), _flatten(baseline or {})
    keys = sorted(set(a) | set(b))
    return [(k, b.get(k), a.get(k)) for k in keys if a.get(k) != b.get(k) and not any(k == i or k.startswith(i + ".") for i in IGNORED_RECIPE_KEYS)]


def _mean_sd(values: list[float | None]) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{statistics.fmean(v):.3f} ± {statistics.stdev(v):.3f}"


def _cmp(cand: list[float | None], base: list[float | None]) -> Comparison | None:
    """Interval for candidate minus baseline (``None`` when a side has no value)."""
    a = [x for x in cand if x is not None]
    b = [x for x in base if x is not None]
    if not a or not b:
        return None
    return compare_values(a, b)


def _bootstrap(cand: RunData, base: RunData, split: str) -> Comparison | None:
    from tailtune.reports.predictions import macro_f1, prediction_view

    pc, pb = cand.predictions(split), base.predictions(split)
    if pc is None or pb is None or cand.task is None:
        return None
    import numpy as np

    if pc[1].shape != pb[1].shape or not np.array_equal(pc[1], pb[1]):
        return None
    # eval.json uses the default decision rule; so does the bootstrap (the same figures as the table)
    vc = prediction_view(pc[0], pc[1], cand.task, None)
    vb = prediction_view(pb[0], pb[1], base.task or cand.task, None)
    kind = vc.kind
    k = len(vc.labels)
    yt, yc, yb = vc.y_true, vc.y_pred, vb.y_pred
    return paired_bootstrap(lambda i: macro_f1(yt[i], yc[i], kind, k), lambda i: macro_f1(yt[i], yb[i], kind, k), len(yt))


def _fmt(x: float | None, d: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{d}f}"


def _delta(c: Comparison | None) -> tuple[str, str]:
    if c is None:
        return "n/a", ""
    interval = "" if c.low is None else f"{100 * c.low:+.1f} to {100 * c.high:+.1f}"
    return f"{100 * c.delta:+.1f}", interval


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _dedupe(findings_per_run: list[list[Finding]]) -> list[tuple[Finding, int]]:
    """One entry per finding that several seeds share (same rule and verdict up to its figures), with a count."""
    seen: dict[tuple[str, str, str], list] = {}
    for fs in findings_per_run:
        for f in fs:
            key = (f.rule, f.severity, _NUMBER.sub("#", f.verdict))
            if key in seen:
                seen[key][1] += 1
            else:
                seen[key] = [f, 1]
    return [(f, n) for f, n in seen.values()]


def postmortem(runs: Sequence, baselines: Sequence, *, split: str | None = None) -> str:
    """Markdown post-mortem of ``runs`` (one per seed) against ``baselines`` (one per seed).

    Args:
        runs: candidate run directories (or :class:`RunData`); several = several seeds.
        baselines: baseline run directories.
        split: ``"test"`` or ``"validation"`` (default: test when every run has it in eval.json).

    Raises:
        RunDirError: a run directory is missing or unreadable; ``split`` missing from an eval.json.
    """
    if not runs or not baselines:
        raise RunDirError("postmortem needs at least one run and one --baseline run")
    cand = [_load(r) for r in runs]
    base = [_load(r) for r in baselines]
    everything = cand + base
    if split is None:
        split = _split(everything)
    elif not all(isinstance((r.eval or {}).get(split), dict) for r in everything):
        missing = [str(r.path) for r in everything if not isinstance((r.eval or {}).get(split), dict)]
        raise RunDirError(f"--split {split}: not in eval.json of {', '.join(missing)}; use validation or re-run evaluate")
    mc = [metrics_of(r, split) for r in cand]
    mb = [metrics_of(r, split) for r in base]
    where = f"{split} split (eval.json)" if split else "validation at the best epoch (history.jsonl; no eval.json)"
    minority = minority_classes(base + cand)

    rows: list[tuple[str, list, list]] = [
        ("accuracy", [m["accuracy"] for m in mb], [m["accuracy"] for m in mc]),
        ("macro-F1", [m["macro_f1"] for m in mb], [m["macro_f1"] for m in mc]),
    ]
    for k in minority:
        rows.append((f"recall {k}", [_num((m["per_class"].get(k) or {}).get("recall")) for m in mb],
                     [_num((m["per_class"].get(k) or {}).get("recall")) for m in mc]))
    rows.append(("train-val gap (best epoch)", [m["gap"] for m in mb], [m["gap"] for m in mc]))

    primary = _cmp(rows[1][2], rows[1][1])
    if primary is not None and primary.low is None and len(cand) == 1 and len(base) == 1 and split:
        primary = _bootstrap(cand[0], base[0], split) or primary

    lines = [f"# Post-mortem: {', '.join(r.name for r in cand)} vs {', '.join(r.name for r in base)}", ""]
    seeds = lambda rs: ", ".join(f"{r.name} (seed {r.seed})" if r.seed is not None else r.name for r in rs)  # noqa: E731
    lines += [f"- candidate: {seeds(cand)}", f"- baseline: {seeds(base)}", f"- metrics from the {where}", ""]
    lines += ["## Verdict", ""]
    if primary is None:
        lines += ["**not distinguishable**: macro-F1 is missing on one side.", ""]
    else:
        mean_c = statistics.fmean(x for x in rows[1][2] if x is not None)
        mean_b = statistics.fmean(x for x in rows[1][1] if x is not None)
        lines += [f"**{primary.verdict}**: macro-F1 {mean_c:.3f} vs {mean_b:.3f}, {primary.describe()}.", ""]
        if primary.verdict == "not distinguishable":
            lines += ["The interval crosses zero: this difference is within the noise.", ""]

    lines += ["## Metrics", "", "| metric | baseline | candidate | delta (points) | 95% interval |", "|---|---|---|---|---|"]
    for name, b, c in rows:
        d, iv = _delta(_cmp(c, b))
        lines.append(f"| {name} | {_mean_sd(b)} | {_mean_sd(c)} | {d} | {iv} |")
    lines += ["", "The gap is train minus validation score: lower is better. "
              + (f"Minority classes (fewer training examples than the mean class): {', '.join(minority)}." if minority else ""), ""]

    changes = recipe_changes(cand[0].recipe, base[0].recipe)
    lines += ["## Recipe changes", ""]
    if changes:
        lines += ["| field | baseline | candidate |", "|---|---|---|"]
        show = lambda v: "–" if v is None else f"`{v!r}`"  # noqa: E731
        lines += [f"| `{k}` | {show(b)} | {show(a)} |" for k, b, a in changes]
    else:
        lines += ["The recipes are identical apart from seed and output." if cand[0].recipe and base[0].recipe
                  else "A recipe.yaml is missing; no comparison."]
    lines += [""]

    for title, group in (("candidate", cand[0]), ("baseline", base[0])):
        table = epoch_table(group)
        parts = sorted({p for r in table for p in r["loss_parts"]})
        metric = table[0]["gap_metric"] or "score"
        lines += [f"## Epochs ({title}: {group.name})", ""]
        head = ["epoch", "train loss", "val loss", *parts, f"train {metric}", f"val {metric}", "gap", "trend"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in table:
            cells = [f"{r['epoch']}" + (" *" if r["best"] else ""), _fmt(r["train_loss"]), _fmt(r["val_loss"]),
                     *[_fmt(r["loss_parts"].get(p)) for p in parts], _fmt(r["train_score"]), _fmt(r["val_score"]),
                     "n/a" if r["gap"] is None else f"{100 * r['gap']:+.1f}", r["label"] or "n/a"]
            lines.append("| " + " | ".join(cells) + " |")
        stop = table[-1]["stopped"] if table else None
        lines += ["", "`*` best epoch" + (f"; stopped: {stop}" if stop else ""), ""]

    rule_findings = [run_rules(r, min_severity="warning") for r in cand]
    info = run_rules(cand[0], rules=["best_epoch", "early_stopping"], min_severity="info")
    lint: list[Finding] = []
    if cand[0].recipe:
        try:
            lint = lint_recipe(cand[0].recipe, class_counts=cand[0].class_counts,
                               num_examples=cand[0].extra.get("n_train"), baseline=base[0].recipe)
        except (TypeError, ValueError):
            lint = []
    lines += ["## Probable causes", ""]
    causes = _dedupe(rule_findings)
    if not causes and not lint:
        lines += ["No rule fired on the candidate's history and its recipe lints clean."]
    for f, n in causes:
        seeds_txt = f" (in {n} of {len(cand)} seeds; figures of the first)" if len(cand) > 1 and n > 1 else (
            f" (in 1 of {len(cand)} seeds)" if len(cand) > 1 else "")
        lines.append(f"- **{f.rule}** ({f.severity}){seeds_txt}: {f.verdict}")
    for f in lint:
        lines.append(f"- **recipe: {f.rule}** ({f.severity}): {f.verdict}")
    for f in info:
        lines.append(f"- {f.verdict}")
    lines += [""]

    steps: list[str] = []
    for f, _ in causes:
        if f.action and f.action not in steps:
            steps.append(f.action)
    for f in lint:
        if f.action and f.action not in steps:
            steps.append(f.action)
    if primary is not None and primary.verdict == "not distinguishable":
        n_now = min(len(cand), len(base))
        if n_now < 3:
            steps.append(f"run at least 3 seeds per side (now {n_now}) before deciding: `tailtune ablate` or "
                         "`--seed 14`, `--seed 15`; then re-run this post-mortem with every run on each side")
        else:
            steps.append("the recipes perform alike: keep the simpler one (fewer remedies, fewer parameters)")
    elif primary is not None and primary.verdict == "worse" and changes:
        steps.append("revert the recipe changes one at a time (" + ", ".join(f"`{k}`" for k, _, _ in changes[:4])
                     + ") to find which one costs")
    elif primary is not None and primary.verdict == "better":
        steps.append("adopt the candidate; confirm the gain holds on the minority classes above before shipping")
    lines += ["## Next steps", ""]
    lines += [f"{i}. {s}" for i, s in enumerate(steps, 1)] or ["Nothing to change."]
    return "\n".join(lines) + "\n"


def write_postmortem(runs: Sequence, baselines: Sequence, out: str | os.PathLike, *, split: str | None = None) -> Path:
    """:func:`postmortem` written atomically to ``out``."""
    from tailtune.utils.io import atomic_write_text

    return atomic_write_text(out, postmortem(runs, baselines, split=split))
