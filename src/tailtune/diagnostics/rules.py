"""Rules over a run's ``history.jsonl`` (and ``eval.json``): what happened, with figures, and what to change.

Each rule is a small function ``rule(run: RunData) -> list[Finding]`` registered in :data:`RULES`;
:func:`run_rules` runs them all. A rule returns nothing when it has nothing to say; on a healthy
history every rule is silent at ``warning`` level (``ok``/``info`` findings — "both loss parts
falling", "best epoch 4" — appear only when asked for with ``min_severity``). Every threshold is a
module constant documented in docs/diagnostics.md.

Example:
    >>> from tailtune.diagnostics.rundata import run_from_history
    >>> rows = [{"epoch": e, "train": {"loss": l}, "validation": {"loss": v, "macro_f1": 0.5}}
    ...         for e, (l, v) in enumerate([(1.0, 0.9), (0.7, 0.8), (0.5, 0.85), (0.35, 0.95), (0.25, 1.1)], 1)]
    >>> [f.rule for f in run_rules(run_from_history(rows))]
    ['val_loss_rising']

Relations:
    :mod:`tailtune.diagnostics.series` defines falling / flat / rising / oscillating;
    :func:`tailtune.diagnostics.lint.lint_recipe` checks a recipe before training;
    :mod:`tailtune.reports` shows these findings in ``report.html`` and the post-mortem.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable

from tailtune.diagnostics.findings import Finding, Knob, severity_rank, sort_findings
from tailtune.diagnostics.reconcile import reconcile as merge
from tailtune.diagnostics.rundata import RunData, finite_number, run_from_history, val_metric
from tailtune.diagnostics.series import (
    FLAT_SLOPE,
    STALL_EPOCHS,
    WINDOW,
    drop_from_start,
    is_oscillating,
    relative_slope,
    shape,
    stalled,
)
from tailtune.diagnostics.stacking import UPWEIGHT_FACTOR, stacked_corrections

# -------------------------------------------------------------------------------- thresholds
#: train-minus-validation score gap (macro-F1 points as fractions) that bounds each trend label
GAP_INVERTED = -0.02
GAP_GROWING_MIN = 0.02
GAP_GROWING_STEP = 0.01
GAP_OVERFITTING = 0.10
GAP_SEVERE = 0.20
GAP_CRITICAL = 0.30
#: trend labels, mildest first
GAP_LABELS = ("normal", "inverted", "growing", "overfitting", "severe", "critical")
#: a validation-to-test drop larger than this (2 points) is reported
VAL_TEST_DROP = 0.02
#: a classification loss that has shed at least this share of its first epoch's value is near its floor
SATURATION_DROP = 0.85
#: ... and, in a composite loss, saturated early when its remaining share of its start is at most this
#: share of the contrastive part's remaining share (8% of its start against 79%: 0.1)
SAT_VS_CONTRASTIVE = 1 / 6
#: the classification part lags when its recent pace (relative slope) is under this share of the
#: contrastive part's
LAG_RATIO = 1 / 3
#: share of the contrastive part's weight moved back to the classification part when it lags
LAG_MOVE_SHARE = 0.5
#: a class is rare when its training share is below this, or its count <= RARE_RATIO_TO_MAX x the largest
RARE_SHARE = 0.05
RARE_RATIO_TO_MAX = 0.2
#: precision under this on an up-weighted class means its weight is too high
LOW_PRECISION = 0.5
#: share of the total loss weight moved to the contrastive part when it plateaus
WEIGHT_SHIFT = 0.1
#: inverted gap on at least this share of epochs (and >= 3 epochs) is reported
INVERTED_SHARE = 0.5
#: "keeps widening" needs the gap to have risen by this much over the last 3 epochs (2 points)
GAP_WIDENING = 0.02

Rule = Callable[[RunData], list[Finding]]
RULES: dict[str, Rule] = {}


def register(name: str) -> Callable[[Rule], Rule]:
    """Decorator adding a rule to :data:`RULES` under ``name`` (the ``rule`` of its findings)."""

    def deco(fn: Rule) -> Rule:
        if name in RULES:
            raise ValueError(f"rule {name!r} is already registered")
        RULES[name] = fn
        fn.rule_name = name  # type: ignore[attr-defined]
        return fn

    return deco


def run_rules(
    run: RunData | list[dict],
    *,
    rules: Iterable[str] | None = None,
    min_severity: str = "warning",
    reconcile: bool = True,
) -> list[Finding]:
    """Run every registered rule (or those named) and return findings at ``min_severity`` or above.

    Findings that move one setting in opposite directions are merged into one ``reconciled``
    finding first (:func:`tailtune.diagnostics.reconcile.reconcile`), at the severity of the most
    serious of them.

    Args:
        run: a :class:`RunData` (see :func:`tailtune.diagnostics.load_run`) or bare history rows.
        rules: names from :data:`RULES` (default: all).
        min_severity: ``"ok"`` returns everything, ``"warning"`` (default) only problems.
        reconcile: merge conflicting advice (default); ``False`` returns each rule's own finding.

    Returns:
        findings, most serious first.
    """
    if isinstance(run, list):
        run = run_from_history(run)
    names = list(RULES) if rules is None else list(rules)
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise ValueError(f"rules={unknown!r}: unknown; valid names: {sorted(RULES)}")
    floor = severity_rank(min_severity)
    out: list[Finding] = []
    for name in names:
        out.extend(RULES[name](run))
    if reconcile:
        out = merge(out, run=run)
    return sort_findings([f for f in out if severity_rank(f.severity) >= floor])


# -------------------------------------------------------------------------------- helpers
def _series(history: list[dict], split: str, key: str) -> list[float | None]:
    return [finite_number((row.get(split) or {}).get(key)) for row in history]


def _part_series(history: list[dict], part: str) -> list[float | None]:
    return [finite_number(((row.get("train") or {}).get("loss_parts") or {}).get(part)) for row in history]


def _present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _epochs(history: list[dict]) -> list:
    return [row.get("epoch", i + 1) for i, row in enumerate(history)]


def _r(x: float | None, n: int = 4) -> float | None:
    return None if x is None else round(float(x), n)


def gap_metric(history: list[dict]) -> str | None:
    """The score used for the gap: ``macro_f1``, else ``accuracy``, else ``micro_f1`` (first present)."""
    for key in ("macro_f1", "accuracy", "micro_f1"):
        if any(finite_number((r.get("gap") or {}).get(key)) is not None for r in history):
            return key
        if any(finite_number((r.get("train") or {}).get(key)) is not None and val_metric(r, key) is not None for r in history):
            return key
    return None


def _gap_value(row: dict, key: str) -> float | None:
    g = finite_number((row.get("gap") or {}).get(key))
    if g is not None:
        return g
    t, v = finite_number((row.get("train") or {}).get(key)), val_metric(row, key)
    return None if t is None or v is None else t - v


def gap_label(gap: float | None, previous: float | None = None) -> str | None:
    """Trend label of one epoch's train-minus-validation score gap (see docs/diagnostics.md).

    ======================= ===============================================================
    label                   gap g (fraction; 0.05 = 5 points)
    ======================= ===============================================================
    inverted                g < -0.02 (validation better than train)
    normal                  -0.02 <= g <= 0.10 and not growing
    growing                 0.02 < g <= 0.10 and g rose by >= 0.01 since the previous epoch
    overfitting             0.10 < g <= 0.20
    severe                  0.20 < g <= 0.30
    critical                g > 0.30
    ======================= ===============================================================

    Example:
        >>> gap_label(0.01), gap_label(0.06, 0.04), gap_label(0.15), gap_label(-0.05)
        ('normal', 'growing', 'overfitting', 'inverted')
    """
    if gap is None:
        return None
    if gap > GAP_CRITICAL:
        return "critical"
    if gap > GAP_SEVERE:
        return "severe"
    if gap > GAP_OVERFITTING:
        return "overfitting"
    if gap < GAP_INVERTED:
        return "inverted"
    if gap > GAP_GROWING_MIN and previous is not None and gap - previous >= GAP_GROWING_STEP - 1e-9:
        return "growing"
    return "normal"


def epoch_table(run: RunData | list[dict]) -> list[dict]:
    """One dict per epoch: ``epoch, lr, train_loss, val_loss, loss_parts, train_score, val_score,
    gap, gap_metric, label, best, stopped`` (``None`` where the history has no value)."""
    history = run.history if isinstance(run, RunData) else run
    best = run.best_epoch if isinstance(run, RunData) else None
    metric = gap_metric(history)
    rows = []
    prev = None
    for i, row in enumerate(history):
        g = _gap_value(row, metric) if metric else None
        epoch = row.get("epoch", i + 1)
        rows.append(
            {
                "epoch": epoch,
                "lr": finite_number(row.get("lr")),
                "train_loss": finite_number((row.get("train") or {}).get("loss")),
                "val_loss": finite_number((row.get("validation") or {}).get("loss")),
                "loss_parts": {
                    k: finite_number(v) for k, v in ((row.get("train") or {}).get("loss_parts") or {}).items()
                },
                "train_score": finite_number((row.get("train") or {}).get(metric)) if metric else None,
                "val_score": val_metric(row, metric) if metric else None,
                "gap": g,
                "gap_metric": metric,
                "label": gap_label(g, prev),
                "best": bool(row.get("best")) if best is None else epoch == best,
                "stopped": row.get("stopped"),
            }
        )
        prev = g if g is not None else prev
    return rows


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} points"


# ---------------------------------------------------------------------------- loss dynamics
def _composite_parts(run: RunData) -> tuple[str, str] | None:
    """``(classification part, contrastive part)`` names when both are logged, else ``None``."""
    parts = run.loss_parts()
    logged = {p for row in run.history for p in ((row.get("train") or {}).get("loss_parts") or {})}
    cls = [p for p, m in parts.items() if p in logged and not m["contrastive"]]
    con = [p for p, m in parts.items() if p in logged and m["contrastive"]]
    return (cls[0], con[0]) if cls and con else None


def _val_summary(run: RunData) -> tuple[str, list[float], bool | None]:
    """``(early-stopping metric, its validation series, whether it has stalled)``."""
    metric = run.stop_metric
    v = _present([val_metric(r, metric) for r in run.history])
    return metric, v, stalled(v, higher_is_better=not metric.endswith("loss"))


def _move_weight(weights: dict[str, float | None], src: str, dst: str, amount: float | None, *, share: float | None = None) -> str:
    """``loss.src.weight a -> a', loss.dst.weight b -> b'`` moving ``amount`` (or ``share`` of src's weight)."""
    w_src, w_dst = weights.get(src), weights.get(dst)
    if isinstance(w_src, float) and isinstance(w_dst, float):
        moved = share * w_src if share is not None else amount
        if moved is not None and 0 < moved < w_src:
            return (f"loss.{src}.weight {w_src:g} -> {w_src - moved:.3g}, "
                    f"loss.{dst}.weight {w_dst:g} -> {w_dst + moved:.3g} (the sum stays {w_src + w_dst:.3g})")
    if share is not None:
        return f"multiply loss.{src}.weight by {1 - share:g} and add what it loses to loss.{dst}.weight"
    return f"move weight from loss.{src}.weight to loss.{dst}.weight"


def _weight_knobs(up: str, down: str) -> tuple[Knob, Knob]:
    return Knob(f"loss.{up}.weight", "up", (up,)), Knob(f"loss.{down}.weight", "down", (down,))


@register("composite_loss")
def composite_loss(run: RunData) -> list[Finding]:
    """Dynamics of a loss with a classification part and a contrastive part (train ``loss_parts``).

    The parts are judged against each other and against their own first epoch (see
    docs/diagnostics.md): a part rising -> learning rate; the classification part lagging the
    contrastive one (its recent pace under :data:`LAG_RATIO` of the contrastive part's, while it
    has shed less than :data:`SATURATION_DROP` of its start) -> move weight back to it; both
    falling -> ok; the contrastive part flat while the classification part falls -> move weight to
    it; both flat from the first epoch -> learning rate or data.
    """
    names = _composite_parts(run)
    if names is None or len(run.history) < 3:
        return []
    c_name, k_name = names
    c, k = _present(_part_series(run.history, c_name)), _present(_part_series(run.history, k_name))
    sc, sk = shape(c), shape(k)
    if sc is None or sk is None:
        return []
    rate_c, rate_k = relative_slope(c[-WINDOW:]), relative_slope(k[-WINDOW:])
    drop_c, drop_k = drop_from_start(c), drop_from_start(k)
    parts = run.loss_parts()
    weights = {c_name: parts[c_name].get("weight"), k_name: parts[k_name].get("weight")}
    figs = {
        "parts": {c_name: "classification", k_name: "contrastive"},
        "window_epochs": min(WINDOW, len(c)),
        f"{c_name}_rel_slope": _r(rate_c), f"{k_name}_rel_slope": _r(rate_k),
        f"{c_name}_first_last": [_r(c[0]), _r(c[-1])], f"{k_name}_first_last": [_r(k[0]), _r(k[-1])],
        f"{c_name}_drop_from_start": _r(drop_c), f"{k_name}_drop_from_start": _r(drop_k),
        "weights": weights, "flat_threshold": FLAT_SLOPE, "lag_ratio": LAG_RATIO,
    }
    pace = f"({c_name} {rate_c:+.1%}/epoch, {k_name} {rate_k:+.1%}/epoch)"
    rising = [n for n, sh in ((c_name, sc), (k_name, sk)) if sh == "rising"]
    if rising:
        return [Finding("composite_loss", "warning", figs,
                        f"training loss part {', '.join(rising)} is rising over the last epochs {pace}",
                        "lower the learning rate (optim.lr x0.5) or lengthen warmup (optim.warmup 0.1)",
                        (Knob("optim.lr", "down"),))]
    if sk == "falling" and _lags(rate_c, rate_k, drop_c, drop_k):
        return [_lagging_classifier(run, c_name, k_name, c, k, figs, weights)]
    if sc == "falling" and sk == "falling":
        return [Finding("composite_loss", "ok", figs, f"both loss parts are falling {pace}", "")]
    if sc == "falling" and sk == "flat":
        total = sum(w for w in weights.values() if isinstance(w, float)) or 1.0
        return [Finding("composite_loss", "warning", figs,
                        f"{c_name} is still falling ({rate_c:+.1%}/epoch) but the contrastive part {k_name} has "
                        f"plateaued ({rate_k:+.1%}/epoch over the last {figs['window_epochs']} epochs)",
                        f"shift {WEIGHT_SHIFT:.0%} of the total loss weight to {k_name}: "
                        + _move_weight(weights, c_name, k_name, WEIGHT_SHIFT * total),
                        _weight_knobs(k_name, c_name))]
    if sc == "flat" and sk == "flat":
        whole_c, whole_k = relative_slope(c), relative_slope(k)
        if abs(whole_c) < FLAT_SLOPE and abs(whole_k) < FLAT_SLOPE:
            figs["whole_run_rel_slopes"] = {c_name: _r(whole_c), k_name: _r(whole_k)}
            lr = finite_number((run.recipe or {}).get("optim", {}).get("lr")) if run.recipe else None
            lr_txt = f" (optim.lr {lr:g} -> {3 * lr:g})" if lr else ""
            return [Finding("composite_loss", "warning", figs,
                            f"both loss parts are flat from the first epoch ({c_name} {whole_c:+.1%}/epoch, "
                            f"{k_name} {whole_k:+.1%}/epoch): the model is not learning",
                            f"raise the learning rate about 3x{lr_txt}, or check the data: labels shuffled or "
                            "misaligned with texts, texts truncated to nothing, a frozen encoder",
                            (Knob("optim.lr", "up"),))]
        return [Finding("composite_loss", "ok", figs, "both loss parts fell and have now converged", "")]
    return []


def _lags(rate_c: float, rate_k: float, drop_c: float, drop_k: float) -> bool:
    """The classification part falls at under LAG_RATIO of the contrastive part's pace over the window
    (relative slopes: each part against its own level) and is not near its floor (it has shed less
    than SATURATION_DROP of its start: that case is :func:`loss_saturated`'s)."""
    if not (rate_k < 0 and drop_k > 0) or any(map(math.isnan, (rate_c, drop_c))):
        return False
    return rate_c / rate_k < LAG_RATIO and drop_c < SATURATION_DROP


def _lagging_classifier(run: RunData, c_name: str, k_name: str, c: list[float], k: list[float], figs: dict,
                        weights: dict) -> Finding:
    metric, v, stuck = _val_summary(run)
    val_txt = ""
    if len(v) >= 2:
        figs[f"val_{metric}_first_last"] = [_r(v[0]), _r(v[-1])]
        figs["val_stalled"] = stuck
        val_txt = f"; validation {metric} {v[0]:.3f} -> {v[-1]:.3f}" + (" and has stopped improving" if stuck else "")
    balance = ((run.recipe or {}).get("loss_balance") or "fixed") if run.recipe else "fixed"
    move = _move_weight(weights, k_name, c_name, None, share=LAG_MOVE_SHARE)
    action = (f"move weight back to the classification part: {move}; if {c_name} still lags, halve again; if "
              f"{k_name} then stops falling, you moved too much. Or ramp the contrastive part in later "
              f"(train the classifier alone for the first epochs)")
    if balance == "uncertainty":
        action = f"loss_balance: uncertainty let the learned balance drift to {k_name}: set loss_balance: fixed and {action}"
    return Finding(
        "composite_loss", "warning", figs,
        f"the classifier has stopped learning while the contrastive part dominates: {c_name} {c[0]:.3f} -> "
        f"{c[-1]:.3f} (shed {figs[f'{c_name}_drop_from_start']:.0%} of its start, {figs[f'{c_name}_rel_slope']:+.1%}/epoch "
        f"lately) while {k_name} {k[0]:.3f} -> {k[-1]:.3f} (shed {figs[f'{k_name}_drop_from_start']:.0%}, "
        f"{figs[f'{k_name}_rel_slope']:+.1%}/epoch){val_txt}. The encoder follows the contrastive gradient; the "
        "classification part, the one the metric depends on, barely moves",
        action, _weight_knobs(c_name, k_name))


@register("loss_saturated")
def loss_saturated(run: RunData) -> list[Finding]:
    """The classification loss is near its floor (relative to its own start, and to the contrastive part
    when there is one) while the validation metric has stalled."""
    names = _composite_parts(run)
    if names is not None:
        name, series = names[0], _part_series(run.history, names[0])
    else:
        parts = run.loss_parts()
        cls = [p for p, m in parts.items() if not m["contrastive"] and len(_present(_part_series(run.history, p))) >= 3]
        name, series = (cls[0], _part_series(run.history, cls[0])) if cls else ("loss", _series(run.history, "train", "loss"))
    y = _present(series)
    metric, v, stuck = _val_summary(run)
    if len(y) < 3 or not stuck:
        return []
    drop = drop_from_start(y)
    if math.isnan(drop) or drop < SATURATION_DROP:
        return []
    figs = {"part": name, "first": _r(y[0]), "last": _r(y[-1]), "last_over_first": _r(y[-1] / y[0]),
            "drop_from_start": _r(drop), "saturation_drop": SATURATION_DROP,
            f"val_{metric}_last": _r(v[-1]), f"val_{metric}_best": _r(max(v) if not metric.endswith("loss") else min(v)),
            "val_stalled_epochs": STALL_EPOCHS}
    epoch = _epochs(run.history)[-1]
    if names is not None:
        k = _present(_part_series(run.history, names[1]))
        drop_k = drop_from_start(k)
        if math.isnan(drop_k) or (1 - drop) > SAT_VS_CONTRASTIVE * (1 - drop_k):
            return []
        figs.update(contrastive=names[1], contrastive_first_last=[_r(k[0]), _r(k[-1])],
                    contrastive_drop_from_start=_r(drop_k), sat_vs_contrastive=_r(SAT_VS_CONTRASTIVE))
        verdict = (f"the classification part {name} saturated early: {y[0]:.3f} -> {y[-1]:.3f} at epoch {epoch} "
                   f"({y[-1] / y[0]:.0%} of its start) while the contrastive part {names[1]} is at {k[-1]:.3f} "
                   f"({k[-1] / k[0]:.0%} of its own start), and validation {metric} has not improved for "
                   f"{STALL_EPOCHS} epochs ({v[-1]:.3f}): the classifier fits the training labels and passes the "
                   f"encoder little gradient, so the later epochs train it on {names[1]} alone")
    else:
        verdict = (f"the classification loss ({name}) is at its floor: {y[0]:.3f} -> {y[-1]:.4f} ({y[-1] / y[0]:.0%} of "
                   f"its start) while validation {metric} has not improved for {STALL_EPOCHS} epochs ({v[-1]:.3f}): "
                   "the model has memorised the training set and further epochs add nothing")
    part = name if name != "loss" else next((p for p, m in run.loss_parts().items() if not m["contrastive"]), None)
    smooth = f"label smoothing 0.1 on loss.{part}" if part else "label smoothing 0.1"
    return [Finding(
        "loss_saturated", "warning", figs, verdict,
        f"stop earlier (early_stopping.patience 2), keep the classification loss from collapsing ({smooth}, "
        "model.dropout 0.2, optim.weight_decay 0.05); more data helps most",
        (Knob("train.epochs", "down"), Knob("regularisation", "up")),
    )]


@register("loss_oscillating")
def loss_oscillating(run: RunData) -> list[Finding]:
    """Training or validation loss zig-zags from epoch to epoch: the learning rate is too high."""
    out = []
    lr = finite_number(((run.recipe or {}).get("optim") or {}).get("lr")) if run.recipe else None
    if lr is None:
        lrs = _present([finite_number(r.get("lr")) for r in run.history])
        lr = max(lrs) if lrs else None
    for split in ("train", "validation"):
        y = _present(_series(run.history, split, "loss"))
        if is_oscillating(y):
            d = [b - a for a, b in zip(y, y[1:])]
            figs = {"split": split, "values": [_r(x) for x in y], "median_step_rel": _r(statistics.median(abs(x) for x in d) / (sum(abs(v) for v in y) / len(y))), "lr": lr}
            lr_txt = f" (optim.lr {lr:g} -> {lr / 2:g})" if lr else " (optim.lr x0.5)"
            out.append(Finding(
                "loss_oscillating", "warning", figs,
                f"{split} loss oscillates ({' -> '.join(f'{x:.3f}' for x in y[-6:])})",
                f"halve the learning rate{lr_txt}, lengthen warmup (optim.warmup 0.1) or raise the batch "
                "(train.grad_accum x2)",
                (Knob("optim.lr", "down"),),
            ))
    return out


@register("val_loss_rising")
def val_loss_rising(run: RunData) -> list[Finding]:
    """Validation loss rises over the last epochs while the training loss does not."""
    v = _series(run.history, "validation", "loss")
    t = _series(run.history, "train", "loss")
    vp = _present(v)
    if shape(vp) != "rising" or shape(_present(t)) == "rising" or is_oscillating(vp):
        return []
    epochs = [e for e, x in zip(_epochs(run.history), v) if x is not None]
    i_min = min(range(len(vp)), key=lambda i: vp[i])
    figs = {
        "rel_slope": _r(relative_slope(vp[-WINDOW:])),
        "min_epoch": epochs[i_min],
        "min_val_loss": _r(vp[i_min]),
        "last_val_loss": _r(vp[-1]),
    }
    return [Finding(
        "val_loss_rising", "warning", figs,
        f"validation loss rises {figs['rel_slope']:+.1%}/epoch over the last epochs: {vp[i_min]:.3f} at epoch "
        f"{epochs[i_min]} -> {vp[-1]:.3f} now, while the training loss keeps falling (overconfident on validation)",
        f"stop near epoch {epochs[i_min]} (early_stopping on loss or patience 2); calibrate with temperature "
        "scaling if scores matter; regularise (dropout, weight decay, label smoothing)",
        (Knob("train.epochs", "down"), Knob("regularisation", "up")),
    )]


# ---------------------------------------------------------------------------- gap & stopping
@register("train_val_gap")
def train_val_gap(run: RunData) -> list[Finding]:
    """Train-minus-validation score gap per epoch with trend labels; reports overfitting and inversion."""
    table = epoch_table(run)
    labelled = [r for r in table if r["label"] is not None]
    if not labelled:
        return []
    metric = labelled[0]["gap_metric"]
    last = labelled[-1]
    best = next((r for r in labelled if r["best"]), None)
    figs = {
        "metric": metric,
        "per_epoch": {str(r["epoch"]): {"gap": _r(r["gap"]), "label": r["label"]} for r in labelled},
        "last_epoch": last["epoch"],
        "last_gap": _r(last["gap"]),
        "last_label": last["label"],
        "best_epoch_gap": _r(best["gap"]) if best else None,
    }
    rank = {lab: i for i, lab in enumerate(GAP_LABELS)}
    worst = max(labelled, key=lambda r: rank[r["label"]])
    out: list[Finding] = []
    if last["label"] in ("overfitting", "severe", "critical"):
        sev = "error" if last["label"] == "critical" else "warning"
        action = (
            "stop at the best epoch (early_stopping.patience 2), regularise (model.dropout 0.1 -> 0.2, "
            "optim.weight_decay 0.01 -> 0.05)"
            if last["label"] == "overfitting"
            else "the model memorises the training set: add data, freeze lower layers (model.freeze_layers 2), "
            "halve train.epochs and regularise (dropout 0.2, weight_decay 0.05)"
        )
        out.append(Finding("train_val_gap", sev, figs,
                           f"{last['label']}: train {metric} exceeds validation by {_pts(last['gap'])} at epoch "
                           f"{last['epoch']}" + (f" (gap {_pts(best['gap'])} at the best epoch {best['epoch']})" if best else ""),
                           action, (Knob("train.epochs", "down"), Knob("regularisation", "up"))))
    elif (last["label"] == "growing" and len(labelled) >= 3 and labelled[-2]["label"] in ("growing", "normal")
          and sum(r["label"] == "growing" for r in labelled[-3:]) >= 2
          and last["gap"] - labelled[-3]["gap"] >= GAP_WIDENING - 1e-9):  # a net rise, not noise around a level
        out.append(Finding("train_val_gap", "warning", figs,
                           f"the train/validation gap keeps widening ({', '.join(_pts(r['gap']) for r in labelled[-3:])})",
                           "expect overfitting within a few epochs: rely on early stopping (patience 2) or regularise",
                           (Knob("train.epochs", "down"),)))
    inverted = [r for r in labelled if r["label"] == "inverted"]
    if len(labelled) >= 3 and len(inverted) / len(labelled) >= INVERTED_SHARE:
        figs_i = dict(figs, inverted_epochs=[r["epoch"] for r in inverted])
        out.append(Finding("train_val_gap", "warning", figs_i,
                           f"validation beats train on {len(inverted)} of {len(labelled)} epochs "
                           f"(gap down to {_pts(min(r['gap'] for r in inverted))})",
                           "check for texts shared between train and validation, a validation set much easier than "
                           "train, or very heavy regularisation (dropout, label smoothing) that only acts in training"))
    if not out:
        out.append(Finding("train_val_gap", "ok", figs,
                           f"gap {_pts(last['gap'])} at the last epoch (worst: {worst['label']}, epoch {worst['epoch']})", ""))
    return out


@register("best_epoch")
def best_epoch(run: RunData) -> list[Finding]:
    """Which epoch was best on the early-stopping metric, and whether training was still improving."""
    e = run.best_epoch
    if e is None:
        return []
    metric = run.stop_metric
    row = run.row_at(e) or {}
    epochs = _epochs(run.history)
    figs = {"best_epoch": e, "epochs_run": len(run.history), "metric": metric, "value": _r(val_metric(row, metric))}
    last = run.history[-1]
    if e == epochs[-1] and last.get("stopped") == "max_epochs" and len(epochs) >= 2:
        return [Finding("best_epoch", "info", figs,
                        f"the best epoch is the last one ({e} of {len(epochs)}, validation {metric} {_fmt(figs['value'])}): "
                        "training may not have converged", "raise train.epochs (e.g. x1.5) and keep early stopping on",
                        (Knob("train.epochs", "up"),))]
    return [Finding("best_epoch", "info", figs,
                    f"best epoch {e} of {len(epochs)} (validation {metric} {_fmt(figs['value'])}); the saved model is from it", "")]


@register("early_stopping")
def early_stopping(run: RunData) -> list[Finding]:
    """Why training stopped: early stopping (metric, patience, best value) or the epoch budget."""
    last = run.history[-1]
    stopped = last.get("stopped")
    if not stopped:
        return []
    es = last.get("early_stopping") or {}
    metric = es.get("metric") or run.stop_metric
    figs = {"stopped": stopped, "epoch": last.get("epoch"), "metric": metric, "best": _r(finite_number(es.get("best"))),
            "best_epoch": run.best_epoch}
    patience = ((run.recipe or {}).get("early_stopping") or {}).get("patience")
    if patience is not None:
        figs["patience"] = patience
    if stopped == "early_stopping":
        since = None
        if run.best_epoch is not None and isinstance(last.get("epoch"), (int, float)):
            since = last["epoch"] - run.best_epoch
        figs["epochs_without_improvement"] = since
        verdict = (f"early stopping fired at epoch {last.get('epoch')}: validation {metric} did not improve on "
                   f"{_fmt(figs['best'])} (epoch {run.best_epoch}) for {since if since is not None else patience} epochs")
        return [Finding("early_stopping", "info", figs, verdict, "")]
    return [Finding("early_stopping", "info", figs,
                    f"training ran its full budget of {last.get('epoch')} epochs ({stopped})", "")]


@register("val_test_drop")
def val_test_drop(run: RunData) -> list[Finding]:
    """Validation-to-test drop larger than 2 points (``eval.json``): validation over-used or unrepresentative."""
    ev = run.eval or {}
    val, test = ev.get("validation"), ev.get("test")
    if not isinstance(val, dict) or not isinstance(test, dict):
        return []
    out = []
    drops = {}
    for key in ("macro_f1", "accuracy"):
        a, b = finite_number(val.get(key)), finite_number(test.get(key))
        if a is not None and b is not None:
            drops[key] = {"validation": _r(a), "test": _r(b), "drop": _r(a - b)}
    big = {k: d for k, d in drops.items() if d["drop"] > VAL_TEST_DROP}
    if big:
        key = "macro_f1" if "macro_f1" in big else next(iter(big))
        d = big[key]
        out.append(Finding("val_test_drop", "warning", {"threshold": VAL_TEST_DROP, **drops},
                           f"validation {key} {d['validation']:.3f} -> test {d['test']:.3f} ({_pts(-d['drop'])}): the "
                           "validation set was over-used (early stopping, thresholds) or does not look like test",
                           "enlarge the validation split (data.val_fraction 0.2), tune thresholds with cross-validation, "
                           "and compare the validation and test class distributions"))
    return out


# ---------------------------------------------------------------------------- per class
def _per_class_at_best(run: RunData) -> dict[str, dict]:
    row = run.best_row or {}
    pc = (row.get("validation") or {}).get("per_class")
    if not pc and run.eval:
        pc = (run.eval.get("validation") or {}).get("per_class")
    return pc or {}


def _rare(run: RunData) -> dict[str, float]:
    counts = run.class_counts or {}
    if not counts:
        return {}
    total = sum(counts.values()) or 1.0
    biggest = max(counts.values()) or 1.0
    return {k: v / total for k, v in counts.items() if v / total < RARE_SHARE or v <= RARE_RATIO_TO_MAX * biggest}


@register("rare_zero_recall")
def rare_zero_recall(run: RunData) -> list[Finding]:
    """Classes with zero validation recall at the best epoch (the rare ones: raise their weight or gamma)."""
    pc = _per_class_at_best(run)
    zero = {k: v for k, v in pc.items() if finite_number(v.get("recall")) == 0.0 and (finite_number(v.get("support")) or 0) > 0}
    if not zero:
        return []
    rare = _rare(run)
    counts = run.class_counts or {}
    weights = run.class_weights or {}
    figs = {
        "epoch": run.best_epoch,
        "classes": {
            k: {"support_val": v.get("support"), "train_count": counts.get(k),
                "train_share": _r(rare.get(k)) if k in rare else None, "weight": _r(weights.get(k)), "rare": k in rare}
            for k, v in zero.items()
        },
    }
    names = list(zero)
    gamma = _focal_gamma(run.recipe)
    hints = []
    for k in names:
        w = weights.get(k)
        if w is not None:
            hints.append(f"weighting.overrides.{k}: {2 * w:.3g} (now {w:.3g})")
    weight_txt = "; ".join(hints) if hints else "weighting.scheme: effective_number (or overrides for these classes)"
    gamma_txt = f"raise focal gamma {gamma:g} -> {gamma + 1:g}" if gamma is not None else "use a focal loss with gamma 1-2"
    rare_names = [k for k in names if k in rare]
    desc = ", ".join(
        f"{k} (val support {zero[k].get('support')}" + (f", {100 * rare[k]:.1f}% of train" if k in rare else "") + ")"
        for k in names
    )
    verdict = f"{len(names)} class{'es' if len(names) > 1 else ''} never recalled at the best epoch: {desc}"
    if not rare_names:
        verdict += " (not rare: check their labels)"
    knobs = (Knob("class_weights", "up", tuple(names)), Knob("focal.gamma", "up"))
    return [Finding("rare_zero_recall", "warning", figs, verdict, f"raise their weight ({weight_txt}) or {gamma_txt}", knobs)]


def _focal_gamma(recipe: dict | None) -> float | None:
    for name, spec in ((recipe or {}).get("loss") or {}).items() if isinstance((recipe or {}).get("loss"), dict) else []:
        spec = spec or {}
        if "focal" in str(spec.get("type") or name).lower():
            g = spec.get("gamma")
            if isinstance(g, dict):
                g = g.get("end")
            return float(g) if isinstance(g, (int, float)) else 2.0
    return None


@register("upweighted_low_precision")
def upweighted_low_precision(run: RunData) -> list[Finding]:
    """Precision under 0.5 on an up-weighted class while its recall is higher: its weight is too high."""
    weights = run.class_weights or {}
    pc = _per_class_at_best(run)
    if not weights or not pc:
        return []
    pos_weight = run.kind_info is not None and run.kind_info.sigmoid
    median = statistics.median(weights.values())
    bar = UPWEIGHT_FACTOR if pos_weight else UPWEIGHT_FACTOR * median
    hits = {}
    for k, w in weights.items():
        m = pc.get(k) or {}
        p, r = finite_number(m.get("precision")), finite_number(m.get("recall"))
        if w >= bar and p is not None and r is not None and p < LOW_PRECISION and r > p and (finite_number(m.get("support")) or 0) > 0:
            hits[k] = {"weight": _r(w), "precision": _r(p), "recall": _r(r), "support_val": m.get("support")}
    if not hits:
        return []
    cap = ((run.recipe or {}).get("weighting") or {}).get("cap")
    desc = ", ".join(f"{k} (weight {v['weight']:.2f}, precision {v['precision']:.2f}, recall {v['recall']:.2f})" for k, v in hits.items())
    top = max(v["weight"] for v in hits.values())
    new_cap = max(1.5, round(min(float(cap) if cap else top, top) / 2, 1))
    figs = {"epoch": run.best_epoch, "median_weight": _r(median), "upweight_bar": _r(bar), "classes": hits, "cap": cap,
            "suggested_cap": new_cap}
    return [Finding("upweighted_low_precision", "warning", figs,
                    f"up-weighted class{'es' if len(hits) > 1 else ''} over-predicted: {desc}",
                    f"the weights are too high: cap them (weighting.cap {new_cap:g}), use scheme sqrt_inverse, "
                    "or tune a decision threshold instead (tailtune tune)",
                    (Knob("class_weights", "down", tuple(hits)),))]


@register("weights_with_thresholds")
def weights_with_thresholds(run: RunData) -> list[Finding]:
    """Class weights and the tuned decision rule (``postprocess.json``) both favour the same classes:
    the prior is corrected twice (see :func:`tailtune.diagnostics.stacking.stacked_corrections`)."""
    f = stacked_corrections(run.class_weights, run.postprocess, kind=run.kind, labels=run.labels)
    return [f] if f is not None else []
