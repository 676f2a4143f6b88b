"""Trainer callbacks: early stopping (stateful, so ``--resume`` is exact) and rich progress bars.

Callbacks change only ``control`` (and their own state); the run directory is written by the
trainer (:mod:`tailtune.training.trainer`), never by a callback.
"""

from __future__ import annotations

import math

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from tailtune.data.task import split_group_metric

__all__ = ["EarlyStopping", "RichProgressCallback", "metric_greater_is_better"]


def metric_greater_is_better(metric: str) -> bool:
    """Scores (``macro_f1``, ``accuracy``, a label group's ``macro_f1@primary``...) are maximised;
    anything ending in ``loss`` is minimised (a group named ``loss`` does not count)."""
    return not split_group_metric(metric)[0].endswith("loss")


class EarlyStopping(TrainerCallback, ExportableState):
    """Stop when the validation ``metric`` has not improved for ``patience`` evaluations.

    Its counters are saved in every checkpoint (``trainer_state.json``, ``stateful_callbacks``) and
    restored on resume, so a resumed run stops at the same epoch as an uninterrupted one. Restoring
    the best weights is done by the Trainer (``load_best_model_at_end``) on the same metric.

    Args:
        metric: key of the validation report, e.g. ``"macro_f1"``, ``"loss"`` or a label group's
            ``"macro_f1@primary"`` (the trainer passes every ``<metric>@<group>`` of ``task.groups``).
        patience: evaluations without improvement before stopping; ``None`` never stops early.
        min_delta: an improvement must exceed this much.
        greater_is_better: default from :func:`metric_greater_is_better`.

    Example:
        >>> cb = EarlyStopping(metric="macro_f1", patience=2)
        >>> cb.update(0.5), cb.update(0.4), cb.update(0.45)
        (True, False, False)
        >>> cb.exhausted
        True
    """

    def __init__(
        self,
        metric: str = "macro_f1",
        patience: int | None = None,
        greater_is_better: bool | None = None,
        min_delta: float = 0.0,
        best: float | None = None,
        counter: int = 0,
        best_epoch: float | None = None,
    ):
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ValueError(f"patience must be a positive int or None, got {patience!r}")
        self.metric = metric
        self.patience = patience
        self.greater_is_better = metric_greater_is_better(metric) if greater_is_better is None else greater_is_better
        if not isinstance(min_delta, (int, float)) or min_delta < 0:
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        self.min_delta = float(min_delta)
        self.best = best
        self.counter = counter
        self.best_epoch = best_epoch

    # -- pure state update -----------------------------------------------------------------
    def update(self, value: float, epoch: float | None = None) -> bool:
        """Record one evaluation; return whether it is a new best."""
        value = float(value)
        if math.isnan(value):
            improved = False
        elif self.best is None:
            improved = True
        else:
            d = self.min_delta
            improved = value > self.best + d if self.greater_is_better else value < self.best - d
        if improved:
            self.best, self.counter, self.best_epoch = value, 0, epoch
        else:
            self.counter += 1
        return improved

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.counter >= self.patience

    @property
    def patience_left(self) -> int | None:
        return None if self.patience is None else max(self.patience - self.counter, 0)

    def summary(self) -> dict:
        out = {"metric": self.metric, "best": self.best}
        if self.patience is not None:
            out["patience_left"] = self.patience_left
        return out

    # -- Trainer hooks ---------------------------------------------------------------------
    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = f"eval_{self.metric}"
        if not metrics or key not in metrics:
            return control
        self.update(metrics[key], epoch=state.epoch)
        if self.exhausted:
            control.should_training_stop = True
        return control

    def state(self) -> dict:
        return {
            "args": {
                "metric": self.metric,
                "patience": self.patience,
                "greater_is_better": self.greater_is_better,
                "min_delta": self.min_delta,
            },
            "attributes": {"best": self.best, "counter": self.counter, "best_epoch": self.best_epoch},
        }


class RichProgressCallback(TrainerCallback):
    """Rich progress bars: one for the optimiser steps of the whole run, one line per epoch.

    Only the main process draws. Example: ``train(recipe, callbacks=[RichProgressCallback()])``.
    """

    def __init__(self, console=None):
        self.console = console
        self._progress = None
        self._task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task("training", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self._progress is not None:
            epoch = state.epoch or 0.0
            self._progress.update(
                self._task, completed=state.global_step, description=f"epoch {epoch:.2f}/{args.num_train_epochs:g}"
            )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._progress is None or not metrics:
            return
        parts = [f"epoch {state.epoch:.0f}"]
        for key in ("train_loss", "eval_loss", "train_macro_f1", "eval_macro_f1"):
            if key in metrics and metrics[key] is not None:
                parts.append(f"{key.replace('eval_', 'val_')}={metrics[key]:.4f}")
        self._progress.console.print("  ".join(parts), highlight=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)
        self.close()

    def close(self) -> None:
        """Stop the bars (idempotent). Training that fails (disk full, out of memory) never reaches
        ``on_train_end``; the CLI calls this so its error line is not drawn under a live bar and a
        terminal gets its cursor back."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
