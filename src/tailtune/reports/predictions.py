"""From saved logits (``predictions/<split>.npz``) to what a report plots: probabilities, decisions,
confusion matrices, precision-recall curves and reliability (calibration) bins.

Decisions follow ``postprocess.json``: ``temperature`` divides the logits, ``biases`` are added to
softmax logits, ``thresholds`` apply to sigmoid probabilities (binary/multilabel); without them
the default rule applies (argmax; probability >= 0.5).

Example:
    >>> import numpy as np
    >>> p = probabilities(np.array([[2.0, 0.0], [0.0, 1.0]]), "multiclass")
    >>> decide(p, "multiclass").tolist()
    [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailtune.data.kinds import TaskKind, task_kind

#: equal-width confidence bins of the reliability diagram
RELIABILITY_BINS = 10


def _temperature(logits: np.ndarray, temperature) -> np.ndarray:
    if temperature is None:
        return logits
    t = np.asarray(temperature, dtype=np.float64)
    if t.ndim == 0 or t.size == 1:
        return logits / float(t.reshape(-1)[0])
    if t.size == logits.shape[-1]:
        return logits / t.reshape(1, -1)
    return logits


def probabilities(logits: np.ndarray, kind: str | TaskKind, *, num_classes: int | None = None, temperature=None) -> np.ndarray:
    """Probabilities per kind.

    Shape:
        binary: logits (N,) or (N, 1) -> (N,) positive-class probability;
        multiclass: (N, C) -> (N, C) softmax; multilabel: (N, C) -> (N, C) sigmoid;
        aspects: (N, A*K) -> (N, A, K) softmax per aspect (``num_classes`` = K = polarities + 1).
    """
    kind = task_kind(kind)
    z = _temperature(np.asarray(logits, dtype=np.float64), temperature)
    if kind.is_binary:
        return 1.0 / (1.0 + np.exp(-z.reshape(len(z), -1)[:, -1]))
    if kind.multi_hot:
        return 1.0 / (1.0 + np.exp(-z))
    if kind.per_aspect:
        if not num_classes:
            raise ValueError("num_classes (polarities + 1) is needed for kind 'aspects'")
        z = z.reshape(len(z), -1, num_classes)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def decide(probs: np.ndarray, kind: str | TaskKind, *, thresholds=None, biases=None) -> np.ndarray:
    """Decisions from :func:`probabilities` (binary (N,), multiclass (N,), multilabel (N, C), aspects (N, A))."""
    kind = task_kind(kind)
    if kind.sigmoid:
        t = 0.5 if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        if kind.is_binary:
            t = float(np.asarray(t).reshape(-1)[0])
        return (probs >= t).astype(int)
    if biases is not None:
        b = np.asarray(biases, dtype=np.float64)
        if b.size == probs.shape[-1]:
            return np.argmax(np.log(np.clip(probs, 1e-12, 1.0)) + b, axis=-1)
    return np.argmax(probs, axis=-1)


@dataclass
class Reliability:
    """Reliability diagram data: per bin mean confidence, accuracy and count; ECE = sum n_b/N |acc_b - conf_b|."""

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float


def reliability(confidence: np.ndarray, correct: np.ndarray, *, bins: int = RELIABILITY_BINS) -> Reliability:
    """Bin ``confidence`` (probability of the predicted outcome) and compare with ``correct`` (0/1).

    Example:
        >>> r = reliability(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 1, 1, 0]))
        >>> round(r.ece, 3)
        0.1
    """
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=np.float64).reshape(-1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(float)
    s_conf = np.bincount(idx, weights=conf, minlength=bins)
    s_ok = np.bincount(idx, weights=ok, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mc = np.where(count > 0, s_conf / count, np.nan)
        ma = np.where(count > 0, s_ok / count, np.nan)
    n = max(count.sum(), 1.0)
    ece = float(np.nansum(count / n * np.abs(ma - mc)))
    return Reliability(edges, mc, ma, count, ece)


@dataclass
class PredictionView:
    """Everything the report draws from one split's predictions."""

    kind: str
    labels: list[str]            # one-vs-rest curve / confusion axis names
    y_true: np.ndarray           # flattened class indices (multiclass/binary/aspects) or multi-hot (multilabel)
    y_pred: np.ndarray
    scores: np.ndarray           # (M, K) one-vs-rest scores aligned with ``labels``
    onehot: np.ndarray           # (M, K) 0/1 truth aligned with ``scores``
    confusion: np.ndarray | None  # (K, K) counts, rows = truth (None for multilabel)
    reliability: Reliability
    reliability_calibrated: Reliability | None
    n: int


