"""Temperature scaling (Guo et al., ICML 2017, "On Calibration of Modern Neural Networks").

One scalar ``T > 0`` divides the logits; it is fitted on the validation split by minimising the
negative log-likelihood

.. math:: T^* = \\arg\\min_T \\; -\\frac{1}{M} \\sum_m \\log \\sigma(z_m / T)_{y_m}

with L-BFGS on ``u = log T`` (unconstrained, analytic gradient). ``sigma`` is the softmax
(multiclass, and per aspect cell for aspects) or the sigmoid (binary, and per (text, label) cell for
multilabel). For multilabel, ``per_label=True`` fits one temperature per label (the NLL is
separable, so one L-BFGS call over the vector solves all labels at once). Temperature scaling never
changes an argmax, and with a 0.5 threshold never changes a sigmoid decision; it changes
probabilities, ECE, Brier, and the thresholds tuned afterwards.

Shape:
    ``logits``: ``(N, num_outputs)``; ``targets``: encoded as in docs/architecture.md.

Example:
    >>> import numpy as np
    >>> from tailtune.data import TaskSpec
    >>> task = TaskSpec(kind="binary", labels=["no", "yes"])
    >>> z = np.array([4.0, -4.0, 4.0, -4.0, 4.0]); y = np.array([1, 0, 0, 0, 1])
    >>> fit_temperature(z[:, None], y, task) > 1  # over-confident logits are softened
    True

References:
    Guo, Pleiss, Sun, Weinberger. On Calibration of Modern Neural Networks. ICML 2017.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from tailtune.data.kinds import task_kind
from tailtune.metrics import confidence_pairs, expected_calibration_error, probabilities, reliability_diagram
from tailtune.metrics._task import as_task

__all__ = ["calibration_summary", "fit_temperature", "negative_log_likelihood"]

_LOG_T_BOUNDS = (np.log(0.01), np.log(100.0))


def _prepare(logits: Any, targets: Any, task) -> tuple[str, np.ndarray, np.ndarray]:
    """Return (family, z, y): sigmoid cells (M, L) with y (M, L), or softmax rows (M, K) with y (M,)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets)
    info = task_kind(task)
    if info.is_binary:
        return "sigmoid", z.reshape(-1, 1), np.rint(y).astype(np.float64).reshape(-1, 1)
    if info.multi_hot:
        return "sigmoid", z, np.rint(y).astype(np.float64)
    k = info.target_classes(task)
    return "softmax", z.reshape(-1, k), np.rint(y).astype(np.int64).reshape(-1)


def _nll_and_grad(u: np.ndarray, family: str, z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    t = np.exp(u)
    s = z / t  # (M, L) / (L,) or scalar
    if family == "sigmoid":
        # BCE with logits, stable: max(s, 0) - s*y + log(1 + exp(-|s|))
        loss_cells = np.maximum(s, 0) - s * y + np.log1p(np.exp(-np.abs(s)))
        p = 0.5 * (1 + np.tanh(0.5 * s))
        g_cells = (p - y) * (-s)  # d loss / d u
        if u.size == 1:
            return float(loss_cells.mean()), np.array([g_cells.mean()])
        m = z.shape[0]
        return float(loss_cells.mean(axis=0).sum()), g_cells.sum(axis=0) / m
    smax = s.max(axis=1, keepdims=True)
    lse = smax[:, 0] + np.log(np.exp(s - smax).sum(axis=1))
    loss = lse - s[np.arange(len(y)), y]
    p = np.exp(s - lse[:, None])
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    g = ((p - onehot) * (-s)).sum(axis=1)
    return float(loss.mean()), np.array([g.mean()])


def negative_log_likelihood(
    logits: Any, targets: Any, task: Any, *, temperature: float | list[float] | None = None
) -> float:
    """Mean NLL per cell: BCE over (text, label) cells for binary/multilabel, softmax NLL per
    text (multiclass) or per (text, aspect) cell (aspects)."""
    task = as_task(task)
    family, z, y = _prepare(logits, targets, task)
    t = np.asarray(1.0 if temperature is None else temperature, dtype=np.float64)
    s = z / t
    if family == "sigmoid":
        return float(np.mean(np.maximum(s, 0) - s * y + np.log1p(np.exp(-np.abs(s)))))
    smax = s.max(axis=1, keepdims=True)
    lse = smax[:, 0] + np.log(np.exp(s - smax).sum(axis=1))
    return float(np.mean(lse - s[np.arange(len(y)), y]))


def fit_temperature(
    logits: Any, targets: Any, task: Any, *, per_label: bool = False, max_iter: int = 200
) -> float | list[float]:
    """Fit the temperature minimising validation NLL; returns a float, or a list of C floats.

    Args:
        logits: validation logits ``(N, num_outputs)``.
        targets: validation targets (encoded).
        task: the TaskSpec.
        per_label: multilabel only: one temperature per label.
        max_iter: L-BFGS iterations.

    The search is bounded to ``T`` in [0.01, 100].
    """
    task = as_task(task)
    if per_label and not task_kind(task).multi_hot:
        raise ValueError(f"per_label temperatures are for multilabel tasks only, not {task.kind!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    family, z, y = _prepare(logits, targets, task)
    if z.shape[0] == 0:
        raise ValueError("fit_temperature needs at least one example, got 0")
    n = z.shape[1] if per_label else 1
    res = minimize(
        _nll_and_grad,
        np.zeros(n),
        args=(family, z, y),
        jac=True,
        method="L-BFGS-B",
        bounds=[_LOG_T_BOUNDS] * n,
        options={"maxiter": max_iter},
    )
    t = np.exp(res.x)
    return [float(v) for v in t] if per_label else float(t[0])


def calibration_summary(
    logits: Any, targets: Any, task: Any, *, temperature: float | list[float] | None, n_bins: int = 15
) -> dict[str, Any]:
    """NLL, ECE (fixed and adaptive bins) and reliability-diagram data before and after ``temperature``."""
    task = as_task(task)
    out: dict[str, Any] = {"temperature": temperature, "n_bins": n_bins}
    for tag, t in (("before", None), ("after", temperature)):
        probs = probabilities(logits, task, temperature=t)
        correct, conf = confidence_pairs(targets, probs, task)
        out[f"nll_{tag}"] = negative_log_likelihood(logits, targets, task, temperature=t)
        out[f"ece_{tag}"] = expected_calibration_error(correct, conf, n_bins=n_bins)
        out[f"ece_adaptive_{tag}"] = expected_calibration_error(correct, conf, n_bins=n_bins, strategy="quantile")
        out[f"reliability_{tag}"] = reliability_diagram(correct, conf, n_bins=n_bins)
    return out
