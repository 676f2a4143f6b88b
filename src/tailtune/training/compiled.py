"""``train.compile`` / ``train.cuda_graphs``: the classifier's training forward through ``torch.compile``.

:func:`install` replaces ``forward`` of the compiled modules by a :class:`CompiledForward`
dispatcher (an instance attribute: parameter names, ``state_dict``, checkpoints, ``model/`` and
resume are unchanged). What is compiled (``train.compile_scope``):

- ``layers`` (default): each transformer layer of the encoder (``models.encoder_layers``). The
  layers share their code, so ONE compilation serves all of them (regional compilation): the
  compile time of one layer, not of the model, which bounds it on bert-base as on MiniLM.
  Embeddings, pooling and the head run eagerly (a handful of kernels).
- ``model``: the whole classifier forward as one graph (fewest launches; compiles the whole
  encoder, so it costs several times ``layers``' compile time). An encoder whose layer list is
  unknown is compiled this way.

Each dispatcher, in training mode with gradients on, calls ``torch.compile(forward,
dynamic=True)``: one graph for every padded width and batch size (so the first step compiles,
later shapes do not), and with ``cuda_graphs`` on a GPU ``mode="reduce-overhead"``: forward and
backward replay as CUDA graphs, one recording per bucketed shape (``train.pad_buckets`` keeps
those few); the step is marked once per training forward (``cudagraph_mark_step_begin``).
Evaluation and prediction run eagerly (their outputs are kept across batches, which CUDA graph
replays would overwrite, and they are a small share of a run); the loss stays eager (any loss
part, scheduled parameters, per-sample weights).

Compile time is bounded and reported (:class:`CompileStats`, in the history's ``speed``): the
calls that compiled are timed (the step's backward, where AOTAutograd compiles the backward graph,
is added by the step loop); the first compilation always runs, and once the compiling calls have
taken ``compile_budget_s`` seconds, calls run under ``torch.compiler.set_stance
("eager_on_recompile")``: an input the compiled graphs do not cover runs eagerly instead of
compiling again (``0``: compile once, never again). If the very first compilation fails (no C++
compiler, an unsupported encoder), training continues eagerly and the warning names the cause.
"""

from __future__ import annotations

import contextlib
import logging
import time

import torch

logger = logging.getLogger(__name__)

__all__ = ["COMPILE_SCOPES", "CompileStats", "CompiledForward", "Compiled", "install"]