def _reliability_inputs(probs, y, kind: TaskKind):
    if kind.is_binary:
        conf = np.where(probs >= 0.5, probs, 1 - probs)
        correct = (probs >= 0.5).astype(int) == y
    elif kind.multi_hot:
        p = probs.reshape(-1)
        conf = np.where(p >= 0.5, p, 1 - p)
        correct = (p >= 0.5).astype(int) == y.reshape(-1)
    else:
        flat = probs.reshape(-1, probs.shape[-1])
        conf = flat.max(axis=1)
        correct = flat.argmax(axis=1) == y.reshape(-1)
    return conf, correct


def prediction_view(logits, targets, task: dict, postprocess: dict | None = None) -> PredictionView:
    """Build a :class:`PredictionView` from a split's logits and encoded targets (see the module doc)."""
    kind = task_kind(task["kind"])
    pp = postprocess or {}
    polarities = list(task.get("polarities") or [])
    k = len(polarities) + 1 if kind.per_aspect else None
    raw = probabilities(logits, kind, num_classes=k)
    temp = pp.get("temperature")
    cal = probabilities(logits, kind, num_classes=k, temperature=temp) if temp is not None else None
    probs = cal if cal is not None else raw
    y = np.asarray(targets)
    pred = decide(probs, kind, thresholds=pp.get("thresholds"), biases=pp.get("biases"))
    labels = [str(x) for x in task.get("labels") or []]
    if kind.is_binary:
        y = y.reshape(-1).astype(int)
        names = labels or ["0", "1"]
        scores = np.stack([1 - probs, probs], axis=1)
        onehot = np.stack([1 - y, y], axis=1)
        conf = _confusion(y, pred, 2)
    elif kind.is_multiclass:
        y = y.reshape(-1).astype(int)
        c = probs.shape[1]
        names = labels or [str(i) for i in range(c)]
        scores, onehot = probs, np.eye(c, dtype=int)[y]
        conf = _confusion(y, pred, c)
    elif kind.multi_hot:
        y = y.reshape(len(y), -1).astype(int)
        names = labels or [str(i) for i in range(y.shape[1])]
        scores, onehot, conf = probs, y, None
    else:
        names = polarities + ["absent"]
        y = y.reshape(len(y), -1).astype(int)
        flat_p = probs.reshape(-1, k)
        yf = y.reshape(-1)
        scores, onehot = flat_p, np.eye(k, dtype=int)[yf]
        conf = _confusion(yf, pred.reshape(-1), k)
    rc, ok = _reliability_inputs(raw, y, kind)
    rel = reliability(rc, ok)
    rel_cal = None
    if cal is not None:
        cc, okc = _reliability_inputs(cal, y, kind)
        rel_cal = reliability(cc, okc)
    return PredictionView(kind.name, names, y, pred, scores, onehot, conf, rel, rel_cal, int(len(np.asarray(targets))))


def _confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=int)
    np.add.at(m, (y.astype(int), np.asarray(pred).astype(int).reshape(-1)), 1)
    return m


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, kind: str | TaskKind, num_classes: int) -> float:
    """Macro-F1 of decisions (what the paired bootstrap resamples), ``zero_division=0``, as scikit-learn's
    ``f1_score(average="macro", labels=range(K))``; multilabel: averaged over labels.

    Example:
        >>> macro_f1(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), "multiclass", 3)
        0.7777777777777777
    """
    if task_kind(kind).multi_hot:
        yt, yp = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
        tp = (yt & yp).sum(axis=0)
        fp = (~yt & yp).sum(axis=0)
        fn = (yt & ~yp).sum(axis=0)
    else:
        yt, yp = np.ravel(y_true).astype(int), np.ravel(y_pred).astype(int)
        tp = np.bincount(yt[yt == yp], minlength=num_classes)[:num_classes]
        fp = np.bincount(yp, minlength=num_classes)[:num_classes] - tp
        fn = np.bincount(yt, minlength=num_classes)[:num_classes] - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(len(tp), dtype=np.float64), where=denom > 0)
    return float(f1.mean())


def pr_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One-vs-rest precision-recall curve and average precision, as scikit-learn computes them.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over decreasing thresholds (no interpolation).

    Returns:
        ``(precision, recall, ap)``; the curve starts at recall 0 / precision 1.

    Example:
        >>> p, r, ap = pr_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        >>> round(ap, 4)
        0.8333
    """
    y = np.asarray(y_true).astype(np.float64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    idx = np.r_[np.where(np.diff(s))[0], y.size - 1]
    tp = np.cumsum(y)[idx]
    fp = idx + 1 - tp
    if tp[-1] == 0:
        return np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.0
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return np.r_[1.0, precision], np.r_[0.0, recall], ap
