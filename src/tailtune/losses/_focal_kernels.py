"""Kernels of the focal losses: value and closed-form gradient in one pass (see :mod:`._fused`).

Each kernel is also the differentiable reference (``need_grad=False`` under autograd), so the fused
path and the reference share every operation. ``scalars`` are floats (eager) or 0-d tensors on
the device (compiled); ``flags`` select branches.

Softmax focal loss of row ``i`` with target ``t``, ``p = softmax(x_i)``, class weights ``a``
(``(C,)``, or per row ``(N, C)``: then ``a`` and ``A`` are row ``i``'s; ``A = sum_c a_c``; all 1 without
``alpha``), smoothing ``eps`` over ``C`` classes and modulator ``M(log p_t)`` with slope
``D = dM / d log p_t``::

    CE = -(1-eps) a_t log p_t - eps/C sum_c a_c log p_c,     L = M * CE
    dL/dx_j = p_j [M ((1-eps) a_t + eps A/C) - CE D] + [j == t] (CE D - M (1-eps) a_t) - a_j M eps/C

with ``M = (1-p_t)^g, D = -g p_t (1-p_t)^(g-1)`` (``g > 0``) and ``M = p_t^|g|, D = |g| M`` (``g < 0``).

Sigmoid focal loss of an element (``s = sigmoid(x)``, ``sn = 1 - s``, BCE ``B`` with smoothed
target ``ys``, ``c = 1 + (pos_weight - 1) ys``, ``base = 1 - p_t`` (``g > 0``) or ``p_t``)::

    L = k base^|g| B,   dL/dx = k base^|g| ((1 - ys) - c sn + g B (1 - 2y) s sn / base)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tailtune.losses._fused import elementwise_denominator, reduce_rows, row_scale


def _modulator(logp_t: torch.Tensor, g, focus: str, need_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The modulator ``M`` and, with ``need_grad``, its slope ``D = dM / d log p_t``."""
    tiny = torch.finfo(logp_t.dtype).tiny
    if focus == "pos":
        one_minus = -torch.expm1(logp_t)
        base = one_minus.clamp_min(tiny)  # the derivative of base**g stays finite at p_t == 1
        m = base.pow(g)
        if not need_grad:
            return m, None
        # where base was clamped the reference's gradient through clamp_min is 0
        return m, torch.where(one_minus >= tiny, -g * m / base * torch.exp(logp_t), 0.0)
    m = torch.exp(-g * logp_t)  # p_t ** |g| for g < 0
    return m, (-g * m if need_grad else None)


def softmax_focal_kernel(x, target, alpha, sw, scalars, *, ignore_index: int, reduction: str, focus: str | None,
                         smoothing: bool, need_grad: bool):
    """Softmax focal loss (``focus``: ``"pos"`` g > 0, ``"neg"`` g < 0, ``None`` g = 0, i.e. CE)."""
    g, eps = scalars
    c = x.shape[1]
    logp = F.log_softmax(x, dim=1)
    valid = target != ignore_index
    t = torch.where(valid, target, 0)
    logp_t = logp.gather(1, t.unsqueeze(1)).squeeze(1)
    a_t = None if alpha is None else (alpha[t] if alpha.ndim == 1 else alpha.gather(1, t.unsqueeze(1)).squeeze(1))
    ce = -logp_t if a_t is None else -logp_t * a_t
    if smoothing:
        ce = (1.0 - eps) * ce - (eps / c) * (logp.sum(dim=1) if alpha is None else (logp * alpha).sum(dim=1))
    m = d = None
    if focus is not None:
        m, d = _modulator(logp_t, g, focus, need_grad)
        rows = ce * m
    else:
        rows = ce
    rows = torch.where(valid, rows, 0.0)
    vw = valid.to(x.dtype) if a_t is None else torch.where(valid, a_t, 0.0)
    denom = (vw if sw is None else vw * sw) if reduction == "mean" else None
    out, scale = reduce_rows(rows, sw, denom, reduction)
    if not need_grad:
        return out, None
    return out, _softmax_focal_grad(x, logp, t, valid, a_t, alpha, ce, m, d, eps, smoothing, scale)


