"""A recipe and its data in, a trained and evaluated run directory out: :func:`prepare_run` then
:func:`train_model` (``tailtune.training.train``, the pipeline, adds the lint and the report).

Order of work (every user error is raised before the model is loaded):

1. :func:`prepare_run`: the data (:func:`tailtune.recipe.data.load_recipe_data`) and its
   :class:`~tailtune.data.TaskSpec`; the recipe checked against the task
   (:func:`tailtune.recipe.validate_against_task`), the machine (fp16 needs a GPU) and the encoder
   (``data.max_length`` within its positions: :mod:`tailtune.models.checks`); the training
   counts; :func:`tailtune.recipe.resolve` (loss parts with every argument, class weights and where
   they apply, sample weighting, sampler) and :func:`tailtune.recipe.build.build_loss`;
2. :func:`train_model`: the model (:func:`~tailtune.training.modeling.build_model`); tokenisation
   (:mod:`tailtune.training.tokenize`; the collator pads each batch: :mod:`tailtune.training.collate`);
   :class:`~tailtune.training.trainer.TailtuneTrainer` (per-epoch history, early stopping that
   restores the best checkpoint, safetensors checkpoints pruned to best + last; the ``train``
   speed levers of :mod:`tailtune.training.speed`: tailtune's step loop, ``compile``); the run directory (:mod:`tailtune.training.outputs`: ``recipe.yaml``,
   ``task.json``, ``resolved.json`` at the start; ``model/``, ``eval.json``,
   ``predictions/<split>.npz`` at the end; rank 0 only, atomic).

Resume: ``prepare_run(None, resume=run_dir)`` reads ``run_dir/recipe.yaml``; :func:`train_model`
removes what an interrupted run left (temporary files, incomplete checkpoints:
:mod:`tailtune.training.faults`), keeps the history rows up to the last complete checkpoint and
continues from it (from the start when no checkpoint is complete yet); on CPU with a fixed seed the
final metrics equal those of an uninterrupted run. A failed write (disk full) is a
:class:`~tailtune.errors.StorageError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import set_seed
from transformers.trainer_callback import PrinterCallback

from tailtune.data import LoadedData, TaskSpec
from tailtune.errors import RecipeError, RunDirError, StorageError
from tailtune.models.checks import check_encoder_max_length
from tailtune.recipe import Recipe, as_recipe, validate_against_task
from tailtune.recipe.build import build_loss, sample_weight_fn, sampler_weights
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.data import load_recipe_data, train_counts
from tailtune.recipe.resolve import ResolvedRecipe, resolve
from tailtune.training.arguments import training_arguments
from tailtune.training.callbacks import EarlyStopping
from tailtune.training.checkpoints import find_checkpoint, load_run_recipe, resume_history
from tailtune.training.collate import build_collator
from tailtune.training.faults import describe_write_failure, remove_interrupted
from tailtune.training.modeling import build_model
from tailtune.training.outputs import finish_run, metric_fn, oom_message, storage_message, write_run_start
from tailtune.training.speed import speed_options
from tailtune.training.state_files import check_state_files
from tailtune.training.tokenize import tokenize_splits, train_eval_subset
from tailtune.training.trainer import TailtuneTrainer, TrainModule
from tailtune.utils import rundir
from tailtune.utils.rundir import TRAIN_EVAL_MAX

__all__ = ["PreparedRun", "RunResult", "TRAIN_EVAL_MAX", "find_checkpoint", "prepare_run", "train_model"]

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a training run returns: the run directory, the history rows and ``eval.json``'s content,
    and the data loader's ``notes`` (:attr:`tailtune.data.LoadedData.notes`: what it decided on the
    user's behalf, e.g. the delimiter it detected or text it NFC-normalised); the pipeline
    (``tailtune.training.train``) adds the lint findings and the report."""

    run_dir: Path
    history: list[dict] = field(default_factory=list)
    eval: dict = field(default_factory=dict)
    resolved: ResolvedRecipe | None = None
    findings: list = field(default_factory=list)
    report: Path | None = None
    report_error: str | None = None
    main_process: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass
class PreparedRun:
    """Everything decided before the model loads (:func:`prepare_run`)."""

    recipe: Recipe
    run_dir: Path
    resume: Path | None
    checkpoint: Path | None
    loaded: LoadedData
    counts: ClassCounts
    resolved: ResolvedRecipe
    loss: Any
    sampler_weights: np.ndarray | None
    findings: list | None = None

    @property
    def task(self) -> TaskSpec:
        return self.loaded.task


def _run_dir(recipe, resume) -> tuple[Any, Path, Path | None]:
    """``(recipe, run_dir, checkpoint)``: a new run's ``output`` (refused when it holds a run), or the
    resumed run's directory, recipe and last complete checkpoint (its state files checked)."""
    if resume is None:
        if recipe is None:
            raise TypeError("train() needs a recipe or resume=RUN_DIR")
        recipe = as_recipe(recipe)
        if not recipe.output:
            raise RecipeError("output: missing; set the run directory (--output DIR)")
        run_dir = Path(recipe.output)
        if (run_dir / rundir.HISTORY).exists() or (run_dir / rundir.CHECKPOINTS_DIR).exists():
            raise RunDirError(
                f"output {run_dir}: already holds a run; continue it with --resume {run_dir} or choose "
                "another --output"
            )
        return recipe, run_dir, None
    run_dir = Path(resume)
    if not run_dir.is_dir():
        raise RunDirError(f"--resume {run_dir}: no such run directory")
    if recipe is None:
        recipe = load_run_recipe(run_dir)
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is not None:  # refuse pickled code before the Trainer torch.loads the state files
        check_state_files(checkpoint, run_dir=run_dir)
    else:  # stopped before its first checkpoint: start again, same recipe and seed
        logger.warning("--resume %s: no complete checkpoint under %s/ yet; training again from the start", run_dir,
                       rundir.CHECKPOINTS_DIR)
    return as_recipe(recipe), run_dir, checkpoint


