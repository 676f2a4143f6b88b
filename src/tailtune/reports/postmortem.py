"""Automatic post-mortem: a candidate run (or several seeds) against a baseline, in Markdown.

Sections: verdict (with an interval, see :mod:`tailtune.reports.compare`, and the decision rule it
rests on), metric table with the default and the tuned decision rule of each side, recipe changes,
the epoch tables (each loss against its own start: loss values of different losses are never
compared), probable causes (history rules, recipe lint, reconciled), next steps, alternatives and
lessons (each derived from the figures above, shown only when its evidence is there).

**Which decision rule the verdict rests on.** ``tailtune tune`` writes ``<split>_tuned`` entries to
``eval.json`` (thresholds/biases and temperature fitted on validation). When the metrics come from
the test split, each side is compared with the rule it would be deployed with: its tuned rule when
every run of that side has one, else its default rule; the default-rule comparison is shown next to
it. On the validation split a tuned rule is in-sample (it was fitted there): it is shown, marked,
and the verdict stays on the default rules.

Example:
    >>> text = postmortem(["runs/focal-s13", "runs/focal-s14"], ["runs/ce-s13", "runs/ce-s14"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.diagnostics import Finding, epoch_table, lint_recipe, load_run, run_rules
from tailtune.diagnostics.loss_scale import loss_differences, share_of_start, why_not_comparable
from tailtune.diagnostics.reconcile import reconcile
from tailtune.diagnostics.rundata import RunData, check_same_task, finite_number
from tailtune.errors import RunDirError
from tailtune.reports.compare import Comparison, check_comparable, compare_values, paired_bootstrap

#: recipe fields that differ between any two runs and say nothing about the recipe
IGNORED_RECIPE_KEYS = ("train.seed", "output", "tailtune_version", "name")
#: the split ``tailtune tune`` fits the rule on: tuned figures there are in-sample
TUNING_SPLIT = "validation"

RunLike = "str | os.PathLike | RunData"


def _load(run) -> RunData:
    return run if isinstance(run, RunData) else load_run(run)


def _split(runs: Sequence[RunData]) -> str | None:
    for split in ("test", "validation"):
        if all(isinstance((r.eval or {}).get(split), dict) for r in runs):
            return split
    return None


def metrics_of(run: RunData, split: str | None, rule: str = "default") -> dict[str, Any] | None:
    """``{accuracy, macro_f1, gap, per_class}`` of a run on ``split`` under ``rule`` (``"default"`` or
    ``"tuned"``: ``eval.json`` ``<split>_tuned``, ``None`` when absent); ``split=None``: the best history row."""
    if rule == "tuned":
        rep = (run.eval or {}).get(f"{split}_tuned") if split else None
        if not isinstance(rep, dict):
            return None
    elif split is not None:
        rep = run.eval[split]
    else:
        rep = (run.best_row or {}).get("validation") or {}
    table = epoch_table(run)
    best = next((r for r in table if r["best"]), table[-1] if table else None)
    return {
        "accuracy": finite_number(rep.get("accuracy")),
        "macro_f1": finite_number(rep.get("macro_f1")),
        "gap": best["gap"] if best and rule == "default" else None,
        "per_class": rep.get("per_class") or {},
    }


@dataclass
class Side:
    """One side of the comparison: its runs (seeds) and their metrics under each decision rule."""

    label: str
    runs: list[RunData]
    split: str | None
    default: list[dict] = field(init=False)
    tuned: list[dict | None] = field(init=False)

    def __post_init__(self) -> None:
        self.default = [metrics_of(r, self.split) for r in self.runs]
        self.tuned = [metrics_of(r, self.split, "tuned") for r in self.runs]

    @property
    def n_tuned(self) -> int:
        return sum(t is not None for t in self.tuned)

    @property
    def rule(self) -> str:
        """The rule this side is judged by: ``tuned`` when every run has one on held-out data."""
        return "tuned" if self.n_tuned == len(self.runs) and self.split not in (None, TUNING_SPLIT) else "default"

    def metrics(self, rule: str) -> list[dict | None]:
        return self.tuned if rule == "tuned" else self.default

    def values(self, get: Callable[[dict], float | None], rule: str) -> list[float | None]:
        return [None if m is None else get(m) for m in self.metrics(rule)]

    def mean(self, get: Callable[[dict], float | None], rule: str) -> float | None:
        v = [x for x in self.values(get, rule) if x is not None]
        return statistics.fmean(v) if v else None

    def rule_parts(self) -> str:
        """What the tuned rule of the first tuned run changes, e.g. ``biases + temperature``."""
        for r, t in zip(self.runs, self.tuned):
            if t is not None:
                pp = r.postprocess or {}
                parts = [k for k in ("thresholds", "biases") if _moves(pp.get(k), 0.5 if k == "thresholds" else 0.0)]
                if not parts:
                    return "temperature only: tuning kept the default decisions"
                return " + ".join(parts + (["temperature"] if pp.get("temperature") is not None else []))
        return "none"


def _moves(value, default: float) -> bool:
    """Whether thresholds/biases (a number or nested lists) differ from the default rule's."""
    if value is None:
        return False
    if isinstance(value, (list, tuple)):
        return any(_moves(v, default) for v in value)
    return isinstance(value, (int, float)) and abs(float(value) - default) > 1e-12


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


