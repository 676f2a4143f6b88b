"""The speed levers of the ``train`` section: one place that turns them into Trainer settings.

What each lever does and whether it changes results (docs/training.md, "Speed"):

- ``fast_step`` (default on): tailtune's own per-step loop (:mod:`tailtune.training.fast_step`)
  in place of the Trainer's; the Trainer keeps orchestration, checkpoints, resume, evaluation,
  callbacks, DDP and ``report_to``. Same losses, bit for bit.
- ``pin_memory`` (default on): batches are copied to the GPU from page-locked memory **without
  blocking the host** (``non_blocking``), so the host queues the next step while the GPU works.
- ``pad_buckets``: pad each batch to the smallest of a few widths (:func:`bucket_widths`) instead
  of its longest text rounded up to 8, so compiled kernels and CUDA graphs see a handful of shapes.
  Padded positions are masked: outputs equal to rounding. Default: on with ``compile``.
- ``compile``: ``torch.compile`` the classifier's training forward (dynamic shapes: one graph for
  every width and batch size); ``compile_scope: layers`` (default) compiles the encoder's layers,
  which share one compilation (regional compilation: one layer's compile time), ``model`` the
  whole forward as one graph, ``step`` the forward and the loss as one graph (a loss that cannot
  be part of it, e.g. one with a scheduled parameter, falls back to ``model`` and says so;
  :mod:`tailtune.training.compiled`). Kernels differ, so results equal to rounding; dropout draws
  its masks with PyTorch's own random numbers (inductor's ``fallback_random``), so with dropout on
  too, except under ``cuda_graphs`` (other draws, same distribution).
- ``cuda_graphs``: ``compile`` with CUDA graphs (``mode="reduce-overhead"``): each bucket's forward
  and backward replay as one graph launch. CUDA only (ignored on CPU, said once in the log).
- ``compile_budget_s``: the compile-time bound. Compilation happens at the first step (and when a
  guard fails later); once the steps that compiled have taken this many seconds, shapes that would
  need a new compilation run eagerly instead. The time is reported in the history (``speed``).

Levers that change results (``group_by_length``: which texts share a batch) are off by default.
The one combination refused (``compile``/``cuda_graphs`` with ``length_chunks`` > 1) is a rule of the
recipe schema (:func:`tailtune.recipe.schema.check_train_levers`), checked when the recipe is read.
"""

from __future__ import annotations

import logging
from typing import Any

from tailtune.models.chunking import PAD_MULTIPLE, round_up

__all__ = [
    "BUCKET_GRID",
    "COMPILE_BACKEND",
    "SpeedOptions",
    "bucket_widths",
    "dataloader_kwargs",
    "speed_options",
    "trainer_speed_kwargs",
]

logger = logging.getLogger(__name__)

#: torch.compile backend for ``train.compile`` (tests switch it to "eager": same tracing, no codegen)
COMPILE_BACKEND = "inductor"

#: padded widths of ``pad_buckets`` (multiples of 8, each about 1.5x the previous: at most half of a
#: batch's width is padding beyond the round-up to 8, a quarter on average)
BUCKET_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)


def bucket_widths(max_length: int, multiple: int = PAD_MULTIPLE) -> tuple[int, ...]:
    """The widths batches are padded to under ``pad_buckets``: :data:`BUCKET_GRID` below
    ``max_length`` plus ``max_length`` rounded up to ``multiple`` (the longest a batch can be).

    >>> bucket_widths(100)
    (16, 24, 32, 48, 64, 96, 104)
    >>> bucket_widths(128)
    (16, 24, 32, 48, 64, 96, 128)
    """
    top = round_up(int(max_length), multiple)
    return tuple(w for w in BUCKET_GRID if w < top) + (top,)


class SpeedOptions:
    """The resolved speed levers of one run (what the trainer and its step loop read).

    Attributes: ``fast_step``, ``compile``, ``cuda_graphs``, ``compile_budget_s``, ``compile_scope``,
    ``pad_buckets`` (resolved: ``None`` became ``compile``), ``backend`` (:data:`COMPILE_BACKEND`).
    """

    def __init__(self, *, fast_step: bool = True, compile: bool = False, cuda_graphs: bool = False,
                 compile_budget_s: float = 300.0, pad_buckets: bool | None = None, compile_scope: str = "layers",
                 backend: str | None = None):
        self.fast_step = bool(fast_step)
        self.compile_scope = compile_scope
        self.cuda_graphs = bool(cuda_graphs)
        self.compile = bool(compile) or self.cuda_graphs
        self.compile_budget_s = float(compile_budget_s)
        self.pad_buckets = self.compile if pad_buckets is None else bool(pad_buckets)
        self.backend = backend or COMPILE_BACKEND

    def __repr__(self) -> str:
        return (f"SpeedOptions(fast_step={self.fast_step}, compile={self.compile}, cuda_graphs={self.cuda_graphs}, "
                f"compile_budget_s={self.compile_budget_s:g}, compile_scope={self.compile_scope!r}, "
                f"pad_buckets={self.pad_buckets}, backend={self.backend!r})")


def _get(train_cfg, name: str, default=None):
    """A field of the ``train`` section, given as a mapping or as the recipe's section object."""
    if train_cfg is None:
        return default
    if isinstance(train_cfg, dict):
        return train_cfg.get(name, default)
    return getattr(train_cfg, name, default)


def speed_options(train_cfg) -> SpeedOptions:
    """:class:`SpeedOptions` from the recipe's ``train`` section (a mapping or the section object)."""
    budget = _get(train_cfg, "compile_budget_s")
    return SpeedOptions(
        fast_step=_get(train_cfg, "fast_step", True) is not False,
        compile=bool(_get(train_cfg, "compile")),
        cuda_graphs=bool(_get(train_cfg, "cuda_graphs")),
        compile_budget_s=300.0 if budget is None else float(budget),
        pad_buckets=_get(train_cfg, "pad_buckets"),
        compile_scope=_get(train_cfg, "compile_scope") or "layers",
    )


def dataloader_kwargs(train_cfg) -> dict[str, Any]:
    """``TrainingArguments`` data-loading fields from the recipe's ``train`` section.

    ``dataloader_workers`` > 0 lets each worker prefetch 2 batches; ``pin_memory`` (default true)
    copies batches to the GPU from page-locked memory (ignored on CPU). Workers are never
    persistent: with persistent workers the Trainer caches ONE evaluation loader under the key
    "eval" and hands it back for every other data set, so the per-epoch train subsample would be
    scored on the validation rows (re-forking 2 workers per loader costs milliseconds).
    """
    workers = int(_get(train_cfg, "dataloader_workers") or 0)
    out: dict[str, Any] = {
        "dataloader_num_workers": workers,
        "dataloader_pin_memory": bool(_get(train_cfg, "pin_memory", True)),
        "dataloader_persistent_workers": False,
    }
    if workers > 0:
        out["dataloader_prefetch_factor"] = 2
    return out


def trainer_speed_kwargs(train_cfg) -> dict[str, Any]:
    """Every ``TrainingArguments`` field the speed levers set: :func:`dataloader_kwargs`, copies to
    the GPU that do not block the host (with pinned memory), and no per-step host reads by the
    Trainer (its NaN/inf filter reads the loss every step; tailtune keeps its own on-device sums)."""
    out = dataloader_kwargs(train_cfg)
    out["logging_nan_inf_filter"] = False
    if out["dataloader_pin_memory"] and _cuda():
        out["accelerator_config"] = {"non_blocking": True}
    return out


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