def prepare_run(recipe=None, *, resume: str | os.PathLike | None = None) -> PreparedRun:
    """Steps 1-4: the run directory, the data, the checks, :func:`~tailtune.recipe.resolve` and the loss.

    Args:
        recipe: a :class:`~tailtune.recipe.Recipe` or its mapping (``None`` with ``resume``: the
            run's own ``recipe.yaml``).
        resume: a run directory whose last complete checkpoint to continue from.

    Raises:
        RecipeError: an invalid value or one the data contradicts (fp16 without a GPU too).
        RunDirError: ``output`` already holds a run (use ``resume``), or ``resume`` is not a run dir.
        DataError: from the data layer.
    """
    recipe, run_dir, checkpoint = _run_dir(recipe, resume)
    set_seed(recipe.train.seed)
    loaded = load_recipe_data(recipe)
    validate_against_task(recipe, loaded.task)
    if recipe.train.precision == "fp16" and not torch.cuda.is_available():
        raise RecipeError("train.precision: fp16 needs a CUDA GPU; use bf16 or fp32 on this machine")
    check_encoder_max_length(recipe.model, recipe.data.max_length)  # from the encoder's config.json alone
    counts = train_counts(loaded)
    resolved = resolve(recipe, loaded.task, counts)
    loss = build_loss(resolved)
    sampler = sampler_weights(resolved, loaded.splits["train"]["labels"])
    return PreparedRun(recipe, run_dir, None if resume is None else run_dir, checkpoint, loaded, counts, resolved,
                       loss, sampler)


def _trainer(prepared: PreparedRun, classifier, tokenizer, splits: dict, callbacks: Sequence) -> TailtuneTrainer:
    """The :class:`TailtuneTrainer` of a prepared run (history rows kept up to a resumed checkpoint)."""
    recipe, task, loss = prepared.recipe, prepared.task, prepared.loss
    info = task.kind_info
    module = TrainModule(classifier, loss, kind=task.kind, num_aspects=len(task.labels) if info.per_aspect else 0,
                         sample_weight_fn=sample_weight_fn(prepared.resolved))
    es = recipe.early_stopping
    args = training_arguments(recipe, prepared.run_dir, uses_embeddings=bool(getattr(loss, "uses_embeddings", False)))
    trainer = TailtuneTrainer(
        model=module,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=tokenizer,
        data_collator=build_collator(tokenizer, task.kind, recipe.train, max_length=recipe.data.max_length),
        callbacks=[EarlyStopping(metric=es.metric, patience=es.patience or None, min_delta=float(es.min_delta)),
                   *callbacks],
        task=task,
        train_eval_dataset=train_eval_subset(splits["train"], recipe.train.seed),
        sampler_weights=prepared.sampler_weights,
        history_path=prepared.run_dir / rundir.HISTORY,
        history=resume_history(prepared.run_dir, prepared.checkpoint),
        metric_fn=metric_fn(task),
        eval_sort_by_length=recipe.train.eval_sort_by_length,
        speed=speed_options(recipe.train),
    )
    trainer.remove_callback(PrinterCallback)  # the history and the caller's callbacks report progress
    return trainer


def train_model(prepared: PreparedRun, *, callbacks: Sequence = ()) -> RunResult:
    """Steps 5-8 of a prepared run: model, tokenisation, training, the run directory.

    Raises:
        RecipeError: out of memory (names the knob) or a model the recipe's speed levers do not fit.
        StorageError: a write into the run directory failed (disk full...): the message names the
            file and the cause; the last complete checkpoint is kept, ``resume`` continues from it.
    """
    recipe, task, run_dir = prepared.recipe, prepared.task, prepared.run_dir
    set_seed(recipe.train.seed)
    classifier, tokenizer = build_model(recipe, task)
    splits = tokenize_splits(prepared.loaded.splits, tokenizer, max_length=recipe.data.max_length,
                             with_length=recipe.train.group_by_length)
    trainer = _trainer(prepared, classifier, tokenizer, splits, callbacks)
    checkpoint = prepared.checkpoint
    try:
        if trainer.is_world_process_zero():
            run_dir.mkdir(parents=True, exist_ok=True)
            if prepared.resume is not None:  # what an interrupted run left: temporary files, partial checkpoints
                remove_interrupted(run_dir, checkpoints_dir=rundir.CHECKPOINTS_DIR)
            write_run_start(prepared, run_dir, checkpoint=checkpoint)
        try:
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        except torch.OutOfMemoryError as exc:
            raise RecipeError(oom_message(recipe)) from exc
        evaluation = finish_run(trainer, splits, task, tokenizer, run_dir)
    except Exception as exc:
        failure = describe_write_failure(exc)
        if failure is None:
            raise
        raise StorageError(storage_message(run_dir, *failure)) from exc
    return RunResult(run_dir=run_dir, history=list(trainer.history), eval=evaluation, resolved=prepared.resolved,
                     findings=list(prepared.findings or []), main_process=trainer.is_world_process_zero(),
                     notes=list(prepared.loaded.notes))
