"""The recipe's ``optim``, ``train`` and ``early_stopping`` sections as ``transformers.TrainingArguments``.

Every value comes from the validated recipe (the schema holds the defaults); nothing here has a
default of its own. The data-loading and speed fields are :func:`tailtune.training.speed.trainer_speed_kwargs`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainingArguments

from tailtune.recipe import Recipe
from tailtune.training.callbacks import metric_greater_is_better
from tailtune.training.speed import trainer_speed_kwargs
from tailtune.utils import rundir

__all__ = ["optim_name", "training_arguments"]

#: AdamW is PyTorch's fused kernel (one launch for all parameters, as the Trainer's own default): the
#: same update as the per-tensor loop, to rounding (issue 15); ``adamw_fused`` is kept as an alias
_OPTIMISERS = {"adamw": "adamw_torch_fused", "adam": "adamw_torch_fused", "adamw_fused": "adamw_torch_fused",
               "sgd": "sgd", "adafactor": "adafactor"}


def optim_name(name: str) -> str:
    """The Trainer's name of the recipe's ``optim.name``."""
    return _OPTIMISERS.get(name, name)


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
        # data loading, non-blocking copies to the GPU, no per-step NaN/inf host read (training/speed.py)
        **trainer_speed_kwargs(t),
        max_grad_norm=float(o.max_grad_norm) if o.max_grad_norm is not None else 0.0,
        disable_tqdm=True,
        report_to="none",
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        length_column_name="length",
        # a projection head whose embeddings no loss part reads leaves parameters without gradients
        ddp_find_unused_parameters=bool(recipe.model.projection_dim) and not uses_embeddings,
        save_only_model=False,
        log_level="warning",
    )
