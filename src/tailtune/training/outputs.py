"""What a run writes besides the history: the files at its start (``recipe.yaml``, ``task.json``,
``resolved.json``, ``lint.json``), the predictions, ``eval.json`` and ``model/`` at its end, and the
one-line messages of a failed write or an out-of-memory error. Every write is atomic
(:mod:`tailtune.utils.io`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.evaluation.run_dir import save_predictions
from tailtune.metrics import classification_report, decode
from tailtune.models import save_classifier
from tailtune.recipe import Recipe, dump_recipe_yaml
from tailtune.training.checkpoints import find_checkpoint
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_json, atomic_write_text

__all__ = ["finish_run", "metric_fn", "oom_message", "storage_message", "write_run_start"]


def metric_fn(task):
    """``fn(y_true, logits) -> classification_report`` with the default decision rule."""
    info = task_kind(task)

    def fn(y_true: np.ndarray, logits: np.ndarray) -> dict:
        logits = np.asarray(logits, dtype=np.float32)
        y_true = np.asarray(y_true)
        y_true = (y_true.reshape(-1) if info.is_binary else y_true).astype(int)
        return classification_report(y_true, decode(logits, task), task, y_score=logits)

    return fn


def write_run_start(prepared, run_dir: Path, *, checkpoint: Path | None) -> None:
    """``recipe.yaml`` (new runs, or a resumed run that lacks it), ``task.json`` (unless a checkpoint
    is resumed and it exists), ``resolved.json`` and the lint findings (``lint.json``)."""
    resume = prepared.resume
    if resume is None or not (run_dir / rundir.RECIPE).exists():
        atomic_write_text(run_dir / rundir.RECIPE, dump_recipe_yaml(prepared.recipe))
    if checkpoint is None or not (run_dir / rundir.TASK).exists():
        atomic_write_json(run_dir / rundir.TASK, prepared.task.to_dict())
    atomic_write_json(run_dir / rundir.RESOLVED, prepared.resolved.to_dict())
    if prepared.findings is not None:
        atomic_write_json(run_dir / rundir.LINT, {"findings": [f.to_dict() for f in prepared.findings]})


def finish_run(trainer, splits: dict, task, tokenizer, run_dir: Path) -> dict[str, dict]:
    """With the best weights (restored by ``load_best_model_at_end``) predict validation and test,
    then (rank 0) write ``predictions/``, ``eval.json``, ``model/`` and the final history."""
    score = metric_fn(task)
    evaluation: dict[str, dict] = {}
    outputs = {}
    for split in ("validation", "test"):
        if split not in splits:
            continue
        pred = trainer.predict(splits[split], metric_key_prefix=split)
        logits = np.asarray(pred.predictions, dtype=np.float32)
        targets = np.asarray(pred.label_ids)
        outputs[split] = (logits, targets)
        evaluation[split] = score(targets, logits)
    if trainer.is_world_process_zero():
        for split, (logits, targets) in outputs.items():
            save_predictions(run_dir, split, logits, targets)
        atomic_write_json(run_dir / rundir.EVAL, evaluation)
        save_classifier(trainer.accelerator.unwrap_model(trainer.model).classifier, tokenizer, run_dir / rundir.MODEL_DIR)
        trainer.write_history()
    if trainer.accelerator.num_processes > 1:
        trainer.accelerator.wait_for_everyone()
    return evaluation


def storage_message(run_dir: Path, path: Path | None, reason: str) -> str:
    """One line: what could not be written and why, what is left, the fix and the resume command."""
    what = "a file"
    if path is not None:
        try:
            what = str(path.relative_to(run_dir))
        except ValueError:
            what = str(path)
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is not None:
        left = f"its last complete checkpoint is {rundir.CHECKPOINTS_DIR}/{checkpoint.name}"
    else:
        left = "no checkpoint was complete yet, so --resume trains again from the start"
    return (
        f"could not write {what} in {run_dir}: {reason}. The run directory holds no torn file and {left}; "
        f"free space on that disk (or move {run_dir} to a larger one), then continue with: "
        f"tailtune train --resume {run_dir}"
    )


def oom_message(recipe: Recipe) -> str:
    """Out of memory: the batch knobs to turn, keeping the effective batch."""
    bs, ga = recipe.train.batch_size, recipe.train.grad_accum
    if bs > 1:
        new_bs = max(bs // 2, 1)
        new_ga = ga * bs // new_bs
        fix = (
            f"halve the batch and double the accumulation: --set train.batch_size={new_bs} "
            f"--set train.grad_accum={new_ga} (same effective batch {bs * ga})"
        )
    else:
        fix = "lower data.max_length, use train.precision=bf16, or freeze layers (model.freeze_layers)"
    return f"out of memory with train.batch_size={bs}, train.grad_accum={ga}; {fix}"
