"""Fused loss kernels: the one place that decides how a loss with a closed-form gradient runs.

A *kernel* is a pure function ``kernel(x, *aux, scalars, *, need_grad, **flags) -> (out, dx)``
written in plain torch operations: ``out`` is the loss under its reduction, ``dx`` (when
``need_grad``) the closed-form derivative of ``out`` with respect to ``x``, computed in the same
pass (``d out / d x`` for a scalar ``out``; for ``"none"`` the per-row derivative, which the
upstream gradient scales row by row). ``kernel(..., need_grad=False)[0]`` is also the
differentiable *reference*: the same operations under autograd.

:func:`run` chooses, in this order:

1. the reference under autograd when anything other than ``x`` needs a gradient (soft targets for
   distillation, learnable class weights), under ``torch.compile`` tracing (the outer compiler
   fuses the reference itself), under functorch transforms, for an empty batch, or in mode
   ``"reference"``;
2. otherwise :class:`FusedLoss`, a custom autograd Function whose backward is one multiplication
   ``dx * grad``; its kernel is compiled with ``torch.compile`` on CUDA (one or two generated
   kernels for the forward and the gradient together) and runs eagerly elsewhere, with the same
   operations, so both give the reference's values up to rounding.

Second-order terms (gradient penalties, ``create_graph=True``) are exact: the backward then
differentiates the reference instead of returning the stored gradient.

Mode: ``TAILTUNE_LOSS_KERNELS`` = ``auto`` (default: compile on CUDA when Triton is present; elsewhere
the eager kernel, or the reference for a kernel marked ``eager_pays = False``, i.e. one whose
uncompiled closed form measured no faster than autograd) | ``eager`` | ``compile`` (also on CPU,
needs a C++ compiler; used by the tests) | ``reference``; or :func:`set_kernel_mode` at run time.
Nothing is compiled at import time.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from collections.abc import Callable

import torch

from tailtune.errors import did_you_mean

KERNEL_MODES: tuple[str, ...] = ("auto", "eager", "compile", "reference")
_ENV = "TAILTUNE_LOSS_KERNELS"
_state: dict = {"mode": None, "compiled": {}, "broken": set(), "seen": set(), "triton": None}
_SCALARS: OrderedDict = OrderedDict()
_SCALAR_CACHE = 64


def _check_mode(mode: str, source: str) -> str:
    if mode not in KERNEL_MODES:
        raise ValueError(f"{source}={mode!r} is not one of {list(KERNEL_MODES)}{did_you_mean(str(mode), KERNEL_MODES)}")
    return mode


def kernel_mode() -> str:
    """The active mode: :func:`set_kernel_mode`, else ``$TAILTUNE_LOSS_KERNELS``, else ``"auto"``."""
    if _state["mode"] is None:
        _state["mode"] = _check_mode(os.environ.get(_ENV, "auto").strip().lower() or "auto", _ENV)
    return _state["mode"]


def set_kernel_mode(mode: str | None) -> str:
    """Set the mode (``None``: back to the environment / ``"auto"``); returns the previous mode."""
    previous = kernel_mode()
    _state["mode"] = None if mode is None else _check_mode(mode, "mode")
    return previous


def _has_triton() -> bool:
    if _state["triton"] is None:
        try:
            from torch.utils._triton import has_triton

            _state["triton"] = bool(has_triton())
        except Exception:  # noqa: BLE001 - any import problem means "no Triton"
            _state["triton"] = False
    return _state["triton"]


def _wants_compile(x: torch.Tensor) -> bool:
    mode = kernel_mode()
    if mode == "compile":
        return True
    return mode == "auto" and x.is_cuda and _has_triton()


def _fused_allowed(kernel: Callable, x: torch.Tensor, aux: tuple) -> bool:
    mode = kernel_mode()
    if mode == "reference" or x.numel() == 0 or torch.compiler.is_compiling():
        return False
    if mode == "auto" and not getattr(kernel, "eager_pays", True) and not _wants_compile(x):
        return False  # uncompiled, this kernel is no faster than autograd through the same operations
    functorch_active = getattr(torch._C, "_are_functorch_transforms_active", None)
    if functorch_active is not None and functorch_active():
        return False
    if torch.is_grad_enabled():
        return not any(isinstance(a, torch.Tensor) and a.requires_grad for a in aux)
    return True


def _device_scalars(scalars: tuple, ref: torch.Tensor) -> tuple:
    """The float ``scalars`` as 0-d tensors on ``ref``'s device: graph inputs, so a new gamma (a
    schedule changes it every step) reuses the compiled kernel instead of recompiling it."""
    key = (scalars, ref.device, ref.dtype)
    hit = _SCALARS.get(key)
    if hit is None:  # torch.full launches a fill: no host-device synchronisation (a copy would wait)
        hit = tuple(torch.full((), v, dtype=ref.dtype, device=ref.device) for v in scalars)
        _SCALARS[key] = hit
        if len(_SCALARS) > _SCALAR_CACHE:
            _SCALARS.popitem(last=False)
    else:
        _SCALARS.move_to_end(key)
    return hit


def _compiled(kernel: Callable) -> Callable:
    fn = _state["compiled"].get(kernel)
    if fn is None:
        fn = torch.compile(kernel, fullgraph=True, dynamic=True)
        _state["compiled"][kernel] = fn
    return fn


def _signature(kernel, x, aux, flags, need_grad) -> tuple:
    pattern = tuple(None if a is None else (a.dtype, a.ndim, tuple(min(s, 2) for s in a.shape)) for a in aux)
    return (kernel, x.device.type, x.dtype, tuple(min(s, 2) for s in x.shape), pattern,
            tuple(sorted(flags.items())), need_grad)


def _call_compiled(kernel, x, aux, scalars, flags, need_grad):
    fn = _compiled(kernel)
    args = (x, *aux, _device_scalars(scalars, x))
    sig = _signature(kernel, x, aux, flags, need_grad)
    if sig in _state["seen"]:
        return fn(*args, need_grad=need_grad, **flags)
    # a new variant compiles once; allow more variants per kernel than dynamo's default of 8
    config = torch._dynamo.config
    limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    with config.patch(**{limit: max(64, getattr(config, limit))}):
        out = fn(*args, need_grad=need_grad, **flags)
    _state["seen"].add(sig)
    return out


def compute(kernel: Callable, x: torch.Tensor, aux: tuple, scalars: tuple, flags: dict, need_grad: bool):
    """Run ``kernel`` compiled where the mode says so, else eagerly (no autograd here)."""
    if _wants_compile(x) and kernel not in _state["broken"]:
        try:
            return _call_compiled(kernel, x, aux, scalars, flags, need_grad)
        except Exception as exc:  # noqa: BLE001 - a compiler failure must not stop training
            result = kernel(x, *aux, scalars, need_grad=need_grad, **flags)  # re-raises a user error
            _state["broken"].add(kernel)
            warnings.warn(f"tailtune: torch.compile failed for the loss kernel {kernel.__name__} "
                          f"({type(exc).__name__}: {str(exc)[:200]}); using the eager kernel (same values)",
                          RuntimeWarning, stacklevel=3)
            return result
    return kernel(x, *aux, scalars, need_grad=need_grad, **flags)


def reduce_rows(rows: torch.Tensor, sw, denom_i, reduction: str):
    """The reduction contract inside a kernel: ``(out, scale)`` with ``scale = d out / d rows``
    (a number, or per row; the upstream gradient is not included). ``denom_i``: the per-row
    ``"mean"`` weights (summed here) or their total as a number; a zero total divides by 1."""
    if sw is not None:
        rows = rows * sw
    if reduction == "none":
        return rows, (1.0 if sw is None else sw)
    total = rows.sum()
    if reduction == "sum":
        return total, (1.0 if sw is None else sw)
    d = denom_i.sum() if isinstance(denom_i, torch.Tensor) else denom_i
    if isinstance(d, torch.Tensor):
        d = torch.where(d > 0, d, torch.ones_like(d))
    else:
        d = d if d > 0 else 1.0
    return total / d, (1.0 if sw is None else sw) / d


def elementwise_denominator(x: torch.Tensor, sw, reduction: str):
    """``"mean"`` denominator of an element-wise loss: all ``N*C`` elements (``C * sum(sw)`` with
    sample weights), as :func:`tailtune.losses._base.reduce_elementwise`."""
    if reduction != "mean":
        return None
    labels = x.shape[1] if x.ndim == 2 else 1
    return x.shape[0] * labels if sw is None else sw * labels


def row_scale(scale, x: torch.Tensor):
    """``scale`` from :func:`reduce_rows` shaped to broadcast against the elements ``x``."""
    if isinstance(scale, torch.Tensor) and scale.ndim == 1 and x.ndim == 2:
        return scale.unsqueeze(1)
    return scale


class FusedLoss(torch.autograd.Function):
    """Loss value and its closed-form gradient in one forward pass; backward multiplies."""

    @staticmethod
    def forward(ctx, kernel, scalars, flags, need_grad, x, *aux):
        out, dx = compute(kernel, x, aux, scalars, flags, need_grad)
        ctx.kernel, ctx.scalars, ctx.flags, ctx.n_aux = kernel, scalars, flags, len(aux)
        ctx.save_for_backward(x, *aux, dx)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, *rest = ctx.saved_tensors
        aux, dx = tuple(rest[:-1]), rest[-1]
        if torch.is_grad_enabled():
            # create_graph=True: differentiate the reference, so second-order terms are kept
            with torch.enable_grad():
                out, _ = ctx.kernel(x, *aux, ctx.scalars, need_grad=False, **ctx.flags)
            (gx,) = torch.autograd.grad(out, x, grad, create_graph=True)
        elif grad.ndim == 0 and grad.device.type == "cpu" and grad.item() == 1.0:
            gx = dx  # the usual loss.backward() on the CPU (where reading the value costs no sync): no pass
        else:
            gx = dx * (grad if grad.ndim == 0 else grad.reshape(grad.shape + (1,) * (dx.ndim - grad.ndim)))
        return (None, None, None, None, gx) + (None,) * ctx.n_aux


def run(kernel: Callable, x: torch.Tensor, aux: tuple, scalars: tuple, **flags) -> torch.Tensor:
    """The loss ``kernel`` computes, with gradients for every input that needs one.

    Args:
        kernel: see the module docstring; ``x`` is its only argument with a fused gradient.
        aux: the other tensor arguments (or ``None``), in the kernel's order.
        scalars: float hyper-parameters (tensors on the device when compiled).
        flags: hashable options (reduction, branches); a compiled kernel specialises on them.
    """
    scalars = tuple(float(s) for s in scalars)
    if not _fused_allowed(kernel, x, aux):
        return kernel(x, *aux, scalars, need_grad=False, **flags)[0]
    need_grad = torch.is_grad_enabled() and x.requires_grad
    return FusedLoss.apply(kernel, scalars, flags, need_grad, x, *aux)
