"""``train.compile`` / ``train.cuda_graphs``: the classifier's training forward through ``torch.compile``.

:func:`install` replaces the classifier's ``forward`` (an instance attribute: parameter names,
``state_dict``, checkpoints, ``model/`` and resume are unchanged) by a :class:`CompiledForward`
dispatcher:

- in training mode with gradients on, it calls ``torch.compile(forward, dynamic=True)``: one
  graph for every padded width and batch size (so the first step compiles, later shapes do not),
  and with ``cuda_graphs`` on a GPU ``mode="reduce-overhead"``: the forward and its backward
  replay as CUDA graphs, one recording per bucketed shape (``train.pad_buckets`` keeps those few);
- evaluation and prediction run the eager forward (their outputs are kept across batches, which
  CUDA graph replays would overwrite, and they are a small share of a run);
- the loss stays eager (any loss part, scheduled parameters, per-sample weights).

Compile time is bounded and reported (:class:`CompileStats`): the calls that compiled are timed
(the step's backward, where AOTAutograd compiles the backward graph, is added by the step loop);
the first compilation always runs, and once the compiling calls have taken ``compile_budget_s``
seconds, calls run under ``torch.compiler.set_stance("eager_on_recompile")``: an input the
compiled graphs do not cover runs eagerly instead of compiling again (``0``: compile once, never
again). If the very first compilation fails (no C++ compiler, an
unsupported encoder), training continues eagerly and the warning names the cause.
"""

from __future__ import annotations

import contextlib
import logging
import time

import torch

logger = logging.getLogger(__name__)

__all__ = ["CompileStats", "CompiledForward", "install"]


def _compile_count() -> int:
    """Frames dynamo has compiled so far in this process (increments when a call compiles)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["frames"]["total"])
    except Exception:  # pragma: no cover - a torch without the counters
        return 0


class CompileStats:
    """What compilation cost: ``compile_s`` (seconds of the calls and steps that compiled),
    ``compilations``, ``compiled_calls``, ``eager_calls`` (training calls that ran eagerly: after a
    failed first compilation), ``budget_exhausted`` and ``error``."""

    def __init__(self, budget_s: float):
        self.budget_s = float(budget_s)
        self.compile_s = 0.0
        self.compilations = 0
        self.compiled_calls = 0
        self.eager_calls = 0
        self.error: str | None = None
        self.pending_forward_s: float | None = None  # forward share of a call that compiled

    @property
    def budget_exhausted(self) -> bool:
        return self.compile_s >= self.budget_s

    def add_step(self, step_seconds: float) -> None:
        """The step loop's report on a micro-step whose forward compiled: its backward (and loss)
        time joins the forward's compile time."""
        if self.pending_forward_s is not None:
            self.compile_s += max(step_seconds - self.pending_forward_s, 0.0)
            self.pending_forward_s = None

    def as_dict(self) -> dict:
        return {"compile_s": round(self.compile_s, 3), "compilations": self.compilations,
                "compiled_calls": self.compiled_calls, "eager_calls": self.eager_calls,
                "budget_s": self.budget_s, "budget_exhausted": self.budget_exhausted, "error": self.error}


class CompiledForward:
    """The dispatcher :func:`install` puts in place of a module's ``forward`` (module docstring)."""

    def __init__(self, module: torch.nn.Module, *, backend: str, cuda_graphs: bool, budget_s: float):
        self.module = module
        self.eager = module.forward
        self.cuda_graphs = bool(cuda_graphs) and backend == "inductor" and torch.cuda.is_available()
        kwargs = {"dynamic": True, "backend": backend}
        if self.cuda_graphs:
            kwargs["mode"] = "reduce-overhead"
        self.compiled = torch.compile(self.eager, **kwargs)
        self.stats = CompileStats(budget_s)
        self.failed = False
        if cuda_graphs and not self.cuda_graphs:
            logger.info("train.cuda_graphs: no CUDA device (or backend %r); compiling without CUDA graphs", backend)

    def _stance(self):
        if self.stats.compilations and self.stats.budget_exhausted and hasattr(torch.compiler, "set_stance"):
            return torch.compiler.set_stance("eager_on_recompile")
        return contextlib.nullcontext()

    def __call__(self, *args, **kwargs):
        if not self.module.training or not torch.is_grad_enabled():
            return self.eager(*args, **kwargs)
        if self.failed:
            self.stats.eager_calls += 1
            return self.eager(*args, **kwargs)
        before = _compile_count()
        start = time.perf_counter()
        try:
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            with self._stance():
                out = self.compiled(*args, **kwargs)
        except (torch.OutOfMemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if self.stats.compiled_calls:  # it ran before: a real error of this batch, not of compilation
                raise
            self.failed = True
            self.stats.error = f"{type(exc).__name__}: {exc}"[:500]
            logger.warning("train.compile: compilation failed (%s); training continues without it",
                           self.stats.error.splitlines()[0])
            self.stats.eager_calls += 1
            return self.eager(*args, **kwargs)
        self.stats.compiled_calls += 1
        compiled = _compile_count() - before
        if compiled:
            seconds = time.perf_counter() - start
            self.stats.compilations += compiled
            self.stats.compile_s += seconds
            self.stats.pending_forward_s = seconds
            logger.info("train.compile: compiled the training forward in %.1f s (%.1f s so far)", seconds,
                        self.stats.compile_s)
        return out


def install(module: torch.nn.Module, *, backend: str, cuda_graphs: bool = False, budget_s: float = 300.0) -> CompiledForward:
    """Compile ``module``'s training forward in place (see the module docstring); idempotent."""
    current = module.__dict__.get("forward")
    if isinstance(current, CompiledForward):
        return current
    dispatcher = CompiledForward(module, backend=backend, cuda_graphs=cuda_graphs, budget_s=budget_s)
    module.forward = dispatcher
    return dispatcher