# Uncompiled, the closed form costs one more pass over (N, C) than autograd's fused log_softmax
# backward: measured on the 2-core CPU (process time, N=4096, C=90) 1.3-1.5 ms against 0.9 ms for
# the reference, so "auto" runs the reference there; compiled (CUDA) it is one generated kernel.
softmax_focal_kernel.eager_pays = False


def _softmax_focal_grad(x, logp, t, valid, a_t, alpha, ce, m, d, eps, smoothing: bool, scale):
    c = x.shape[1]
    w = valid.to(x.dtype) * scale  # d out / d row, zero on ignored rows
    at = 1.0 if a_t is None else a_t
    big_a = float(c) if alpha is None else alpha.sum(dim=-1)  # a number, or per row for an (N, C) table
    keep = 1.0 if not smoothing else 1.0 - eps
    mm = 1.0 if m is None else m
    coef_p = mm * (keep * at + (eps * big_a / c if smoothing else 0.0))
    coef_t = -mm * keep * at
    if d is not None:
        coef_p = coef_p - ce * d
        coef_t = coef_t + ce * d
    grad = torch.exp(logp).mul_((coef_p * w).unsqueeze(1))  # no autograd here: in place is safe
    if torch.compiler.is_compiling():  # element-wise, fused into the kernel above
        onehot = torch.arange(c, device=x.device).unsqueeze(0) == t.unsqueeze(1)
        grad = grad + torch.where(onehot, (coef_t * w).unsqueeze(1), 0.0)
    else:  # eager: touch only the N target entries
        grad = grad.scatter_add_(1, t.unsqueeze(1), (coef_t * w).unsqueeze(1))
    if smoothing:
        coef_e = (mm * (eps / c) * w).unsqueeze(1)
        grad = grad.sub_(coef_e) if alpha is None else grad.addcmul_(coef_e, alpha if alpha.ndim == 2 else alpha.unsqueeze(0), value=-1.0)
    return grad


def sigmoid_focal_kernel(x, y, pos_weight, alpha, weight, sw, scalars, *, reduction: str, focus: str | None,
                         smoothing: bool, need_grad: bool):
    """Element-wise sigmoid focal loss, rows summed over labels, then the reduction contract."""
    g, eps = scalars
    reuse = not torch.is_grad_enabled()  # the fused path records no graph: reuse buffers (fewer allocations)
    ys = y.mul(1.0 - 2.0 * eps).add_(eps) if smoothing else y  # y (1 - eps) + (1 - y) eps
    one_minus_ys = 1.0 - ys
    neg_x = -x
    s, sn = torch.sigmoid(x), torch.sigmoid(neg_x)
    sp = F.softplus(neg_x)  # -log sigmoid(x)
    c = None if pos_weight is None else ((pos_weight - 1.0) * ys).add_(1.0)
    if c is not None:
        sp = sp.mul_(c) if reuse else sp * c
    b = torch.addcmul(sp, one_minus_ys, x)  # BCE(x, ys; pos_weight)
    base = m = None
    if focus is not None:
        base = torch.lerp(s, sn, y) if focus == "pos" else torch.lerp(sn, s, y)  # 1 - p_t  /  p_t
        tiny = torch.finfo(x.dtype).tiny
        base = base.clamp_min_(tiny) if reuse else base.clamp_min(tiny)
        m = base.pow(abs(g))
        el = b * m
    else:
        el = b
    k = None
    if alpha is not None:
        k = torch.addcmul(1.0 - alpha, y, 2.0 * alpha - 1.0)  # alpha y + (1 - alpha)(1 - y)
    if weight is not None:
        k = weight if k is None else k * weight
    if k is not None:
        el = el.mul_(k) if reuse and focus is not None else el * k
    rows = el.sum(dim=1) if x.ndim == 2 else el
    out, scale = reduce_rows(rows, sw, elementwise_denominator(x, sw, reduction), reduction)
    if not need_grad:
        return out, None
    # only the fused path (no autograd recording) gets here: in-place operations are safe
    grad = one_minus_ys.sub_(sn if c is None else c.mul_(sn))  # dB/dx
    if focus is not None:
        slope = torch.mul(s, sn).div_(base).mul_(b).mul_(y * (-2.0 * g) + g)  # g B (1 - 2y) s sn / base
        grad = grad.add_(slope).mul_(m)
    if k is not None:
        grad = grad.mul_(k)
    return out, grad.mul_(row_scale(scale, x))