def _decisions(run: RunData, logits, rule: str):
    from tailtune.evaluation.postprocess import PostProcess

    pp = PostProcess.from_dict(run.postprocess or {}) if rule == "tuned" else PostProcess()
    return pp.decide(logits, run.task)


def _bootstrap(cand: RunData, base: RunData, split: str, rules: tuple[str, str] = ("default", "default")) -> Comparison | None:
    """Paired bootstrap of macro-F1 over the shared test examples, each side under its rule (as eval.json)."""
    import numpy as np

    from tailtune.reports.predictions import macro_f1, prediction_view

    pc, pb = cand.predictions(split), base.predictions(split)
    if pc is None or pb is None or cand.task is None:
        return None
    if pc[1].shape != pb[1].shape or not np.array_equal(pc[1], pb[1]):
        return None
    view = prediction_view(pc[0], pc[1], cand.task, None)
    yt, kind, k = view.y_true, view.kind, len(view.labels)
    # decisions as eval.json scores them: (N,) binary/multiclass, (N, C) multilabel, (N, A) aspects, like y_true
    yc = np.asarray(_decisions(cand, pc[0], rules[0])).reshape(yt.shape)
    yb = np.asarray(_decisions(base, pb[0], rules[1])).reshape(yt.shape)
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


# ------------------------------------------------------------------------------ the comparison
def _f1(m: dict) -> float | None:
    return m["macro_f1"]


@dataclass
class Context:
    """Everything the sections read: both sides, the split, the comparisons and the findings."""

    cand: Side
    base: Side
    split: str | None
    minority: list[str]
    changes: list[tuple[str, Any, Any]]
    primary: Comparison | None = None     # on each side's verdict rule
    default: Comparison | None = None     # on the default rules (== primary when both sides use them)
    causes: list[tuple[Finding, int]] = field(default_factory=list)
    lint_rules: set[str] = field(default_factory=set)    # the causes that come from the recipe lint
    base_rules: set[str] = field(default_factory=set)    # history rules that fired on the baseline

    @property
    def rules(self) -> tuple[str, str]:
        return self.cand.rule, self.base.rule

    @property
    def on_default(self) -> bool:
        return self.rules == ("default", "default")

    @property
    def show_tuned(self) -> bool:
        return bool(self.cand.n_tuned or self.base.n_tuned)


def _compare_sides(ctx: Context, rules: tuple[str, str]) -> Comparison | None:
    c = _cmp(ctx.cand.values(_f1, rules[0]), ctx.base.values(_f1, rules[1]))
    if c is not None and c.low is None and len(ctx.cand.runs) == 1 and len(ctx.base.runs) == 1 and ctx.split:
        c = _bootstrap(ctx.cand.runs[0], ctx.base.runs[0], ctx.split, rules) or c
    return c


