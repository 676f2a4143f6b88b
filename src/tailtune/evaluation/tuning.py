"""Decision-rule tuning on the validation split: thresholds (binary, multilabel) and logit biases
(multiclass, aspects) that maximise macro-F1.

Policy (docs/evaluation.md):

- **Validation only.** Every entry point takes the name of the split it tunes on and refuses one
  named ``test``; the test split is only ever scored with a rule fixed beforehand.
- **binary**: one probability threshold, chosen by an exact sweep over every distinct validation
  score (the cut sits halfway between two adjacent scores) maximising ``metric`` (``macro_f1``,
  the mean F1 of both classes, or ``f1``, the positive class's).
- **multilabel**: one threshold per label. Macro-F1 over labels is a sum of per-label terms, so each
  label's threshold is an exact 1-D sweep. *Minimum-support fallback*: a label with fewer than
  ``min_support`` validation positives gets the **global** threshold instead (the single threshold
  maximising macro-F1 over all labels with a positive), so 3 validation positives cannot produce an
  over-fitted cut-off.
- **multiclass / aspects**: additive logit biases ``b`` with ``argmax(z + b)``, fitted by coordinate
  ascent: for one class at a time, every breakpoint at which some example's decision flips is
  evaluated exactly (cumulative counts, O(N K) per class), and the best bias is kept if it raises
  macro-F1; sweeps repeat until nothing improves. Classes with fewer than ``min_support``
  validation examples keep bias 0. Aspects: each aspect's row is tuned on its own, maximising that
  aspect's macro-F1 over polarities (docs: absent handling), whose mean is the task's macro-F1.
  Biases are centred (mean 0 per row; argmax is unchanged by a common shift).

Ties between equally good cut-offs go to the one nearest the default rule (0.5 / bias 0).

Example:
    >>> import numpy as np
    >>> p = np.array([0.9, 0.35, 0.3, 0.2, 0.1]); y = np.array([1, 1, 1, 0, 0])
    >>> t, score = tune_binary_threshold(p, y, metric="f1")
    >>> round(t, 3), score
    (0.25, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.evaluation.calibration import calibration_summary, fit_temperature
from tailtune.evaluation.constraints import HIERARCHY_MODES
from tailtune.evaluation.postprocess import PostProcess
from tailtune.metrics import classification_report, decode, item_counts, probabilities
from tailtune.metrics._task import as_task
from tailtune.metrics.counts import aspect_f1_from_counts

__all__ = [
    "TuneResult",
    "bootstrap_rule",
    "check_tuning_split",
    "one_class_labels",
    "support_shortfall",
    "tune_binary_threshold",
    "tune_biases",
    "tune_decision_rule",
    "tune_multilabel_thresholds",
]

BINARY_METRICS = ("macro_f1", "f1")
TEMPERATURE_MODES = ("none", "scalar", "per_label")
#: bootstrap resamples of the validation split used by default (0 = one exact fit on the whole split)
DEFAULT_BOOTSTRAP = 100
#: a part is kept when its mean out-of-bag gain exceeds this many standard deviations of its gains
DEFAULT_MARGIN = 0.5


def check_tuning_split(split: str) -> None:
    """Refuse to tune on a test split (ValueError naming the split and the fix)."""
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty split name, got {split!r}")
    if "test" in split.lower():
        raise ValueError(
            f"refusing to tune the decision rule on split {split!r}: tuning on the test split leaks it into "
            "the result. Fix: tune on 'validation' and only evaluate on test"
        )


def _check_min_support(min_support: Any) -> None:
    if isinstance(min_support, bool) or not isinstance(min_support, int) or min_support < 0:
        raise ValueError(f"min_support must be a non-negative integer, got {min_support!r}")


def _f1(tp: np.ndarray, pred: np.ndarray, support: np.ndarray | float) -> np.ndarray:
    denom = pred + support
    return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1e-300), 0.0)


def _pick(scores: np.ndarray, valid: np.ndarray, values: np.ndarray, default: float) -> int:
    """Index of the best valid score; ties go to the value nearest ``default``."""
    s = np.where(valid, scores, -np.inf)
    best = s.max()
    cand = np.nonzero(s >= best - 1e-12)[0]
    return int(cand[np.argmin(np.abs(values[cand] - default))])


def _threshold_sweep(p: np.ndarray, y: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """All distinct cut-offs of one score column and the metric at each: (thresholds, scores)."""
    n = p.size
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    pos = ys.sum()
    tp = np.concatenate([[0.0], np.cumsum(ys)])
    pred = np.arange(n + 1, dtype=np.float64)
    f1_pos = _f1(tp, pred, pos)
    if metric == "f1":
        score = f1_pos
    else:
        tn = (n - pos) - (pred - tp)
        score = 0.5 * (f1_pos + _f1(tn, n - pred, n - pos))
    thr = np.empty(n + 1)
    thr[0] = (ps[0] + 1.0) / 2 if n else 0.5
    thr[n] = ps[-1] / 2 if n else 0.5
    if n > 1:
        thr[1:n] = (ps[:-1] + ps[1:]) / 2
    valid = np.ones(n + 1, dtype=bool)
    if n > 1:
        valid[1:n] = ps[:-1] > ps[1:]
    return thr[valid], score[valid]


def tune_binary_threshold(probs: Any, y_true: Any, *, metric: str = "macro_f1") -> tuple[float, float]:
    """Best probability threshold for a binary decision ``p >= t``; returns ``(t, score)``.

    Args:
        probs: ``(N,)`` positive-class probabilities (validation).
        y_true: ``(N,)`` 0/1.
        metric: ``macro_f1`` (mean F1 of both classes) or ``f1`` (positive class).
    """
    if metric not in BINARY_METRICS:
        raise ValueError(f"metric must be one of {list(BINARY_METRICS)}, got {metric!r}")
    p = np.asarray(probs, dtype=np.float64).ravel()
    y = np.rint(np.asarray(y_true)).astype(np.float64).ravel()
    if p.size != y.size or p.size == 0:
        raise ValueError(f"probs and y_true must be non-empty and equally long, got {p.size} and {y.size}")
    thr, score = _threshold_sweep(p, y, metric)
    i = _pick(score, np.ones_like(score, dtype=bool), thr, 0.5)
    return float(thr[i]), float(score[i])


def tune_multilabel_thresholds(
    probs: Any, y_true: Any, *, min_support: int = 5, grid: int = 199
) -> dict[str, Any]:
    """Per-label thresholds maximising each label's F1, with the minimum-support fallback.

    Returns ``{"thresholds": [C floats], "global_threshold": float, "fallback": [label indices]}``.
    ``grid`` is the number of candidate global thresholds, evenly spaced in (0, 1).
    """
    _check_min_support(min_support)
    p = np.asarray(probs, dtype=np.float64)
    y = np.rint(np.asarray(y_true)).astype(np.float64)
    if p.shape != y.shape or p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs and y_true must both be (N, C) with N > 0, got {p.shape} and {y.shape}")
    support = y.sum(axis=0)
    # global threshold: macro-F1 over labels with at least one positive, on an even grid. A cell
    # counts as predicted at every grid value <= its score: bin the scores, then reverse-cumulate.
    cand = np.linspace(0.0, 1.0, grid + 2)[1:-1]
    has_pos = support > 0
    global_t = 0.5
    if has_pos.any():
        pp, yy = p[:, has_pos], y[:, has_pos]
        bins = np.searchsorted(cand, pp, side="right")  # number of grid values <= score
        c = pp.shape[1]
        flat = (bins * c + np.arange(c)).ravel()
        n_all = np.bincount(flat, minlength=(cand.size + 1) * c).reshape(cand.size + 1, c)
        n_pos = np.bincount(flat, weights=yy.ravel(), minlength=(cand.size + 1) * c).reshape(cand.size + 1, c)
        pred = np.cumsum(n_all[::-1], axis=0)[::-1][1:]  # pred[i]: cells with score >= cand[i]
        tp = np.cumsum(n_pos[::-1], axis=0)[::-1][1:]
        scores = _f1(tp, pred, yy.sum(axis=0)).mean(axis=1)
        global_t = float(cand[_pick(scores, np.ones_like(scores, dtype=bool), cand, 0.5)])
    thresholds = np.full(p.shape[1], global_t)
    fallback = []
    for c in range(p.shape[1]):
        if support[c] < max(min_support, 1):
            fallback.append(c)
            continue
        thr, score = _threshold_sweep(p[:, c], y[:, c], "f1")
        thresholds[c] = thr[_pick(score, np.ones_like(score, dtype=bool), thr, 0.5)]
    return {"thresholds": thresholds.tolist(), "global_threshold": global_t, "fallback": fallback}


def _macro(tp, pred, support, avg_idx, union) -> np.ndarray:
    f = _f1(tp, pred, support)[..., avg_idx]
    if not union:
        return f.mean(axis=-1)
    used = (support[avg_idx] > 0) | (pred[..., avg_idx] > 0)
    n = used.sum(axis=-1)
    return np.where(n > 0, (f * used).sum(axis=-1) / np.maximum(n, 1), 0.0)


def _score_block(z: np.ndarray, y: np.ndarray, k: int, avg_idx, union) -> float:
    pred = np.argmax(z, axis=1)
    tp = np.bincount(pred[pred == y], minlength=k).astype(np.float64)
    cnt = np.bincount(pred, minlength=k).astype(np.float64)
    support = np.bincount(y, minlength=k).astype(np.float64)
    return float(_macro(tp, cnt, support, avg_idx, union))


def _tune_block(
    s: np.ndarray, y: np.ndarray, *, avg_idx: list[int], union: bool, min_support: int, max_sweeps: int
) -> tuple[np.ndarray, float, float]:
    """Coordinate ascent on biases of one (N, K) logit block; returns (biases, default, tuned)."""
    n, k = s.shape
    b = np.zeros(k)
    support = np.bincount(y, minlength=k).astype(np.float64)
    tunable = [c for c in range(k) if support[c] >= max(min_support, 1)]
    default = current = _score_block(s, y, k, avg_idx, union)
    eye = np.eye(k)
    for _ in range(max_sweeps):
        improved = False
        for c in tunable:
            z = s + b
            others = z.copy()
            others[:, c] = -np.inf
            j = others.argmax(axis=1)
            d = others[np.arange(n), j] - s[:, c]  # example predicts c iff b_c > d
            order = np.argsort(d, kind="stable")
            ds, ys, js = d[order], y[order], j[order]
            oh_j = eye[js]
            cum_j = np.vstack([np.zeros(k), np.cumsum(oh_j, axis=0)])
            cum_jtp = np.vstack([np.zeros(k), np.cumsum(oh_j * (ys == js)[:, None], axis=0)])
            pred = cum_j[-1] - cum_j
            tp = cum_jtp[-1] - cum_jtp
            r = np.arange(n + 1, dtype=np.float64)
            pred[:, c] = r
            tp[:, c] = np.concatenate([[0.0], np.cumsum(ys == c)])
            score = _macro(tp, pred, support, avg_idx, union)
            vals = np.empty(n + 1)
            vals[0] = ds[0] - 1.0
            vals[n] = ds[-1] + 1.0
            vals[1:n] = (ds[:-1] + ds[1:]) / 2
            valid = np.ones(n + 1, dtype=bool)
            valid[1:n] = ds[:-1] < ds[1:]
            valid &= np.isfinite(vals)
            i = _pick(score, valid, vals, b[c])
            if score[i] > current + 1e-12:
                b[c] = vals[i]
                current = _score_block(s + b, y, k, avg_idx, union)
                improved = True
        if not improved:
            break
    b -= b.mean()
    return b, default, current


def tune_biases(
    logits: Any, y_true: Any, task: Any, *, min_support: int = 5, max_sweeps: int = 20
) -> dict[str, Any]:
    """Additive logit biases maximising validation macro-F1 (multiclass ``(C,)``, aspects ``(A, P+1)``).

    Returns ``{"biases": list, "default": macro_f1 before, "tuned": macro_f1 after}`` where the
    macro-F1 is the report's (aspects: mean over aspects of the polarity macro-F1).
    """
    task = as_task(task)
    kind = task_kind(task)
    if not kind.softmax:
        raise ValueError(f"biases are tuned for multiclass/aspects tasks, not {task.kind!r}")
    _check_min_support(min_support)
    s = np.asarray(logits, dtype=np.float64)
    y = np.rint(np.asarray(y_true)).astype(np.int64)
    if kind.is_multiclass:
        k = len(task.labels)
        b, d, t = _tune_block(
            s, y, avg_idx=list(range(k)), union=False, min_support=min_support, max_sweeps=max_sweeps
        )
        return {"biases": b.tolist(), "default": d, "tuned": t}
    a_count, k = len(task.labels), kind.target_classes(task)
    s3 = s.reshape(s.shape[0], a_count, k)
    rows, defaults, tuned = [], [], []
    for a in range(a_count):
        b, d, t = _tune_block(
            s3[:, a, :], y[:, a], avg_idx=list(range(k - 1)), union=True, min_support=min_support,
            max_sweeps=max_sweeps,
        )
        rows.append(b.tolist())
        defaults.append(d)
        tuned.append(t)
    return {"biases": rows, "default": float(np.mean(defaults)), "tuned": float(np.mean(tuned))}


def _fit_rule(scaled: np.ndarray, y: np.ndarray, task, *, min_support: int, binary_metric: str) -> dict[str, Any]:
    """One exact fit on ``(scaled logits, targets)``: ``{"thresholds"|"biases": array, "details": {...}}``."""
    kind = task_kind(task)
    if kind.is_binary:
        t, _ = tune_binary_threshold(probabilities(scaled, task), y, metric=binary_metric)
        return {"thresholds": np.float64(t)}
    if kind.multi_hot:
        res = tune_multilabel_thresholds(probabilities(scaled, task), y, min_support=min_support)
        return {
            "thresholds": np.asarray(res["thresholds"]),
            "details": {
                "global_threshold": res["global_threshold"],
                "fallback_labels": [task.labels[i] for i in res["fallback"]],
            },
        }
    return {"biases": np.asarray(tune_biases(scaled, y, task, min_support=min_support)["biases"])}


def _unit_scores(task, y: np.ndarray, pred: np.ndarray, binary_metric: str) -> np.ndarray:
    """The score of every independently decided unit: binary and multiclass one (the objective),
    multilabel one F1 per label, aspects one macro-F1 per aspect (``nan`` where nothing occurs)."""
    kind = task_kind(task)
    tp, fp, fn, _ = item_counts(y, pred, task)
    tp, fp, fn = tp.sum(0), fp.sum(0), fn.sum(0)
    denom = 2.0 * tp + fp + fn
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(denom.shape), where=denom > 0)
    if kind.is_binary:
        return np.array([f1[1] if binary_metric == "f1" else f1.mean()])
    if kind.is_multiclass:
        return np.array([f1.mean()])
    if kind.multi_hot:
        return f1
    return aspect_f1_from_counts(tp, fp, fn, polarities=len(task.polarities))


def bootstrap_rule(
    scaled: Any,
    y_true: Any,
    task: Any,
    *,
    resamples: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    min_support: int = 5,
    binary_metric: str = "macro_f1",
    margin: float = DEFAULT_MARGIN,
) -> dict[str, Any]:
    """A bagged decision rule with an out-of-bag check of each of its parts.

    An exact maximiser of validation macro-F1 is the arg-max of a step function: on a few hundred
    validation texts it over-fits (tuned biases that raise validation macro-F1 by 5 points can lower
    test macro-F1). This fits the rule on ``resamples`` bootstrap resamples of the validation split
    and, for every resample, scores its rule and the default rule on the texts the resample left
    out (out-of-bag, on average 36.8% of them, never seen by that fit). Then, per *unit* (binary and
    multiclass: the whole rule; multilabel: each label's threshold; aspects: each aspect's bias row):

    - the parameter is the median over the resamples (bagging smooths the step-function arg-max;
      bias rows are re-centred);
    - it is kept only when its mean out-of-bag gain over the default rule is positive and exceeds
      ``margin`` standard deviations of its per-resample gains (with the default 0.5 that is about
      one standard error of a gain measured on the whole validation split, as an out-of-bag set holds
      ~37% of it); otherwise the unit keeps the default (threshold 0.5, bias 0), so tuning does not
      change a unit on evidence that does not support it.

    Multilabel has a middle level: the single global threshold (pooled over labels, so it has
    evidence even for labels with few or no validation positives) replaces 0.5 as every label's
    default when its out-of-bag gain in macro-F1 is positive; each label's own threshold must then
    beat the global one out of bag to be kept.

    Args:
        scaled: ``(N, K)`` temperature-scaled validation logits.
        y_true: encoded validation targets.
        task: the TaskSpec.
        resamples: number of bootstrap resamples (>= 2).
        seed: seed of the resampling.
        min_support, binary_metric: as :func:`tune_decision_rule`.
        margin: the evidence bar above (0 keeps every part with a positive mean gain).

    Returns:
        ``{"thresholds", "biases"}`` (the kept rule; the one that does not apply is ``None``) and the
        evidence: ``resamples``, ``seed``, ``oob_gain`` (mean out-of-bag gain of the objective of one
        resample's rule over the default rule), ``oob_gain_ci`` (2.5/97.5 percentiles),
        ``oob_win_rate`` (share of resamples with a positive gain), ``unit_oob_gain`` (per unit)
        and ``kept`` / ``reverted`` (unit names; a reverted unit uses the default, or for
        multilabel the global threshold when ``global_threshold["kept"]``), and for multilabel
        ``global_threshold = {"value", "oob_gain", "kept"}``.

    References:
        Breiman, "Bagging predictors", Machine Learning 1996; Efron & Tibshirani, "Improvements on
        cross-validation: the .632+ bootstrap method", JASA 1997 (out-of-bag estimates).
    """
    task = as_task(task)
    kind = task_kind(task)
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 2:
        raise ValueError(f"resamples must be an integer >= 2, got {resamples!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < float("inf"):
        raise ValueError(f"margin must be a finite number >= 0 (standard deviations), got {margin!r}")
    z = np.asarray(scaled, dtype=np.float64)
    y = np.rint(np.asarray(y_true)).astype(np.int64)
    if kind.is_binary:
        y = y.reshape(-1)
    ev = _resample_evidence(z, y, task, resamples=resamples, seed=seed, min_support=min_support,
                            binary_metric=binary_metric)
    unit_gains = np.asarray(ev["unit_gains"])
    unit_gain, unit_bar = unit_gains.mean(axis=0), margin * unit_gains.std(axis=0)
    base, extra = 0.5, {}
    if kind.multi_hot:
        global_t = float(np.median([f["details"]["global_threshold"] for f in ev["fits"]]))
        global_gain = float(np.mean(ev["global_gains"]))
        global_kept = global_gain > 0 and global_gain > margin * float(np.std(ev["global_gains"]))
        if global_kept:  # per-label thresholds are then judged against the global one
            vs_global = np.asarray(ev["unit_gains_vs_global"])
            base, unit_gain, unit_bar = global_t, vs_global.mean(axis=0), margin * vs_global.std(axis=0)
        extra["global_threshold"] = {"value": global_t, "oob_gain": global_gain, "kept": global_kept}
    keep = (unit_gain > 0) & (unit_gain > unit_bar)
    out, units = _bagged_parameters(ev["fits"], task, keep, base)
    gains = ev["gains"]
    out.update(
        resamples=len(ev["fits"]),
        seed=seed,
        margin=float(margin),
        oob_gain=float(np.mean(gains)),
        oob_gain_ci=[float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))],
        oob_win_rate=float(np.mean(np.asarray(gains) > 0)),
        unit_oob_gain={u: float(g) for u, g in zip(units, unit_gain)},
        kept=[u for u, k in zip(units, keep) if k],
        reverted=[u for u, k in zip(units, keep) if not k],
        **extra,
    )
    return out


def _resample_evidence(z: np.ndarray, y: np.ndarray, task, *, resamples: int, seed: int, min_support: int,
                       binary_metric: str) -> dict[str, list]:
    """Fit the rule on each bootstrap resample and score it against the default rule out of bag.

    Returns the per-resample ``fits``, the objective's ``gains``, the per-unit ``unit_gains`` and,
    for multilabel, the global threshold's gains and the per-label gains over it."""
    kind = task_kind(task)
    n = z.shape[0]
    rng = np.random.default_rng(seed)
    default_pred = decode(z, task)
    probs = probabilities(z, task) if kind.multi_hot else None
    ev: dict[str, list] = {"fits": [], "unit_gains": [], "gains": [], "global_gains": [], "unit_gains_vs_global": []}
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        oob = np.ones(n, dtype=bool)
        oob[idx] = False
        if not oob.any():
            continue
        fit = _fit_rule(z[idx], y[idx], task, min_support=min_support, binary_metric=binary_metric)
        ev["fits"].append(fit)
        pred = decode(z[oob], task, thresholds=fit.get("thresholds"), biases=fit.get("biases"))
        tuned_u = _unit_scores(task, y[oob], pred, binary_metric)
        default_u = _unit_scores(task, y[oob], default_pred[oob], binary_metric)
        if kind.multi_hot:  # the middle level: one pooled threshold for every label
            g = fit["details"]["global_threshold"]
            global_u = _unit_scores(task, y[oob], (probs[oob] >= g).astype(np.int64), binary_metric)
            ev["global_gains"].append(float(np.mean(global_u) - np.mean(default_u)))
            ev["unit_gains_vs_global"].append(tuned_u - global_u)
        ev["unit_gains"].append(np.nan_to_num(tuned_u - default_u, nan=0.0))
        if kind.per_aspect:  # the objective: mean over the aspects that occur
            with np.errstate(all="ignore"):
                ev["gains"].append(float(np.nan_to_num(np.nanmean(tuned_u) - np.nanmean(default_u), nan=0.0)))
        else:
            ev["gains"].append(float(np.mean(tuned_u) - np.mean(default_u)))
    return ev


def _bagged_parameters(fits: list[dict], task, keep: np.ndarray, base: float) -> tuple[dict[str, Any], list[str]]:
    """The median parameters over the resamples, the units not kept set to their default; and the
    unit names (binary: the positive label; multiclass: "all"; multilabel/aspects: the labels)."""
    kind = task_kind(task)
    out: dict[str, Any] = {"thresholds": None, "biases": None}
    if kind.sigmoid:
        t = np.median(np.stack([np.atleast_1d(f["thresholds"]) for f in fits]), axis=0)
        t = np.where(keep, t, base)
        out["thresholds"] = float(t[0]) if kind.is_binary else t
        return out, [task.labels[-1]] if kind.is_binary else list(task.labels)
    b = np.median(np.stack([np.atleast_2d(f["biases"]) for f in fits]), axis=0)
    b = (b - b.mean(axis=-1, keepdims=True)) * keep[:, None]
    out["biases"] = b[0] if kind.is_multiclass else b
    return out, ["all"] if kind.is_multiclass else list(task.labels)


def support_shortfall(y_true: Any, task: Any, *, min_support: int) -> str | None:
    """Why the validation split cannot support a tuned rule of this task, or None when it can.

    - binary: fewer than ``min_support`` validation positives or negatives (at least 1 each): a
      threshold fitted there is a cut between a handful of scores (or between scores of one class
      only) and its out-of-bag "gain" measures that class alone;
    - multiclass: fewer than two classes with ``min_support`` validation examples (biases of the
      others stay 0 anyway, so no bias could be judged against a competitor).

    Multilabel and aspects apply ``min_support`` per label / class inside the fit.
    """
    task = as_task(task)
    kind = task_kind(task)
    need = max(int(min_support), 1)
    y = np.rint(np.asarray(y_true)).astype(np.int64)
    if kind.is_binary:
        pos = int((y.reshape(-1) == 1).sum())
        neg = int(y.size - pos)
        if pos < need or neg < need:
            return (f"the validation split holds {pos} positive(s) ({task.labels[-1]}) and {neg} negative(s); a "
                    f"threshold needs at least {need} of each (--min-support {min_support})")
        return None
    if kind.is_multiclass:
        counts = np.bincount(y.reshape(-1), minlength=len(task.labels))
        if int((counts >= need).sum()) < 2:
            return (f"only {int((counts >= need).sum())} class(es) have at least {need} validation examples "
                    f"(--min-support {min_support}); biases need two to trade off")
    return None


def one_class_labels(y_true: Any, task: Any) -> list[int] | None:
    """Temperature units fitted on one class only: ``[]`` for none, ``None`` when the whole split has
    one class (binary/multiclass: one class present; multilabel: no positive or no negative cell),
    else the multilabel label indices without a positive or without a negative.

    A temperature fitted on one class is degenerate: the likelihood keeps improving as the scores of
    that one class are pushed to the bound (T = 0.01 or 100), which says nothing about calibration.
    """
    task = as_task(task)
    kind = task_kind(task)
    y = np.rint(np.asarray(y_true)).astype(np.int64)
    if kind.single_label:
        return None if np.unique(y.reshape(-1)).size < 2 else []
    if kind.multi_hot:
        y2 = y.reshape(y.shape[0], -1)
        if not y2.any() or y2.all():
            return None
        pos = y2.sum(axis=0)
        return [int(c) for c in np.nonzero((pos == 0) | (pos == y2.shape[0]))[0]]
    return None if np.unique(y).size < 2 else []


def _safe_temperature(z: np.ndarray, y: np.ndarray, task, mode: str, notes: list[str]):
    """``(temperature, calibration summary)`` for ``mode``; never a temperature fitted on one class
    (:func:`one_class_labels`): none for the whole split, 1.0 for such multilabel labels."""
    if mode == "none":
        return None, None
    one_class = one_class_labels(y, task)
    if one_class is None:
        notes.append("temperature not fitted: the validation split holds one class only, and a temperature "
                     "fitted on one class just pushes its scores to the bound; probabilities are left unscaled")
        return None, None
    temp = fit_temperature(z, y, task, per_label=mode == "per_label")
    if one_class and mode == "per_label":
        temp = [1.0 if c in one_class else t for c, t in enumerate(temp)]
        names = ", ".join(str(task.labels[c]) for c in one_class[:8])
        notes.append(f"per-label temperature left at 1 for {len(one_class)} label(s) with no validation positive "
                     f"or no negative: {names}")
    return temp, calibration_summary(z, y, task, temperature=temp)


def _tuned_parameters(scaled: np.ndarray, y: np.ndarray, task, *, min_support: int, binary_metric: str,
                      bootstrap: int, seed: int, margin: float):
    """``(thresholds, biases, details)``: the bagged rule with its out-of-bag evidence, or with
    ``bootstrap=0`` one exact fit on the whole split."""
    fit = _fit_rule(scaled, y, task, min_support=min_support, binary_metric=binary_metric)
    details = dict(fit.get("details", {}))
    thresholds, biases = fit.get("thresholds"), fit.get("biases")
    if bootstrap:
        boot = bootstrap_rule(scaled, y, task, resamples=bootstrap, seed=seed, min_support=min_support,
                              binary_metric=binary_metric, margin=margin)
        thresholds, biases = boot.pop("thresholds"), boot.pop("biases")
    details["bootstrap"] = boot if bootstrap else {"resamples": 0}
    return thresholds, biases, details


@dataclass
class TuneResult:
    """What :func:`tune_decision_rule` found: the rule and the validation evidence."""

    postprocess: PostProcess
    validation_default: dict[str, Any]
    validation_tuned: dict[str, Any]
    calibration: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def gain(self) -> float:
        return self.validation_tuned["macro_f1"] - self.validation_default["macro_f1"]


def tune_decision_rule(
    logits: Any,
    y_true: Any,
    task: Any,
    *,
    split: str = "validation",
    temperature: str = "scalar",
    min_support: int = 5,
    hierarchy_mode: str | None = None,
    binary_metric: str = "macro_f1",
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
) -> TuneResult:
    """Fit temperature, then thresholds/biases, on one validation split; return the rule and evidence.

    Args:
        logits, y_true: the validation predictions (``predictions/validation.npz``).
        task: the TaskSpec.
        split: the name of the split these come from; ``test`` is refused.
        temperature: ``scalar`` (one T), ``per_label`` (multilabel only) or ``none``.
        min_support: the minimum-support fallback (see module docstring).
        hierarchy_mode: multilabel: ``add_parent``/``drop_child``/None, applied after thresholds.
        binary_metric: ``macro_f1`` or ``f1`` for binary tasks.
        bootstrap: resamples of the validation split for the bagged rule and its out-of-bag check
            (:func:`bootstrap_rule`); 0 fits the rule once, exactly, on the whole split.
        seed: seed of the resampling (the result is deterministic for a given seed).
        margin: a part of the rule is kept when its mean out-of-bag gain exceeds ``margin``
            standard deviations of its per-resample gains (:func:`bootstrap_rule`).

    Returns:
        :class:`TuneResult` with the :class:`PostProcess` (``tuned_on=split``) and the validation
        reports under the default and the tuned rule.
    """
    check_tuning_split(split)
    task = as_task(task)
    kind = task_kind(task)
    if temperature not in TEMPERATURE_MODES:
        raise ValueError(f"temperature must be one of {list(TEMPERATURE_MODES)}, got {temperature!r}")
    if temperature == "per_label" and not kind.multi_hot:
        raise ValueError(f"temperature='per_label' is for multilabel tasks only, not {task.kind!r}")
    if hierarchy_mode is not None and hierarchy_mode not in HIERARCHY_MODES:
        raise ValueError(f"hierarchy_mode must be one of {list(HIERARCHY_MODES)} or None, got {hierarchy_mode!r}")
    if hierarchy_mode is not None and not getattr(task, "hierarchy", None):
        raise ValueError("hierarchy_mode needs a multilabel task with a hierarchy (task.json has none)")
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true)
    if z.shape[0] == 0 or z.shape[0] != y.shape[0]:
        raise ValueError(f"logits and y_true must be non-empty with equal rows, got {z.shape} and {y.shape}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0 or bootstrap == 1:
        raise ValueError(f"bootstrap must be 0 (one exact fit) or an integer >= 2, got {bootstrap!r}")
    _check_min_support(min_support)

    y_int = np.rint(y).astype(np.int64)
    if kind.is_binary:
        y_int = y_int.reshape(-1)
    validation_default = classification_report(y_int, PostProcess().decide(z, task), task, y_score=z)

    notes: list[str] = []
    temp, calibration = _safe_temperature(z, y, task, temperature, notes)
    scaled = PostProcess(temperature=temp).scaled(z)
    shortfall = support_shortfall(y_int, task, min_support=min_support)
    if shortfall is not None:  # too little evidence: the default rule, said so (never a fit on noise)
        notes.append(f"decision rule not tuned: {shortfall}; the default rule is kept (threshold 0.5 / bias 0). "
                     "Fix: give the validation split more examples of the rare class (a validation file, or a "
                     "larger data.val_fraction when it is carved from train)")
        thresholds = biases = None
        details: dict[str, Any] = {"bootstrap": {"resamples": 0, "skipped": shortfall}}
    else:
        thresholds, biases, details = _tuned_parameters(scaled, y_int, task, min_support=min_support,
                                                        binary_metric=binary_metric, bootstrap=bootstrap,
                                                        seed=seed, margin=margin)
    if notes:
        details["warnings"] = notes
    rule = PostProcess(
        temperature=temp,
        thresholds=None if thresholds is None else np.asarray(thresholds, dtype=np.float64).tolist(),
        biases=None if biases is None else np.asarray(biases, dtype=np.float64).tolist(),
        hierarchy_mode=hierarchy_mode,
        tuned_on=split,
    )
    validation_tuned = classification_report(y_int, rule.decide(z, task), task, y_score=scaled)
    rule.extra = {
        "min_support": min_support,
        "objective": binary_metric if kind.is_binary else "macro_f1",
        "validation": {
            "default_macro_f1": validation_default["macro_f1"],
            "tuned_macro_f1": validation_tuned["macro_f1"],
            "gain": validation_tuned["macro_f1"] - validation_default["macro_f1"],
        },
        **({"calibration": calibration} if calibration else {}),
        **details,
    }
    return TuneResult(rule, validation_default, validation_tuned, calibration, details)
