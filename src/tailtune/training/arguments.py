"""The recipe's ``optim``, ``train`` and ``early_stopping`` sections as ``transformers.TrainingArguments``.

Every value comes from the validated recipe (the schema holds the defaults); nothing here has a
default of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from tailtune.recipe import Recipe
from tailtune.recipe.schema import TrainSection
from tailtune.training.callbacks import metric_greater_is_better
from tailtune.utils import rundir

__all__ = ["dataloader_kwargs", "optim_name", "training_arguments"]

_OPTIMISERS = {"adamw": "adamw_torch", "adam": "adamw_torch", "adamw_fused": "adamw_torch_fused", "sgd": "sgd",
               "adafactor": "adafactor"}


def optim_name(name: str) -> str:
    """The Trainer's name of the recipe's ``optim.name``."""
    return _OPTIMISERS.get(name, name)


def dataloader_kwargs(train: TrainSection) -> dict[str, Any]:
    """``TrainingArguments`` data-loading fields from the recipe's ``train`` section.

    ``dataloader_workers`` > 0 lets each worker prefetch 2 batches; ``pin_memory`` (default true)
    copies batches to the GPU from page-locked memory (ignored on CPU). Workers are never
    persistent: with persistent workers the Trainer caches ONE evaluation loader under the key
    "eval" and hands it back for every other data set, so the per-epoch train subsample would be
    scored on the validation rows (re-forking 2 workers per loader costs milliseconds).
    """
    workers = int(train.dataloader_workers)
    out: dict[str, Any] = {
        "dataloader_num_workers": workers,
        "dataloader_pin_memory": bool(train.pin_memory),
        "dataloader_persistent_workers": False,
    }
    if workers > 0:
        out["dataloader_prefetch_factor"] = 2
    return out


def training_arguments(recipe: Recipe, run_dir: Path, *, uses_embeddings: bool) -> TrainingArguments:
    """The run's ``TrainingArguments``: evaluation, checkpoint and history every epoch, the best and
    the last checkpoint kept, the best weights restored at the end."""
    t, o, es = recipe.train, recipe.optim, recipe.early_stopping
    seed = t.seed
    return TrainingArguments(
        output_dir=str(run_dir / rundir.CHECKPOINTS_DIR),
        num_train_epochs=float(t.epochs),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=float(o.lr),
        weight_decay=float(o.weight_decay),
        warmup_steps=float(o.warmup),
        lr_scheduler_type=o.schedule,
        optim=optim_name(o.name),
        bf16=t.precision == "bf16",
        fp16=t.precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=2,  # with load_best_model_at_end: the best and the last checkpoint
        load_best_model_at_end=True,
        metric_for_best_model=es.metric,
        greater_is_better=metric_greater_is_better(es.metric),
        restore_callback_states_from_checkpoint=True,
        remove_unused_columns=False,
        label_names=["labels"],
        **dataloader_kwargs(t),
        max_grad_norm=float(o.max_grad_norm) if o.max_grad_norm is not None else 0.0,
        disable_tqdm=True,
        report_to="none",
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        length_column_name="length",
        # the Trainer's NaN/inf filter reads the loss on the host every step (a GPU sync); the
        # history keeps its own on-device sums, so the filter only slowed training down
        logging_nan_inf_filter=False,
        # a projection head whose embeddings no loss part reads leaves parameters without gradients
        ddp_find_unused_parameters=bool(recipe.model.projection_dim) and not uses_embeddings,
        save_only_model=False,
        log_level="warning",
    )