COMPILE_SCOPES = ("layers", "model")


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
    failed first compilation), ``budget_exhausted``, ``error`` and the ``scope``."""

    def __init__(self, budget_s: float, scope: str = "model"):
        self.budget_s = float(budget_s)
        self.scope = scope
        self.compile_s = 0.0
        self.compilations = 0
        self.compiled_calls = 0
        self.eager_calls = 0
        self.error: str | None = None
        self.failed = False
        self.pending_forward_s: float | None = None  # forward share of a micro-step that compiled

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
        return {"scope": self.scope, "compile_s": round(self.compile_s, 3), "compilations": self.compilations,
                "compiled_calls": self.compiled_calls, "eager_calls": self.eager_calls,
                "budget_s": self.budget_s, "budget_exhausted": self.budget_exhausted, "error": self.error}


class CompiledForward:
    """The dispatcher :func:`install` puts in place of a module's ``forward`` (module docstring)."""

    def __init__(self, module: torch.nn.Module, *, backend, cuda_graphs: bool, stats: CompileStats,
                 mark_step: bool = True):
        self.module = module
        self.eager = module.forward
        self.cuda_graphs = bool(cuda_graphs)
        kwargs = {"dynamic": True, "backend": backend}
        if self.cuda_graphs:
            kwargs["mode"] = "reduce-overhead"

        self.compiled = torch.compile(self.eager, **kwargs)
        self.stats = stats
        self.mark_step = mark_step and self.cuda_graphs

    def _stance(self):
        if self.stats.compilations and self.stats.budget_exhausted and hasattr(torch.compiler, "set_stance"):
            return torch.compiler.set_stance("eager_on_recompile")
        return contextlib.nullcontext()

    def __call__(self, *args, **kwargs):
        if not self.module.training or not torch.is_grad_enabled():
            return self.eager(*args, **kwargs)
        stats = self.stats
        if stats.failed:
            stats.eager_calls += 1
            return self.eager(*args, **kwargs)
        before = _compile_count()
        start = time.perf_counter()
        try:
            if self.mark_step:
                torch.compiler.cudagraph_mark_step_begin()
            with self._stance():
                out = self.compiled(*args, **kwargs)
        except (torch.OutOfMemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if stats.compiled_calls:  # it ran before: a real error of this batch, not of compilation
                raise
            stats.failed = True
            stats.error = f"{type(exc).__name__}: {exc}"[:500]
            logger.warning("train.compile: compilation failed (%s); training continues without it",
                           stats.error.splitlines()[0])
            stats.eager_calls += 1
            return self.eager(*args, **kwargs)
        stats.compiled_calls += 1
        compiled = _compile_count() - before
        if compiled:
            seconds = time.perf_counter() - start
            stats.compilations += compiled
            stats.compile_s += seconds
            stats.pending_forward_s = (stats.pending_forward_s or 0.0) + seconds
            logger.info("train.compile: compiled the training forward (%s) in %.1f s (%.1f s so far)", stats.scope,
                        seconds, stats.compile_s)
        return out


class _StepMark:
    """The classifier's ``forward`` under ``scope="layers"`` with CUDA graphs: marks a new CUDA
    graph step once per training forward (not per layer: a layer's replay must not free the
    activations the earlier layers' backward still needs), then runs the eager forward."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.eager = module.forward

    def __call__(self, *args, **kwargs):
        if self.module.training and torch.is_grad_enabled():
            torch.compiler.cudagraph_mark_step_begin()
        return self.eager(*args, **kwargs)


class Compiled:
    """What :func:`install` did: ``stats`` (:class:`CompileStats`), ``scope`` and the dispatchers."""

    def __init__(self, stats: CompileStats, dispatchers: list[CompiledForward]):
        self.stats = stats
        self.scope = stats.scope
        self.dispatchers = dispatchers


def install(classifier: torch.nn.Module, *, backend, cuda_graphs: bool = False, budget_s: float = 300.0,
            scope: str = "layers") -> Compiled:
    """Compile ``classifier``'s training forward in place (module docstring); idempotent.

    ``cuda_graphs`` applies with the inductor backend on a CUDA device only (else it is said once
    in the log and compilation goes on without them)."""
    existing = getattr(classifier, "_tailtune_compiled", None)
    if isinstance(existing, Compiled):
        return existing
    if scope not in COMPILE_SCOPES:
        raise ValueError(f"scope must be one of {COMPILE_SCOPES}, got {scope!r}")
    graphs = bool(cuda_graphs) and backend == "inductor" and torch.cuda.is_available()
    if cuda_graphs and not graphs:
        logger.info("train.cuda_graphs: no CUDA device (or backend %r); compiling without CUDA graphs", backend)
    layers = None
    if scope == "layers":
        from tailtune.models.classifier import encoder_layers

        layers = encoder_layers(getattr(classifier, "encoder", classifier))
        if layers is None:
            logger.info("train.compile_scope layers: the encoder's layer list is unknown; compiling the whole model")
            scope = "model"
    stats = CompileStats(budget_s, scope)
    if scope == "layers":
        dispatchers = []
        for layer in layers:
            dispatcher = CompiledForward(layer, backend=backend, cuda_graphs=graphs, stats=stats, mark_step=False)
            layer.forward = dispatcher
            dispatchers.append(dispatcher)
        if graphs:
            classifier.forward = _StepMark(classifier)
    else:
        dispatchers = [CompiledForward(classifier, backend=backend, cuda_graphs=graphs, stats=stats)]
        classifier.forward = dispatchers[0]
    handle = Compiled(stats, dispatchers)
    classifier._tailtune_compiled = handle
    return handle
