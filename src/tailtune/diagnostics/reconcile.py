"""Reconcile findings whose advice pulls one setting in opposite directions into one recommendation.

Every finding that changes a setting declares it (:class:`~tailtune.diagnostics.findings.Knob`: the
setting and the direction). Two findings *conflict* when one moves a knob up and the other moves the
same knob down (whatever the classes: one weighting scheme sets every class's weight, so "raise
these" next to "these are too high" reads as a contradiction to the user). :func:`reconcile` replaces
every group of conflicting findings by one ``reconciled`` finding that keeps both verdicts (the
facts) and gives one action:

1. a **resolution** registered for the knob (:data:`RESOLUTIONS`) when a third move answers both,
   e.g. class weights up for some classes and down for others -> tune the decision thresholds first,
   then look at the weights; epochs up (the metric still improves) and down (the loss or the gap
   worsens) -> the early-stopping metric decides;
2. otherwise the finding whose evidence is closest to the goal wins (:data:`PRECEDENCE`: per-class
   metrics on held-out data, then the score gap and the stopping metric, then loss shapes, then the
   recipe alone; the more severe one on a tie), and the others are to be re-checked after its change.

``error`` findings are never merged: they say the recipe is wrong (a remedy applied twice), and
their fix comes first whatever else is advised.

Example:
    >>> from tailtune.data.kinds import known_task_kind
from tailtune.diagnostics.findings import Finding, Knob
    >>> up = Finding("best_epoch", "info", {}, "best at the last epoch", "raise train.epochs", (Knob("train.epochs", "up"),))
    >>> down = Finding("val_loss_rising", "warning", {}, "validation loss rises", "stop near epoch 3",
    ...                (Knob("train.epochs", "down"),))
    >>> [(f.rule, f.severity) for f in reconcile([up, down])]
    [('reconciled', 'warning')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tailtune.data.kinds import known_task_kind
from tailtune.diagnostics.findings import SEVERITIES, Finding, Knob, sort_findings
from tailtune.diagnostics.rundata import val_metric
from tailtune.diagnostics.series import STALL_EPOCHS, stalled

#: tiers of evidence, most trusted first; a conflict no resolution covers follows the finding of the
#: earliest tier (see the module doc). Rules not listed come last.
PRECEDENCE_TIERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("per-class metrics on held-out data and the tuned decision rule",
     ("weights_with_thresholds", "upweighted_low_precision", "rare_zero_recall")),
    ("the train/validation score gap and the early-stopping metric",
     ("train_val_gap", "best_epoch", "val_test_drop", "early_stopping")),
    ("the shape of the loss curves",
     ("val_loss_rising", "loss_saturated", "loss_oscillating", "composite_loss")),
    ("the recipe alone, before any evidence",
     ("double_weighting", "weights_over_50x", "gamma_weights_mild", "reversed_focal", "focal_lr_unchanged",
      "small_batch_no_accum", "smoothing_with_confidence")),
)
PRECEDENCE: tuple[str, ...] = tuple(r for _, rules in PRECEDENCE_TIERS for r in rules)

#: knobs of lint checks whose findings do not declare them (``diagnostics/lint.py``)
LINT_KNOBS: dict[str, Callable[[Finding], tuple[Knob, ...]]] = {
    "double_weighting": lambda f: (Knob("class_weights", "down"),),
    "weights_over_50x": lambda f: (Knob("class_weights", "down"),),
    "gamma_weights_mild": lambda f: (Knob("focal.gamma", "down"),),
    "reversed_focal": lambda f: (Knob("focal.gamma", "up"),) if "gamma" in f.figures else (),
}


def knobs_of(finding: Finding) -> tuple[Knob, ...]:
    """The knobs a finding moves: its own declaration, else :data:`LINT_KNOBS`."""
    if finding.knobs:
        return finding.knobs
    fn = LINT_KNOBS.get(finding.rule)
    return fn(finding) if fn else ()


def _rank(f: Finding) -> tuple[int, int]:
    tier = PRECEDENCE.index(f.rule) if f.rule in PRECEDENCE else len(PRECEDENCE)
    return tier, -SEVERITIES.index(f.severity)


def _tier_name(rule: str) -> str:
    return next((name for name, rules in PRECEDENCE_TIERS if rule in rules), "no stated tier")


def _groups(findings: Sequence[Finding]) -> list[list[int]]:
    """Connected groups of findings linked by opposing knobs (indices into ``findings``)."""
    n = len(findings)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    knobs = [knobs_of(f) if f.severity != "error" else () for f in findings]
    for i in range(n):
        for j in range(i + 1, n):
            if any(a.opposes(b) for a in knobs[i] for b in knobs[j]):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _conflicting_knobs(group: Sequence[Finding]) -> list[str]:
    names = []
    for i, f in enumerate(group):
        for g in group[i + 1:]:
            for a in knobs_of(f):
                if any(a.opposes(b) for b in knobs_of(g)) and a.name not in names:
                    names.append(a.name)
    return names


def _targets(group: Sequence[Finding], knob: str, direction: str) -> list[str]:
    out: list[str] = []
    for f in group:
        for k in knobs_of(f):
            if k.name == knob and k.direction == direction:
                out += [t for t in k.targets if t not in out]
    return out


# ------------------------------------------------------------------------------ resolutions
Resolution = Callable[[Sequence[Finding], Any], tuple[str, tuple[Knob, ...]]]
RESOLUTIONS: dict[str, Resolution] = {}


def resolution(knob: str) -> Callable[[Resolution], Resolution]:
    """Register the resolution of conflicts on ``knob``: ``fn(findings, run) -> (action, knobs)``."""

    def deco(fn: Resolution) -> Resolution:
        RESOLUTIONS[knob] = fn
        return fn

    return deco


def _names(xs: Sequence[str], n: int = 6) -> str:
    return ", ".join(xs[:n]) + (f" and {len(xs) - n} more" if len(xs) > n else "")


@resolution("class_weights")
def _class_weights(group: Sequence[Finding], run) -> tuple[str, tuple[Knob, ...]]:
    up, down = _targets(group, "class_weights", "up"), _targets(group, "class_weights", "down")
    kind = known_task_kind(getattr(run, "kind", None))
    sigmoid = kind is not None and kind.sigmoid
    rule_word = "per-label thresholds" if sigmoid else "per-class decision biases"
    pp = getattr(run, "postprocess", None) or {}
    tuned = bool(pp.get("thresholds") is not None or pp.get("biases") is not None)
    raise_txt = cap_txt = ""
    for f in group:
        classes = f.figures.get("classes") if isinstance(f.figures.get("classes"), dict) else {}
        if f.rule == "rare_zero_recall":
            hints = [f"weighting.overrides.{k}: {2 * v['weight']:.3g}" for k, v in classes.items() if v.get("weight")]
            raise_txt = f" ({_names(hints, 3)})" if hints else ""
        if f.rule == "upweighted_low_precision" and f.figures.get("suggested_cap") is not None:
            cap_txt = f" (weighting.cap {f.figures['suggested_cap']:g})"
    who = (f"the recall of {_names(up)}" if up else "") + (" and " if up and down else "") + (
        f"the precision of {_names(down)}" if down else "")
    first = ("1. the run already has a tuned decision rule (postprocess.json): judge these classes on it first "
             "(per-class recall and precision in eval.json `validation_tuned`), not on the default rule the history "
             "logs." if tuned else
             f"1. tune the decision rule first: `tailtune tune RUN` sets {rule_word} on validation, which moves "
             f"{who or 'these classes'} without retraining; both findings describe decisions sitting in the wrong "
             "place for these classes, which the weights move only indirectly.")
    second = (f" 2. Then look at the weights: raise them only for classes still never recalled under the tuned rule"
              f"{raise_txt}, cap them only if classes are still over-predicted{cap_txt}; not both in one step.")
    return first + second, (Knob("thresholds", "up"),)


#: what each rule that shortens training observed (for the train.epochs resolution)
_SYMPTOM = {"val_loss_rising": "a rising validation loss", "train_val_gap": "a train/validation gap that grows",
            "loss_saturated": "a classification loss at its floor"}


@resolution("train.epochs")
def _epochs(group: Sequence[Finding], run) -> tuple[str, tuple[Knob, ...]]:
    metric = getattr(run, "stop_metric", None) or "macro_f1"
    history = getattr(run, "history", None) or []
    values = [v for v in (val_metric(r, metric) for r in history) if v is not None]
    down = [f.rule for f in group if any(k.name == "train.epochs" and k.direction == "down" for k in knobs_of(f))]
    if stalled(values, higher_is_better=not metric.endswith("loss")):
        return (
            f"the early-stopping metric decides: validation {metric} has gained next to nothing over the last "
            f"{STALL_EPOCHS} epochs, so its best at the last epoch is noise, not a trend; more epochs would add "
            f"what {', '.join(down)} saw: stop earlier (early_stopping.patience 2) and regularise (model.dropout 0.2, "
            "optim.weight_decay 0.05)"
        ), (Knob("train.epochs", "down"), Knob("regularisation", "up"))
    return (
        f"the early-stopping metric decides: validation {metric} is still improving, so train longer with early "
        f"stopping on {metric} (train.epochs x1.5, early_stopping.patience 2), which keeps the best epoch whatever "
        f"comes after it; what {', '.join(down)} saw ({', '.join(_SYMPTOM.get(r, r) for r in down)}) is growing "
        "over-confidence and memorisation: calibrate with temperature scaling (`tailtune tune`) and regularise "
        "(model.dropout 0.2, optim.weight_decay 0.05) instead of stopping before the metric peaks"
    ), (Knob("train.epochs", "up"), Knob("regularisation", "up"))


def _merge(group: Sequence[Finding], run) -> Finding:
    knobs = _conflicting_knobs(group)
    ordered = sorted(group, key=_rank)
    severity = max((f.severity for f in group), key=SEVERITIES.index)
    says = "; ".join(
        f"{f.rule} moves {', '.join(f'{k.name} {k.direction}' for k in knobs_of(f) if k.name in knobs)}: {f.verdict}"
        for f in ordered
    )
    res = next((k for k in knobs if k in RESOLUTIONS), None)
    if res is not None:
        action, new_knobs = RESOLUTIONS[res](ordered, run)
        how = f"resolution for {res}"
    else:
        winner, rest = ordered[0], ordered[1:]
        action = (f"{winner.action} (following {winner.rule}: its evidence, {_tier_name(winner.rule)}, ranks first); "
                  f"then re-run the diagnosis: the advice of {', '.join(f.rule for f in rest)} applies only if it "
                  "still fires")
        new_knobs, how = winner.knobs, f"precedence: {winner.rule}"
    figures = {
        "knobs": knobs,
        "resolved_by": how,
        "findings": [{"rule": f.rule, "severity": f.severity, "verdict": f.verdict, "action": f.action,
                      "knobs": [f"{k.name} {k.direction}" for k in knobs_of(f)], "figures": f.figures} for f in ordered],
    }
    return Finding("reconciled", severity, figures, f"conflicting advice on {', '.join(knobs)}: {says}", action, new_knobs)


def reconcile(findings: Sequence[Finding], *, run=None) -> list[Finding]:
    """Replace each group of findings that move one knob in opposite directions by one ``reconciled``
    finding (see the module doc); other findings are returned unchanged, most serious first.

    Args:
        findings: findings of rules and/or lint checks.
        run: the :class:`~tailtune.diagnostics.rundata.RunData` they came from (resolutions read its
            task kind, its tuned decision rule and its early-stopping metric), or ``None``.
    """
    findings = list(findings)
    merged_idx: set[int] = set()
    merged: list[Finding] = []
    for group in _groups(findings):
        merged_idx.update(group)
        merged.append(_merge([findings[i] for i in group], run))
    return sort_findings([f for i, f in enumerate(findings) if i not in merged_idx] + merged)
