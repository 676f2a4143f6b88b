"""The closing sections of a post-mortem: next steps, alternatives and lessons.

Each item is derived from the comparison (:class:`tailtune.reports.postmortem.Context`) and shown
only when its evidence is there, with the figures it rests on:

* **Next steps** — the actions of the probable causes, then what the verdict calls for; when the
  tuned baseline matches or beats the candidate: keep it, ensemble its seeds; when the baseline was
  never tuned and the candidate looks better: tune the baseline before adopting.
* **Alternatives** — other routes to the goal: tuning the baseline's decision rule (its measured
  gain on held-out data), ensembling the baseline's seeds (their spread), a per-class rule for the
  minority classes, one change at a time.
* **Lessons** — what the evidence teaches beyond this pair of runs: how much of the gain was a shift
  of decision boundaries, why the loss values were not compared, what one run per side can show,
  how tuning gains moved from validation to test, which rules fired on the candidate only.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from tailtune.diagnostics.loss_scale import headroom_reason, loss_differences
from tailtune.diagnostics.rundata import finite_number

if TYPE_CHECKING:  # pragma: no cover
    from tailtune.reports.postmortem import Context, Side


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} points"


def _f1(m: dict) -> float | None:
    return m["macro_f1"]


def _where(side: Side) -> str:
    return " ".join(str(r.path) if r.path is not None else r.name for r in side.runs)


def _tuning_gain(side: Side, split: str | None) -> float | None:
    """Mean macro-F1 gain of the tuned rule over the default one on ``split`` (runs with both)."""
    gains = [t["macro_f1"] - d["macro_f1"] for d, t in zip(side.default, side.tuned)
             if t is not None and d is not None and t["macro_f1"] is not None and d["macro_f1"] is not None]
    return statistics.fmean(gains) if gains else None


def _baseline_holds(ctx: Context) -> bool:
    """The tuned baseline matches (within the interval) or beats the candidate."""
    p = ctx.primary
    if ctx.rules[1] != "tuned" or p is None:
        return False
    return p.verdict == "worse" or p.delta <= 0 or (p.verdict == "not distinguishable" and p.low is not None)


# ------------------------------------------------------------------------------ next steps
def _verdict_steps(ctx: Context) -> list[str]:
    p, steps = ctx.primary, []
    if p is None:
        return steps
    base_cmd = f"`tailtune tune {_where(ctx.base)}`" if len(ctx.base.runs) == 1 else "`tailtune tune` on each baseline run"
    if _baseline_holds(ctx):
        steps.append(f"keep the baseline with its tuned decision rule: the candidate does not beat it ({p.verdict}, "
                     f"{p.describe()}), and the baseline needs no recipe change")
        if len(ctx.base.runs) >= 2:
            steps.append(f"ensemble the {len(ctx.base.runs)} baseline seeds (`tailtune ensemble {_where(ctx.base)} --out "
                         "ENSEMBLE`, which tunes the ensemble's own rule on validation) and compare it in a post-mortem")
    if ctx.rules == ("default", "tuned"):
        steps.append(f"tune the candidate too (`tailtune tune {_where(ctx.cand)}`) and re-run this post-mortem: the "
                     "comparison is then tuned rule against tuned rule")
    if ctx.rules[1] == "default" and ctx.base.n_tuned == 0 and p.verdict == "better":
        steps.append(f"tune the baseline before adopting ({base_cmd}, then re-run this post-mortem): a loss or weighting "
                     "change mostly moves decision boundaries, which tuning gives the baseline without retraining")
    if p.verdict == "not distinguishable":
        n_now = min(len(ctx.cand.runs), len(ctx.base.runs))
        if n_now < 3:
            steps.append(f"run at least 3 seeds per side (now {n_now}) before deciding: `tailtune ablate` or "
                         "`--seed 14`, `--seed 15`; then re-run this post-mortem with every run on each side")
        else:
            steps.append("the recipes perform alike: keep the simpler one (fewer remedies, fewer parameters)")
    elif p.verdict == "worse" and ctx.changes:
        steps.append("revert the recipe changes one at a time (" + ", ".join(f"`{k}`" for k, _, _ in ctx.changes[:4])
                     + ") to find which one costs")
    elif p.verdict == "better":
        steps.append("adopt the candidate; confirm the gain holds on the minority classes above before shipping")
    return steps


def next_steps_section(ctx: Context) -> list[str]:
    steps: list[str] = []
    for f, _ in ctx.causes:
        if f.action and f.action not in steps:
            steps.append(f.action)
    steps += [s for s in _verdict_steps(ctx) if s not in steps]
    return ["## Next steps", ""] + ([f"{i}. {s}" for i, s in enumerate(steps, 1)] or ["Nothing to change."]) + [""]


# ------------------------------------------------------------------------------ alternatives
def _alt_tuning(ctx: Context) -> str | None:
    split, held_out = ctx.split, ctx.split not in (None, "validation")
    base_gain, cand_gain = _tuning_gain(ctx.base, split), _tuning_gain(ctx.cand, split)
    d = ctx.default
    if base_gain is not None and held_out:
        against = f", against the candidate's {_pts(d.delta)} over the untuned baseline" if d is not None else ""
        verdict = (f": {base_gain / d.delta:.0%} of what the recipe change bought, without retraining"
                   if d is not None and d.delta > 0 and base_gain > 0 else "")
        return (f"**Tune the baseline's decision rule** (measured): `tailtune tune` alone moved the baseline "
                f"{_pts(base_gain)} on {split} ({ctx.base.rule_parts()}){against}{verdict}.")
    if cand_gain is not None and held_out:
        return (f"**Tune the baseline's decision rule** (not measured on it): on the candidate, tuning moved macro-F1 "
                f"{_pts(cand_gain)} on {split} ({ctx.cand.rule_parts()}); `tailtune tune {_where(ctx.base)}` measures "
                "it for the baseline in seconds, without retraining.")
    if not ctx.show_tuned:
        return ("**Tune the decision rule** (not measured): no run here has a tuned rule; `tailtune tune RUN` fits "
                "thresholds or biases on validation without retraining and scores them on test.")
    return None


def _alt_ensemble(ctx: Context) -> str | None:
    vals = [v for v in ctx.base.values(_f1, ctx.rules[1]) if v is not None]
    if len(vals) < 2:
        return None
    return (f"**Ensemble the baseline's {len(vals)} seeds** (not measured here): their macro-F1 spans {min(vals):.3f} to "
            f"{max(vals):.3f} (sd {statistics.stdev(vals):.3f}); averaging their probabilities removes part of that "
            f"seed noise: `tailtune ensemble {_where(ctx.base)} --out ENSEMBLE`.")


def _alt_minority(ctx: Context) -> str | None:
    if not ctx.minority or ctx.primary is None or ctx.primary.verdict == "better":
        return None
    k = ctx.minority[0]
    get = lambda m: finite_number((m["per_class"].get(k) or {}).get("recall"))  # noqa: E731
    cd, bd = ctx.cand.mean(get, "default"), ctx.base.mean(get, "default")
    if cd is None or bd is None or cd - bd < 0.02:
        return None
    bt = ctx.base.mean(get, "tuned") if ctx.base.n_tuned else None
    tuned = f"; the baseline's tuned rule already gives it {bt:.3f}" if bt is not None else ""
    return (f"**A decision rule aimed at the minority classes**: the candidate raised the recall of {k} (the rarest "
            f"class) from {bd:.3f} to {cd:.3f} (default rules), yet its macro-F1 is not better than the baseline's "
            f"({ctx.rules[1]} rule){tuned}; if that recall is the goal, a per-class threshold or bias on the baseline "
            "targets it directly (`tailtune tune`).")


def _alt_one_change(ctx: Context) -> str | None:
    if len(ctx.changes) < 2 or ctx.primary is None or ctx.primary.verdict == "better":
        return None
    names = ", ".join(f"`{k}`" for k, _, _ in ctx.changes[:5])
    return (f"**One change at a time**: the candidate changed {len(ctx.changes)} recipe fields ({names}); some may "
            "help and others cost. `tailtune ablate` runs each alone over seeds.")


def alternatives_section(ctx: Context) -> list[str]:
    items = [x for x in (_alt_tuning(ctx), _alt_ensemble(ctx), _alt_minority(ctx), _alt_one_change(ctx)) if x]
    body = [f"- {x}" for x in items] or ["- None: the figures above point to no cheaper route than the candidate."]
    return ["## Alternatives", ""] + body + [""]


# ------------------------------------------------------------------------------ lessons
def _lesson_boundaries(ctx: Context) -> str | None:
    p, d = ctx.primary, ctx.default
    if ctx.rules[1] != "tuned" or p is None or d is None or ctx.on_default:
        return None
    if d.delta > 0 and p.delta < d.delta:
        share = min(1.0, (d.delta - p.delta) / d.delta)
        return (f"Against the untuned baseline the candidate gained {_pts(d.delta)}; against the tuned baseline "
                f"{_pts(p.delta)}: {share:.0%} of the apparent gain was a shift of decision boundaries, which tuning "
                "gives the baseline without retraining. Compare a loss or weighting change against a tuned baseline first.")
    if p.delta >= d.delta:
        return (f"The candidate's gain holds against the tuned baseline ({_pts(p.delta)}, vs {_pts(d.delta)} untuned): "
                "it is not a threshold effect.")
    return None


def _lesson_losses(ctx: Context) -> str | None:
    cand, base = ctx.cand.runs[0].recipe, ctx.base.runs[0].recipe
    if not cand or not base or not loss_differences(cand, base):
        return None
    return (f"Loss values are not headroom: {headroom_reason(cand, base)}. So this post-mortem compares metrics, and "
            "reads each run's loss only against its own start (were both still learning when they stopped?).")


def _lesson_seeds(ctx: Context) -> str | None:
    if len(ctx.cand.runs) > 1 or len(ctx.base.runs) > 1 or ctx.primary is None:
        return None
    if "bootstrap" in ctx.primary.method:
        return ("One run per side: the interval covers the sampling of the test examples only, not the seed-to-seed "
                "spread, which on small fine-tunes is often as large as the effects compared; 3 seeds per side settle it.")
    return "One run per side without shared test predictions: no interval at all; 3 seeds per side give one."


def _lesson_transfer(ctx: Context) -> str | None:
    out = []
    for side in (ctx.base, ctx.cand):
        r = side.runs[0]
        ev = r.eval or {}
        pairs = [(s, ev.get(s), ev.get(f"{s}_tuned")) for s in ("validation", "test")]
        gains = {s: finite_number(t.get("macro_f1")) - finite_number(d.get("macro_f1")) for s, d, t in pairs
                 if isinstance(d, dict) and isinstance(t, dict) and finite_number(t.get("macro_f1")) is not None
                 and finite_number(d.get("macro_f1")) is not None}
        if len(gains) == 2 and abs(gains["validation"] - gains["test"]) >= 0.01:
            out.append(f"the {side.label}'s tuning gained {_pts(gains['validation'])} on validation (where it was fitted) "
                       f"and {_pts(gains['test'])} on test")
    if not out:
        return None
    return "Tuning gains shrink off the split they were fitted on: " + "; ".join(out) + ". Read them on held-out data only."


def _lesson_rules(ctx: Context) -> str | None:
    only = [f for f, _ in ctx.causes if f.rule not in ctx.base_rules | ctx.lint_rules | {"reconciled"} and f.is_problem]
    if not only:
        return None
    first = only[0]
    return (f"The candidate's training went differently, not only its score: {', '.join(sorted({f.rule for f in only}))} "
            f"fired on the candidate and not on the baseline (e.g. {first.rule}: {first.verdict.split(':')[0]}).")


def lessons_section(ctx: Context) -> list[str]:
    items = [x for x in (_lesson_boundaries(ctx), _lesson_losses(ctx), _lesson_seeds(ctx), _lesson_transfer(ctx),
                         _lesson_rules(ctx)) if x]
    body = [f"- {x}" for x in items] or ["- Nothing beyond the verdict: the runs differ within the noise the figures allow."]
    return ["## Lessons", ""] + body + [""]
