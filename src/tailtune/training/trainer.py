"""The Hugging Face ``Trainer`` integration: loss through ``CompositeLoss``, per-epoch evaluation and history.

Pieces:

- :class:`TrainModule` holds the classifier AND the composite loss, so the loss's learnable
  parameters (uncertainty balancing) are in the optimiser, in every checkpoint and under DDP.
- :class:`~tailtune.training.collate.LabelCollator` (re-exported here) pads the tokenised inputs
  and stacks the encoded targets with the dtype each task kind needs.
- :class:`EpochWeightedSampler` is the class-balanced sampler: a ``WeightedRandomSampler`` whose
  generator is seeded by ``seed + epoch``, so a resumed run draws the same batches.
- :class:`TailtuneTrainer` overrides ``compute_loss`` (pops ``labels``, passes
  ``num_items_in_batch`` and ``progress``, accumulates each loss part on the device with no host
  sync per step), ``prediction_step``, ``_get_train_sampler`` and ``evaluate`` (train subsample +
  validation reports with :mod:`tailtune.metrics`, gap, one ``history.jsonl`` row per epoch).
  Evaluation keeps the data order (also under ``train.group_by_length``, whose Trainer sampler
  would otherwise shuffle evaluation too); with ``eval_sort_by_length`` it runs the batches in
  length order (less padding) and puts the outputs back in the data order.
  With ``train.fast_step`` (default) ``_run_epoch`` is tailtune's step loop
  (:mod:`tailtune.training.fast_step`); with ``train.compile`` the classifier's training forward
  is compiled (:mod:`tailtune.training.compiled`) and its compile time reported in the history.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Trainer

from tailtune.data.kinds import task_kind
from tailtune.metrics.groups import group_scores
from tailtune.training import fast_step
from tailtune.training.callbacks import EarlyStopping
from tailtune.training.collate import LABEL_KEY, WEIGHT_KEY, LabelCollator, TableCollator, TokenTable
from tailtune.training.collate import MODEL_INPUTS as _MODEL_INPUTS

__all__ = ["TrainModule", "LabelCollator", "EpochWeightedSampler", "TailtuneTrainer", "LABEL_KEY", "WEIGHT_KEY"]



class TrainModule(nn.Module):
    """Classifier + composite loss in one module (what the Trainer optimises and checkpoints).

    ``forward(input_ids, attention_mask, token_type_ids=None, labels=None, sample_weight=None,
    num_items_in_batch=None, progress=None)`` returns a dict with ``logits`` (N, K) and, when
    ``labels`` are given, ``loss`` (0-dim) and ``parts`` (name -> detached 0-dim tensor).

    For ``aspects`` the logits (N, A*(P+1)) are viewed as (N*A, P+1), targets (N, A) as (N*A,) and
    per-sample weights repeated A times before the loss (docs/architecture.md, Losses).
    """

    accepts_loss_kwargs = True  # the Trainer then counts num_items_in_batch and does not rescale for GA

    def __init__(
        self,
        classifier: nn.Module,
        loss: nn.Module,
        *,
        kind: str,
        num_aspects: int = 0,
        sample_weight_fn: Callable | None = None,
    ):
        super().__init__()
        self.classifier = classifier
        self.loss = loss
        self.kind = kind
        self._kind = task_kind(kind)
        self.num_aspects = num_aspects
        self.sample_weight_fn = sample_weight_fn

    def forward(
        self,
        input_ids,
        attention_mask=None,
        token_type_ids=None,
        labels=None,
        sample_weight=None,
        num_items_in_batch=None,
        progress=None,
        **kwargs,
    ):
        out = self.classifier(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        logits = out["logits"] if isinstance(out, dict) else out.logits
        embeddings = out.get("embeddings") if isinstance(out, dict) else getattr(out, "embeddings", None)
        result = {"logits": logits}
        if labels is None:
            return result
        if self.sample_weight_fn is not None:
            extra = self.sample_weight_fn(logits=logits.detach(), attention_mask=attention_mask)
            if extra is not None:
                sample_weight = extra if sample_weight is None else sample_weight * extra
        loss_logits, target = logits, labels
        uses_lengths = getattr(self.loss, "uses_lengths", False)
        lengths = attention_mask.sum(dim=1) if uses_lengths and attention_mask is not None else None
        if self._kind.is_binary:
            loss_logits, target = logits.reshape(-1), labels.to(logits.dtype).reshape(-1)
        elif self._kind.multi_hot:
            target = labels.to(logits.dtype)
        elif self._kind.per_aspect:
            n, a = labels.shape
            loss_logits = logits.reshape(n * a, -1)
            target = labels.reshape(n * a)
            if sample_weight is not None:
                sample_weight = sample_weight.repeat_interleave(a)
            if lengths is not None:
                lengths = lengths.repeat_interleave(a)
        extra = {"lengths": lengths} if uses_lengths else {}
        total, parts = self.loss(
            loss_logits.float(),
            target,
            embeddings=None if embeddings is None else embeddings.float(),
            sample_weight=sample_weight,
            progress=progress,
            num_items_in_batch=num_items_in_batch,
            **extra,
        )
        result["loss"] = total
        result["parts"] = parts
        return result


class EpochWeightedSampler(torch.utils.data.Sampler):
    """Draw ``num_samples`` indices with replacement, probability proportional to ``weights``.

    The generator is re-seeded with ``seed + epoch`` (``set_epoch`` is called by the Trainer's
    dataloader each epoch), so runs are reproducible and ``--resume`` draws the same batches.

    Example:
        >>> s = EpochWeightedSampler([1.0, 0.0, 1.0], seed=0)
        >>> sorted(set(s)) <= [0, 2]
        True
    """

    def __init__(self, weights, *, num_samples: int | None = None, seed: int = 0):
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if self.weights.ndim != 1 or len(self.weights) == 0 or not torch.all(self.weights >= 0):
            raise ValueError("weights must be a non-empty 1-D array of non-negative numbers")
        self.num_samples = int(num_samples or len(self.weights))
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.multinomial(self.weights, self.num_samples, replacement=True, generator=gen).tolist()


class TailtuneTrainer(Trainer):
    """``Trainer`` whose loss is the recipe's ``CompositeLoss`` and whose evaluation writes history rows.

    Extra keyword arguments (everything else goes to ``Trainer``):
        task: the :class:`tailtune.data.TaskSpec`.
        train_eval_dataset: the bounded, deterministic subsample of train evaluated each epoch.
        sampler_weights: per-example weights for the class-balanced sampler, or ``None``.
        history_path: where rank 0 rewrites ``history.jsonl`` (atomically) after each epoch.
        history: rows kept from before a resume (already truncated to the checkpoint's epoch).
        metric_fn: ``(y_true, logits) -> report dict`` (``tailtune.metrics``).
        eval_sort_by_length: evaluate and predict in batches of similar length, longest first
            (``train.eval_sort_by_length``); outputs come back in the data order.
        speed: the run's :class:`~tailtune.training.speed.SpeedOptions` (default: tailtune's step
            loop, nothing compiled).
    """

    def __init__(
        self,
        *args,
        task,
        train_eval_dataset=None,
        sampler_weights=None,
        history_path: str | Path | None = None,
        history: list[dict] | None = None,
        metric_fn: Callable[[np.ndarray, np.ndarray], dict],
        eval_sort_by_length: bool = False,
        speed=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        from tailtune.training.speed import SpeedOptions

        self.speed = speed if speed is not None else SpeedOptions()
        self.compiled_forward = None
        if self.speed.compile:
            from tailtune.training import compiled

            self.compiled_forward = compiled.install(
                self.model.classifier, backend=self.speed.backend, cuda_graphs=self.speed.cuda_graphs,
                budget_s=self.speed.compile_budget_s, scope=self.speed.compile_scope, step=self.model)
        self._engine = None
        self._engine_model = None
        self.task = task
        self.train_eval_dataset = train_eval_dataset
        self.sampler_weights = sampler_weights
        self.history_path = Path(history_path) if history_path else None
        self.history: list[dict] = list(history or [])
        self.metric_fn = metric_fn
        self.eval_sort_by_length = bool(eval_sort_by_length)
        self.model_accepts_loss_kwargs = True
        self._acc: dict[str, dict[str, Any]] = {}
        self._epoch_start_time = time.perf_counter()

    # -- sampling --------------------------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None):
        if self.sampler_weights is not None:
            return EpochWeightedSampler(self.sampler_weights, seed=self.args.seed)
        return super()._get_train_sampler(train_dataset)

    def _get_dataloader(self, dataset, description, batch_size, sampler_fn=None, is_training=False,
                        dataloader_key=None):
        """The Trainer's loader; for training with ``train.fast_step`` and tailtune's collator, over a
        :class:`~tailtune.training.collate.TokenTable` of the data set (same batches, built with
        vectorised gathers; the sampler still sees the data set itself)."""
        table = self._token_table(dataset, description) if is_training else None
        if table is None:
            return super()._get_dataloader(dataset, description, batch_size, sampler_fn=sampler_fn,
                                           is_training=is_training, dataloader_key=dataloader_key)
        saved = self.data_collator
        self.data_collator = TableCollator(table, saved)
        try:
            return super()._get_dataloader(
                table, description, batch_size, sampler_fn=None if sampler_fn is None else lambda _: sampler_fn(table.source),
                is_training=is_training, dataloader_key=dataloader_key)
        finally:
            self.data_collator = saved

    def _token_table(self, dataset, description):
        import datasets

        if not (self.speed.fast_step and type(self.data_collator) is LabelCollator
                and isinstance(dataset, datasets.Dataset)):
            return None
        return TokenTable.build(self._remove_unused_columns(dataset, description=description))

    def _get_collator_with_removed_columns(self, data_collator, description=None):
        if isinstance(data_collator, TableCollator):  # a table holds the model's columns only
            return data_collator
        return super()._get_collator_with_removed_columns(data_collator, description=description)

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation in the data order: the Trainer's ``group_by_length`` strategy would also
        shuffle the evaluation batches, and ``predictions/<split>.npz`` must follow the data rows."""
        if eval_dataset is None or not hasattr(eval_dataset, "__len__"):
            return None
        if self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        return None  # accelerate shards in order and gathers back in order

    def _length_sorted(self, dataset):
        """``(dataset in length order, longest first; inverse permutation)``, or ``(dataset, None)``
        when ``eval_sort_by_length`` is off. ``outputs[inverse]`` restores the data order."""
        if not self.eval_sort_by_length or dataset is None or len(dataset) < 2:
            return dataset, None
        if "length" in dataset.column_names:
            lengths = np.asarray(dataset["length"])
        else:
            lengths = np.fromiter((len(ids) for ids in dataset["input_ids"]), dtype=np.int64, count=len(dataset))
        order = np.argsort(-lengths, kind="stable")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return dataset.select(order.tolist()), inverse

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        """``Trainer.predict``; with ``eval_sort_by_length`` the batches run in length order and the
        predictions and labels are returned in the data order."""
        dataset, inverse = self._length_sorted(test_dataset)
        out = super().predict(dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if inverse is None:
            return out
        return out._replace(predictions=_reorder(out.predictions, inverse), label_ids=_reorder(out.label_ids, inverse))

    # -- the step loop ---------------------------------------------------------------------
    def _run_epoch(self, model, epoch, train_dataloader, steps_in_epoch, num_update_steps_per_epoch, trial,
                   ignore_keys_for_eval, start_time, resume_from_checkpoint, epochs_trained,
                   steps_trained_in_current_epoch):
        """tailtune's step loop (:mod:`tailtune.training.fast_step`) with ``train.fast_step``;
        the Trainer's own for an epoch resumed mid-way or with ``fast_step: false``."""
        call = (model, epoch, train_dataloader, steps_in_epoch, num_update_steps_per_epoch, trial,
                ignore_keys_for_eval, start_time, resume_from_checkpoint, epochs_trained,
                steps_trained_in_current_epoch)
        mid_epoch = (epoch == epochs_trained and resume_from_checkpoint is not None
                     and steps_trained_in_current_epoch > 0 and not self.args.ignore_data_skip)
        if self.speed.fast_step and not mid_epoch and fast_step.supported(Trainer):
            return fast_step.run_epoch(self, *call)
        return super()._run_epoch(*call)

    def _step_engine(self, model) -> fast_step.StepEngine:
        if self._engine is None or self._engine_model is not model:
            self._engine = fast_step.StepEngine(self, model)
            self._engine_model = model
        return self._engine

    def _clip_grad_norm(self, model):
        """The Trainer's clipping (its own loop, and tailtune's for DeepSpeed/FSDP/XLA), with the
        pre-clip norm added to the epoch's device sums."""
        grad_norm = super()._clip_grad_norm(model)
        if grad_norm is not None:
            self.accumulate_grad_norm(grad_norm)
        return grad_norm

    def accumulate_grad_norm(self, grad_norm: torch.Tensor) -> None:
        """Add one optimiser step's pre-clip gradient norm to the epoch's device sums (its mean
        over the epoch's steps is the history's ``train.grad_norm``)."""
        if not isinstance(grad_norm, torch.Tensor):
            grad_norm = torch.as_tensor(float(grad_norm), device=self.args.device)
        value = grad_norm.detach().reshape(1)
        if value.dtype != torch.float32:
            value = value.float()
        if self.accelerator.num_processes > 1:  # the same (all-reduced) norm everywhere; the epoch sums over processes
            value = value / self.accelerator.num_processes
        self._add("train", ("_grad_norm",), value, count=0)

    # -- loss ------------------------------------------------------------------------------
    def _add(self, mode: str, names: tuple, values: torch.Tensor, count: int) -> None:
        """Add ``values`` (one per name) to the device sums of ``mode``: no host sync."""
        acc = self._acc.setdefault(mode, {"count": 0, "sums": {}})
        acc["count"] += count
        prev = acc["sums"].get(names)
        acc["sums"][names] = values if prev is None else prev + values

    def _accumulate(self, mode: str, loss: torch.Tensor, parts: dict, n: int = 1) -> None:
        names = ("loss", *parts)
        values = torch.stack([loss.detach().reshape(()), *(v.detach().reshape(()) for v in parts.values())]).float()
        self._add(mode, names, values * n if n != 1 else values, count=n)

    def _progress(self) -> float | None:
        total = self.args.num_train_epochs
        return None if self.state.epoch is None or not total else float(self.state.epoch) / float(total)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop(LABEL_KEY)
        sample_weight = inputs.pop(WEIGHT_KEY, None)
        outputs = model(
            **inputs,
            labels=labels,
            sample_weight=sample_weight,
            num_items_in_batch=num_items_in_batch,
            progress=self._progress() if model.training else None,
        )
        loss = outputs["loss"]
        if model.training:
            self._accumulate("train", loss, outputs["parts"])
        else:
            self._accumulate("eval", loss, outputs["parts"], n=labels.shape[0])
        if (
            self.args.average_tokens_across_devices
            and num_items_in_batch is not None
            and self.accelerator.num_processes > 1
        ):
            # num_items_in_batch is the global count; DDP averages gradients over processes
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get(LABEL_KEY)
        with torch.no_grad(), self.compute_loss_context_manager():
            if labels is None:
                outputs = model(**{k: v for k, v in inputs.items() if k in _MODEL_INPUTS})
                loss = None
            else:
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
                loss = loss.detach()
        if prediction_loss_only:
            return loss, None, None
        return loss, outputs["logits"].detach().float(), labels

    # -- evaluation ------------------------------------------------------------------------
    def _predict_split(self, dataset, prefix: str) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        self._acc.pop("eval", None)
        dataset, inverse = self._length_sorted(dataset)
        dataloader = self.get_eval_dataloader(dataset)
        loop = self.evaluation_loop(
            dataloader, description=f"Evaluation ({prefix})", prediction_loss_only=False, metric_key_prefix=prefix
        )
        losses = self._reduce("eval", per="items")
        logits, labels = np.asarray(loop.predictions), np.asarray(loop.label_ids)
        if inverse is not None:
            logits, labels = logits[inverse], labels[inverse]
        return logits, labels, losses

    def _reduce(self, mode: str, *, per: str) -> dict[str, float]:
        """Turn a device accumulator into floats: one all-reduce and one host sync per call.

        ``per="steps"`` (training): each micro-batch part is ``sum / num_items_in_batch`` (the global
        count of the optimiser step), so summing over processes and micro-batches and dividing by the
        optimiser steps of the epoch gives the epoch's mean. ``per="items"`` (evaluation): parts
        are batch means times batch size, divided by the number of evaluated items.
        """
        acc = self._acc.pop(mode, None)
        if not acc or not acc["sums"]:
            return {}
        names = [n for group in acc["sums"] for n in group]
        sums = list(acc["sums"].values())
        stacked = torch.cat([*sums, sums[0].new_tensor([acc["count"]])])
        if self.accelerator.num_processes > 1:
            stacked = self.accelerator.reduce(stacked, reduction="sum")
        values = stacked.cpu().tolist()
        if per == "steps":
            denom = max(self.state.global_step - getattr(self, "_epoch_start_step", 0), 1)
        else:
            denom = max(values[-1], 1.0)
        return {name: v / denom for name, v in sorted(zip(names, values[:-1]))}

    def _split_record(self, losses: dict[str, float], report: dict) -> dict:
        rec: dict[str, Any] = {}
        if "loss" in losses:
            rec["loss"] = losses["loss"]
            rec["loss_parts"] = {k: v for k, v in losses.items() if k != "loss"}
        rec.update(report)
        return rec

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """Epoch evaluation: train subsample + validation, history row, early stopping.

        Called with an explicit ``eval_dataset`` it behaves as ``Trainer.evaluate``.
        """
        if eval_dataset is not None:
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        start = time.perf_counter()
        running = self._reduce("train", per="steps")
        val_logits, val_true, val_losses = self._predict_split(self.eval_dataset, "eval")
        val_report = self.metric_fn(val_true, val_logits)
        train_rec: dict[str, Any] = {}
        train_report: dict = {}
        if self.train_eval_dataset is not None and len(self.train_eval_dataset):
            tr_logits, tr_true, tr_eval_losses = self._predict_split(self.train_eval_dataset, "train")
            train_report = self.metric_fn(tr_true, tr_logits)
            if "loss" in tr_eval_losses:
                train_rec["eval_loss"] = tr_eval_losses["loss"]
        grad_norm = running.pop("_grad_norm", None)
        if running:
            train_rec["loss"] = running["loss"]
            train_rec["loss_parts"] = {k: v for k, v in running.items() if k != "loss"}
        if grad_norm is not None:
            train_rec["grad_norm"] = grad_norm
        train_rec.update(train_report)
        val_rec = self._split_record(val_losses, val_report)

        metrics: dict[str, float] = {}
        groups = tuple(group_scores(val_rec.get("groups") or {}))  # macro_f1@<group>, ... (task.groups)
        for key in ("loss", "accuracy", "balanced_accuracy", "macro_f1", "micro_f1", "weighted_f1", "mcc", *groups):
            if isinstance(val_rec.get(key), (int, float)):
                metrics[f"eval_{key}"] = float(val_rec[key])
            if isinstance(train_rec.get(key), (int, float)):
                metrics[f"train_{key}"] = float(train_rec[key])
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)

        stopper = next((c for c in self.callback_handler.callbacks if isinstance(c, EarlyStopping)), None)
        epoch = self.state.epoch
        row: dict[str, Any] = {
            "epoch": int(round(epoch)) if epoch is not None and abs(epoch - round(epoch)) < 1e-6 else epoch,
            "step": int(self.state.global_step),
            "lr": self._current_lr(),
            "time_s": round(self._elapsed_before() + time.perf_counter() - self._epoch_start_time, 3),
            "eval_time_s": round(time.perf_counter() - start, 3),
            "train": train_rec,
            "validation": val_rec,
            "gap": _gap(train_rec, val_rec),
        }
        if self.compiled_forward is not None:
            row["speed"] = self.compiled_forward.stats.as_dict()
        if stopper is not None:
            row["best"] = stopper.best_epoch is not None and stopper.best_epoch == epoch
            row["early_stopping"] = stopper.summary()
            if stopper.exhausted:
                row["stopped"] = "early_stopping"
        if epoch is not None and epoch >= self.args.num_train_epochs - 1e-6 and "stopped" not in row:
            row["stopped"] = "max_epochs"
        self.history.append(row)
        self.write_history()
        self.log({k: v for k, v in metrics.items()})
        return metrics

    def _elapsed_before(self) -> float:
        """Wall time of the epochs already in the history (cumulative ``time_s``, across resumes)."""
        return float(self.history[-1].get("time_s", 0.0)) if self.history else 0.0

    def _current_lr(self) -> float | None:
        if self.lr_scheduler is not None:
            try:
                return float(self.lr_scheduler.get_last_lr()[0])
            except Exception:  # scheduler not stepped yet
                pass
        if self.optimizer is not None:
            return float(self.optimizer.param_groups[0]["lr"])
        return None

    # -- checkpoints -------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial):
        """The Trainer's checkpoint save; a failed one leaves no partial folder behind.

        The Trainer writes ``checkpoint-<step>/`` in place (``trainer_state.json`` last). When a
        write fails (disk full...), rank 0 removes the incomplete folder, so the run directory keeps
        its last complete checkpoint and nothing torn, and the error becomes a
        :class:`~tailtune.training.faults.RunWriteError` naming the folder and the cause.
        """
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        from tailtune.training.faults import RunWriteError, write_error_reason

        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        try:
            super()._save_checkpoint(model, trial)
        except Exception as exc:
            reason = write_error_reason(exc, path=folder)  # before removing: free space is measured
            if self.args.should_save:
                shutil.rmtree(folder, ignore_errors=True)
            if reason is None:
                raise
            raise RunWriteError(folder, reason) from exc

    def write_history(self) -> None:
        if self.history_path is not None and self.is_world_process_zero():
            from tailtune.utils.io import atomic_write_jsonl

            atomic_write_jsonl(self.history_path, self.history)

    # -- epoch bookkeeping (no callback writes anything) -------------------------------------
    def mark_epoch_start(self) -> None:
        """Note the step counter and the time at the first step of each epoch (the history's
        per-epoch means and ``time_s``); called from inside either step loop."""
        epoch = self.state.epoch or 0.0
        if getattr(self, "_epoch_marker", None) != math.floor(epoch + 1e-9):
            self._epoch_marker = math.floor(epoch + 1e-9)
            self._epoch_start_step = self.state.global_step
            self._epoch_start_time = time.perf_counter()

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.mark_epoch_start()
        return super().training_step(model, inputs, num_items_in_batch)


def _gap(train: dict, val: dict) -> dict[str, float]:
    """Train minus validation for scores; validation minus train for losses (positive = better on train)."""
    gap: dict[str, float] = {}
    for key in ("macro_f1", "micro_f1", "accuracy"):
        if isinstance(train.get(key), (int, float)) and isinstance(val.get(key), (int, float)):
            gap[key] = float(train[key]) - float(val[key])
    if isinstance(train.get("loss"), (int, float)) and isinstance(val.get("loss"), (int, float)):
        gap["loss"] = float(val["loss"]) - float(train["loss"])
    return gap


def _reorder(values, inverse: np.ndarray):
    """``values[inverse]`` for an array, each array of a tuple/list, or ``None``."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(_reorder(v, inverse) for v in values)
    return np.asarray(values)[inverse]