def _rule_sentence(ctx: Context) -> str:
    tuned = f"tuned on {TUNING_SPLIT} by `tailtune tune`, scored on {ctx.split}"
    c, b = ctx.rules
    if (c, b) == ("tuned", "tuned"):
        return f"The verdict rests on **each side's tuned decision rule** ({tuned}): each side as it would be deployed."
    if (c, b) == ("default", "tuned"):
        return (f"The verdict rests on **the candidate's default decision rule against the baseline's tuned rule** "
                f"({ctx.base.rule_parts()}, {tuned}): each side as it stands; the candidate has no tuned rule.")
    if (c, b) == ("tuned", "default"):
        return (f"The verdict rests on **the candidate's tuned rule ({ctx.cand.rule_parts()}, {tuned}) against the "
                "baseline's default rule**: the baseline has no tuned rule, so part of the gain may be tuning alone.")
    why = ("neither side has a tuned rule (`tailtune tune RUN` writes one)" if not ctx.show_tuned else
           f"a tuned rule is in-sample on the {ctx.split} split, where it was fitted" if ctx.split == TUNING_SPLIT
           else "not every run of a side has a tuned rule")
    return f"The verdict rests on **the default decision rule of both sides** (argmax; probability >= 0.5): {why}."


def _verdict_section(ctx: Context) -> list[str]:
    lines = ["## Verdict", ""]
    p = ctx.primary
    if p is None:
        return lines + ["**not distinguishable**: macro-F1 is missing on one side.", ""]
    mc, mb = ctx.cand.mean(_f1, ctx.rules[0]), ctx.base.mean(_f1, ctx.rules[1])
    lines += [f"**{p.verdict}**: macro-F1 {mc:.3f} (candidate, {ctx.rules[0]} rule) vs {mb:.3f} (baseline, "
              f"{ctx.rules[1]} rule), {p.describe()}.", "", _rule_sentence(ctx), ""]
    if p.verdict == "not distinguishable":
        lines += ["The interval crosses zero: this difference is within the noise.", ""]
    d = ctx.default
    if not ctx.on_default and d is not None:
        lines += [f"With the default rule on both sides the candidate is **{d.verdict}** ({d.describe()}).", ""]
    return lines


def _metric_rows(ctx: Context) -> list[tuple[str, Callable[[dict], float | None]]]:
    rows: list[tuple[str, Callable[[dict], float | None]]] = [("accuracy", lambda m: m["accuracy"]), ("macro-F1", _f1)]
    for k in ctx.minority:
        rows.append((f"recall {k}", lambda m, k=k: finite_number((m["per_class"].get(k) or {}).get("recall"))))
    rows.append(("train-val gap (best epoch)", lambda m: m["gap"]))
    return rows


def _metrics_section(ctx: Context) -> list[str]:
    if not ctx.show_tuned:
        head = ["| metric | baseline | candidate | delta (points) | 95% interval |", "|---|---|---|---|---|"]
    else:
        mark = " (in-sample)" if ctx.split == TUNING_SPLIT else ""
        head = [f"| metric | baseline default | baseline tuned{mark} | candidate default | candidate tuned{mark} | "
                "Δ default rules | Δ verdict rules | 95% interval (verdict rules) |", "|---|---|---|---|---|---|---|---|"]
    lines = ["## Metrics", ""] + head
    for name, get in _metric_rows(ctx):
        check_comparable(name, ctx.cand.runs[0].recipe, ctx.base.runs[0].recipe)
        bd, cd = ctx.base.values(get, "default"), ctx.cand.values(get, "default")
        dd, iv = _delta(_cmp(cd, bd))
        if not ctx.show_tuned:
            lines.append(f"| {name} | {_mean_sd(bd)} | {_mean_sd(cd)} | {dd} | {iv} |")
            continue
        bt, ct = ctx.base.values(get, "tuned"), ctx.cand.values(get, "tuned")
        dv, ivv = _delta(_cmp(ctx.cand.values(get, ctx.rules[0]), ctx.base.values(get, ctx.rules[1])))
        lines.append(f"| {name} | {_mean_sd(bd)} | {_mean_sd(bt)} | {_mean_sd(cd)} | {_mean_sd(ct)} | {dd} | {dv} | {ivv} |")
    notes = "The gap is train minus validation score: lower is better."
    if ctx.minority:
        notes += f" Minority classes (fewer training examples than the mean class): {', '.join(ctx.minority)}."
    if ctx.show_tuned:
        notes += f" Tuned: eval.json `{ctx.split}_tuned` ({_tuned_note(ctx.cand)}; {_tuned_note(ctx.base)})."
    return lines + ["", notes, ""]


