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
- ``step``: the training module's forward (classifier, the reshapes for the task kind and the
  composite loss) as one graph (:class:`StepForward`): the loss's kernels fuse with the head's and
  the backward is one compiled graph. Traced with ``fullgraph=True`` and Python floats as
  constants (hyper-parameters such as ``label_smoothing``). A loss the graph cannot hold falls
  back to ``model`` (the classifier compiled, the loss eager) and says why in the log: a loss that
  reads the training progress (:func:`reads_progress`: a scheduled focal gamma; the value changes
  every step, so it would be a new constant of the graph at every step), one that does not trace
  as one graph (the first compilation fails), or one whose graph keeps changing (more than
  :data:`STEP_GRAPHS` compilations: a state the first trace set up, such as the loss kernels'
  mode, may cost one more). Losses that do not read the progress get ``progress=None`` inside the
  graph. A batch of one (PyTorch specialises sizes 0 and 1) runs eagerly.

Each dispatcher, in training mode with gradients on, calls ``torch.compile(forward,
dynamic=True)`` (inductor without the generated wrapper's per-call size asserts on every input,
:data:`INDUCTOR_OPTIONS`): one graph for every padded width and batch size (so the first step compiles,
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

from tailtune.recipe.schema import COMPILE_SCOPES

logger = logging.getLogger(__name__)

__all__ = ["COMPILE_SCOPES", "INDUCTOR_OPTIONS", "CompileStats", "CompiledForward", "Compiled", "StepForward",
           "install", "reads_progress"]


#: inductor options of the compiled forward (without CUDA graphs, whose replays skip the wrapper):
#: no ``assert_size_stride`` on every graph input at every call (about a hundred Python calls a
#: step on a small encoder; they check the compiler's own layout bookkeeping, never a value)
INDUCTOR_OPTIONS = {"size_asserts": False, "fallback_random": True}

_RECOMPILE_MESSAGE = "Detected recompile when torch.compile stance is 'fail_on_recompile'"

#: compilations of the ``step`` graph allowed before it falls back to ``model``
STEP_GRAPHS = 2


@contextlib.contextmanager
def _specialize_floats():
    """Python floats as constants of the traced graph while dynamo traces (set and restored
    directly: ``torch._dynamo.config.patch`` costs tens of microseconds a call)."""
    config = torch._dynamo.config
    saved = config.specialize_float
    config.specialize_float = True
    try:
        yield
    finally:
        config.specialize_float = saved


def _compile_count() -> int:
    """Graphs dynamo has compiled so far in this process (increments when a call compiles; a
    ``fullgraph`` compilation counts no frame, so graphs are counted)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:  # pragma: no cover - a torch without the counters
        return 0


class CompileStats:
    """What compilation cost: ``compile_s`` (seconds of the calls and steps that compiled),
    ``compilations``, ``compiled_calls``, ``eager_calls`` (training calls that ran eagerly: after a
    failed first compilation, or a batch of one under scope ``step``), ``budget_exhausted``,
    ``error``, the ``scope`` and ``fallback`` (why scope ``step`` became ``model``)."""

    def __init__(self, budget_s: float, scope: str = "model"):
        self.budget_s = float(budget_s)
        self.scope = scope
        self.compile_s = 0.0
        self.compilations = 0
        self.compiled_calls = 0
        self.eager_calls = 0
        self.error: str | None = None
        self.fallback: str | None = None  # why scope "step" fell back to "model"
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
                "budget_s": self.budget_s, "budget_exhausted": self.budget_exhausted, "error": self.error,
                "fallback": self.fallback}


class CompiledForward:
    """The dispatcher :func:`install` puts in place of a module's ``forward`` (module docstring)."""

    def __init__(self, module: torch.nn.Module, *, backend, cuda_graphs: bool, stats: CompileStats,
                 mark_step: bool = True, fullgraph: bool = False):
        self.module = module
        self.eager = module.forward
        self.cuda_graphs = bool(cuda_graphs)
        kwargs = {"dynamic": True, "backend": backend, "fullgraph": bool(fullgraph)}
        if self.cuda_graphs:
            kwargs["mode"] = "reduce-overhead"
        elif backend == "inductor":
            kwargs["options"] = dict(INDUCTOR_OPTIONS)
        self.compiled = torch.compile(self.eager, **kwargs)
        self.stats = stats
        self.mark_step = mark_step and self.cuda_graphs
        self.calls = 0  # training calls this dispatcher ran compiled
        self.compilations = 0  # ... and how many of them compiled

    def _stance(self):
        if self.stats.compilations and self.stats.budget_exhausted and hasattr(torch.compiler, "set_stance"):
            return torch.compiler.set_stance("eager_on_recompile")
        return contextlib.nullcontext()

    def _trace_config(self):
        """Dynamo settings of the calls that may compile (:class:`StepForward` overrides it)."""
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
            with self._stance(), self._trace_config():
                out = self.compiled(*args, **kwargs)
        except (torch.OutOfMemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if self.calls:  # it ran before: a real error of this batch, not of compilation
                raise
            return self._first_compile_failed(exc, args, kwargs)
        self.calls += 1
        stats.compiled_calls += 1
        compiled = _compile_count() - before
        if compiled:
            self.compilations += compiled
            seconds = time.perf_counter() - start
            stats.compilations += compiled
            stats.compile_s += seconds
            stats.pending_forward_s = (stats.pending_forward_s or 0.0) + seconds
            logger.info("train.compile: compiled the training forward (%s) in %.1f s (%.1f s so far)", stats.scope,
                        seconds, stats.compile_s)
        return out

    def _first_compile_failed(self, exc: Exception, args, kwargs):
        stats = self.stats
        stats.failed = True
        stats.error = f"{type(exc).__name__}: {exc}"[:500]
        logger.warning("train.compile: compilation failed (%s); training continues without it",
                       stats.error.splitlines()[0])
        stats.eager_calls += 1
        return self.eager(*args, **kwargs)


class StepForward(CompiledForward):
    """``scope="step"``: the training module's forward (classifier + loss) as one graph, or, when
    the loss cannot be part of it, the classifier alone (``model``) with the loss eager (module
    docstring). ``demote`` installs that fallback and returns its dispatcher."""

    def __init__(self, module: torch.nn.Module, *, backend, cuda_graphs: bool, stats: CompileStats, demote):
        super().__init__(module, backend=backend, cuda_graphs=cuda_graphs, stats=stats, fullgraph=True)
        self._demote = demote
        self.fallback: CompiledForward | None = None
        if reads_progress(getattr(module, "loss", None)):
            self._fall_back("the loss reads the training progress (a scheduled parameter: a new graph every step)")

    def _trace_config(self):
        # hyper-parameters stored as floats (label smoothing, gamma) are constants of the graph
        # (dynamic=True would make them symbolic, and the losses' checks on them break the graph)
        return _specialize_floats() if self.compilations < STEP_GRAPHS else contextlib.nullcontext()

    def _stance(self):
        # the step graph must cover every call: once it compiled STEP_GRAPHS times (or the budget
        # is spent) a call that would compile again fails fast, and the step falls back
        if self.compilations >= STEP_GRAPHS or (self.compilations and self.stats.budget_exhausted):
            return torch.compiler.set_stance("fail_on_recompile")
        return contextlib.nullcontext()

    def __call__(self, *args, **kwargs):
        if self.fallback is not None or not self.module.training or not torch.is_grad_enabled():
            return self.eager(*args, **kwargs)
        if self.calls and _batch_of_one(args, kwargs):
            self.stats.eager_calls += 1  # sizes 0 and 1 are specialised: a new graph for one row is not worth it
            return self.eager(*args, **kwargs)
        if kwargs.get("progress") is not None:
            kwargs["progress"] = None  # read by no part of the loss (else the step fell back at install)
        try:
            return super().__call__(*args, **kwargs)
        except RuntimeError as exc:
            if _RECOMPILE_MESSAGE not in str(exc):
                raise
            reason = " ".join(str(exc).split("guard failure(s):")[-1].split())[:300]
            return self._fall_back(f"the step's graph would change between steps ({reason})", args, kwargs)

    def _first_compile_failed(self, exc: Exception, args, kwargs):
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return self._fall_back(f"the loss does not compile as one graph with the classifier ({cause})", args, kwargs)

    def _fall_back(self, why: str, args=None, kwargs=None):
        self.stats.fallback = why[:500]
        logger.warning("train.compile_scope step: %s; compiling the classifier alone, the loss runs eagerly", why)
        self.fallback = self._demote()
        return None if args is None else self.eager(*args, **kwargs)


def reads_progress(loss) -> bool:
    """Whether ``loss`` (a :class:`~tailtune.losses.CompositeLoss` or one loss module) may read the
    training ``progress``: one of its modules holds a :class:`~tailtune.losses.GammaSchedule` (the
    losses' one schedule type), or is not one of tailtune's losses (unknown: assumed to). Losses
    with fixed parameters ignore ``progress`` (the focal modules keep the last one seen for a
    scheduled gamma only)."""
    from tailtune.losses import CompositeLoss, GammaSchedule, LossModule

    if loss is None:
        return True
    for module in loss.modules():
        if isinstance(module, (torch.nn.ModuleDict, torch.nn.ModuleList)):  # containers: their members count
            continue
        if not isinstance(module, (LossModule, CompositeLoss)):
            return True
        if any(isinstance(value, GammaSchedule) for value in vars(module).values()):
            return True
    return False


def _batch_of_one(args, kwargs) -> bool:
    first = next((v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)), None)
    return first is not None and first.ndim > 0 and first.shape[0] == 1


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
            scope: str = "layers", step: torch.nn.Module | None = None) -> Compiled:
    """Compile ``classifier``'s training forward in place (module docstring); idempotent.

    ``step`` is the module whose forward runs ``classifier`` and the loss (the trainer's
    ``TrainModule``): what ``scope="step"`` compiles; without it ``step`` compiles ``model``.
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
    if scope == "step" and step is None:
        logger.info("train.compile_scope step: no training module around the classifier; compiling the whole model")
        scope = "model"
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
    elif scope == "step":
        handle = Compiled(stats, [])

        def demote() -> CompiledForward:
            stats.scope = "model"
            fallback = CompiledForward(classifier, backend=backend, cuda_graphs=graphs, stats=stats)
            classifier.forward = fallback
            handle.scope = "model"
            handle.dispatchers.append(fallback)
            return fallback

        dispatcher = StepForward(step, backend=backend, cuda_graphs=graphs, stats=stats, demote=demote)
        step.forward = dispatcher
        handle.dispatchers.insert(0, dispatcher)
        classifier._tailtune_compiled = handle
        return handle
    else:
        dispatchers = [CompiledForward(classifier, backend=backend, cuda_graphs=graphs, stats=stats)]
        classifier.forward = dispatchers[0]
    handle = Compiled(stats, dispatchers)
    classifier._tailtune_compiled = handle
    return handle