def _tuned_note(side: Side) -> str:
    if not side.n_tuned:
        return f"{side.label}: no tuned rule"
    return f"{side.label}: {side.n_tuned} of {len(side.runs)} run{'s' if len(side.runs) > 1 else ''}, {side.rule_parts()}"


def _changes_section(ctx: Context) -> list[str]:
    lines = ["## Recipe changes", ""]
    if ctx.changes:
        show = lambda v: "–" if v is None else f"`{v!r}`"  # noqa: E731
        lines += ["| field | baseline | candidate |", "|---|---|---|"]
        lines += [f"| `{k}` | {show(b)} | {show(a)} |" for k, b, a in ctx.changes]
    else:
        lines += ["The recipes are identical apart from seed and output." if ctx.cand.runs[0].recipe and ctx.base.runs[0].recipe
                  else "A recipe.yaml is missing; no comparison."]
    return lines + [""]


def _loss_cell(value: float | None, share: float | None) -> str:
    return _fmt(value) if share is None else f"{_fmt(value)} ({share:.0%})"


def _epochs_section(run: RunData, title: str) -> list[str]:
    table = epoch_table(run)
    parts = sorted({p for r in table for p in r["loss_parts"]})
    metric = table[0]["gap_metric"] or "score"
    shares = {key: share_of_start([r[key] for r in table]) for key in ("train_loss", "val_loss")}
    shares.update({p: share_of_start([r["loss_parts"].get(p) for r in table]) for p in parts})
    head = ["epoch", "train loss", "val loss", *parts, f"train {metric}", f"val {metric}", "gap", "trend"]
    lines = [f"## Epochs ({title}: {run.name})", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(table):
        cells = [f"{r['epoch']}" + (" *" if r["best"] else ""), _loss_cell(r["train_loss"], shares["train_loss"][i]),
                 _loss_cell(r["val_loss"], shares["val_loss"][i]),
                 *[_loss_cell(r["loss_parts"].get(p), shares[p][i]) for p in parts], _fmt(r["train_score"]),
                 _fmt(r["val_score"]), "n/a" if r["gap"] is None else f"{100 * r['gap']:+.1f}", r["label"] or "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    stop = table[-1]["stopped"] if table else None
    return lines + ["", "`*` best epoch; (%) each loss as a share of its own epoch 1" + (f"; stopped: {stop}" if stop else ""), ""]


def _losses_note(ctx: Context) -> list[str]:
    why = why_not_comparable(ctx.cand.runs[0].recipe, ctx.base.runs[0].recipe)
    return [why, ""] if why else ["Both runs use the same loss; still, the verdict rests on the metrics, not on loss values.", ""]


def _lint(run: RunData, baseline: RunData) -> list[Finding]:
    from tailtune.diagnostics.stacking import stacked_corrections

    out: list[Finding] = []
    if run.recipe:
        try:
            out = lint_recipe(run.recipe, class_counts=run.class_counts, num_examples=run.extra.get("n_train"),
                              baseline=baseline.recipe)
        except (TypeError, ValueError):
            out = []
    return out + [f for f in [stacked_corrections(run.class_weights, run.postprocess, kind=run.kind, labels=run.labels)]
                  if f is not None and f.rule not in {x.rule for x in out}]


def _seed_count(f: Finding, seen_in: dict[str, int]) -> int:
    """In how many seeds a (possibly reconciled) finding fired: the most of its parts."""
    if f.verdict in seen_in:
        return seen_in[f.verdict]
    return max((seen_in.get(x["verdict"], 1) for x in f.figures.get("findings", [])), default=1)


def _causes_section(ctx: Context) -> list[str]:
    cand = ctx.cand.runs
    per_run = [run_rules(r, min_severity="warning") for r in cand]
    deduped = _dedupe(per_run)
    lint = [f for f in _lint(cand[0], ctx.base.runs[0]) if f.rule not in {g.rule for g, _ in deduped}]
    seen_in = {f.verdict: n for f, n in deduped}
    merged = reconcile([f for f, _ in deduped] + lint, run=cand[0])
    ctx.causes = [(f, _seed_count(f, seen_in)) for f in merged]
    ctx.lint_rules = {f.rule for f in lint}
    ctx.base_rules = {f.rule for f in run_rules(ctx.base.runs[0], min_severity="warning")}
    info = run_rules(cand[0], rules=["best_epoch", "early_stopping"], min_severity="info")
    lines = ["## Probable causes", ""]
    if not ctx.causes:
        lines += ["No rule fired on the candidate's history and its recipe lints clean."]
    for f, n in ctx.causes:
        seeds = (f" (in {n} of {len(cand)} seeds; figures of the first)" if len(cand) > 1 and n > 1 else
                 f" (in 1 of {len(cand)} seeds)" if len(cand) > 1 else "")
        where = "recipe: " if f.rule in ctx.lint_rules else ""
        lines.append(f"- **{where}{f.rule}** ({f.severity}){seeds}: {f.verdict}")
    lines += [f"- {f.verdict}" for f in info]
    return lines + [""]


def postmortem(runs: Sequence, baselines: Sequence, *, split: str | None = None) -> str:
    """Markdown post-mortem of ``runs`` (one per seed) against ``baselines`` (one per seed).

    Args:
        runs: candidate run directories (or :class:`RunData`); several = several seeds.
        baselines: baseline run directories.
        split: ``"test"`` or ``"validation"`` (default: test when every run has it in eval.json).

    Raises:
        RunDirError: a run directory is missing or unreadable; ``split`` missing from an eval.json.
    """
    from tailtune.reports.postmortem_advice import alternatives_section, lessons_section, next_steps_section

    if not runs or not baselines:
        raise RunDirError("postmortem needs at least one run and one --baseline run")
    cand, base = [_load(r) for r in runs], [_load(r) for r in baselines]
    check_same_task(cand, base, command="a post-mortem")
    everything = cand + base
    if split is None:
        split = _split(everything)
    elif not all(isinstance((r.eval or {}).get(split), dict) for r in everything):
        missing = [str(r.path) for r in everything if not isinstance((r.eval or {}).get(split), dict)]
        raise RunDirError(f"--split {split}: not in eval.json of {', '.join(missing)}; use validation or re-run evaluate")
    ctx = Context(Side("candidate", cand, split), Side("baseline", base, split), split,
                  minority_classes(base + cand), recipe_changes(cand[0].recipe, base[0].recipe))
    ctx.primary = _compare_sides(ctx, ctx.rules)
    ctx.default = ctx.primary if ctx.on_default else _compare_sides(ctx, ("default", "default"))
    where = f"{split} split (eval.json)" if split else "validation at the best epoch (history.jsonl; no eval.json)"
    seeds = lambda rs: ", ".join(f"{r.name} (seed {r.seed})" if r.seed is not None else r.name for r in rs)  # noqa: E731
    lines = [f"# Post-mortem: {', '.join(r.name for r in cand)} vs {', '.join(r.name for r in base)}", "",
             f"- candidate: {seeds(cand)}", f"- baseline: {seeds(base)}", f"- metrics from the {where}", ""]
    lines += _verdict_section(ctx) + _metrics_section(ctx) + _changes_section(ctx)
    lines += ["## Loss values", ""] + _losses_note(ctx)
    lines += _epochs_section(cand[0], "candidate") + _epochs_section(base[0], "baseline")
    lines += _causes_section(ctx) + next_steps_section(ctx) + alternatives_section(ctx) + lessons_section(ctx)
    return "\n".join(lines) + "\n"


def write_postmortem(runs: Sequence, baselines: Sequence, out: str | os.PathLike, *, split: str | None = None) -> Path:
    """:func:`postmortem` written atomically to ``out``."""
    from tailtune.utils.io import atomic_write_text

    return atomic_write_text(out, postmortem(runs, baselines, split=split))


__all__ = ["Context", "Side", "loss_differences", "metrics_of", "minority_classes", "postmortem", "recipe_changes",
           "write_postmortem"]
