"""One progress line for a fit: the stage, units done, what runs now and the time left in the budget."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, ProgressColumn, SpinnerColumn, TextColumn
from rich.text import Text

__all__ = ["FitProgress", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``754`` -> ``"12:34"``; ``4000`` -> ``"1:06:40"``; negative -> ``"-0:12"``."""
    sign = "-" if seconds < 0 else ""
    s = int(round(abs(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m}:{sec:02d}"


class _TrainerHook:
    """A Trainer callback (duck-typed) that shows the epoch and step of the running unit."""

    def __init__(self, progress: FitProgress, label: str):
        self.progress, self.label = progress, label

    def on_step_end(self, args, state, control, **kwargs):
        epochs = args.num_train_epochs
        self.progress.detail(f"{self.label} · epoch {state.epoch or 0:.2f}/{epochs:g} · step {state.global_step}/"
                             f"{state.max_steps}")

    def __getattr__(self, name):
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)


class FitProgress:
    """A rich progress line (``enabled=False``: silent, for tests and library calls)."""

    def __init__(self, budget, *, enabled: bool, console: Any = None):
        self.budget = budget
        self.enabled = enabled
        self.console = console
        self._bar = None
        self._task = None
        self._fields = {"stage": "starting", "units": "", "detail": ""}

    def start(self) -> FitProgress:
        if not self.enabled:
            return self
        budget = self.budget

        class _Left(ProgressColumn):
            def render(self, task):
                left = budget.left()
                style = "red" if left < 0 else "green"
                return Text(f"{format_seconds(left)} left of {format_seconds(budget.total_s)}", style=style)

        self.console = self.console or Console(stderr=True)
        self._bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[stage]}"), TextColumn("{task.fields[units]}"),
                             TextColumn("[dim]{task.fields[detail]}"), _Left(), console=self.console, transient=False)
        self._bar.start()
        self._task = self._bar.add_task("fit", total=None, **self._fields)
        return self

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, **self._fields)

    def stage(self, name: str, *, done: int | None = None, total: int | None = None, detail: str = "") -> None:
        self._fields.update(stage=name, units=f"{done}/{total} units" if total else "", detail=detail)
        self._refresh()

    def detail(self, text: str) -> None:
        self._fields["detail"] = text
        self._refresh()

    def note(self, text: str) -> None:
        """A line printed above the progress line (kept in the terminal's history)."""
        if self.enabled and self.console is not None:
            self.console.print(f"[dim]fit:[/] {escape(text)}", highlight=False, soft_wrap=True)

    def trainer_hook(self, label: str) -> _TrainerHook:
        return _TrainerHook(self, label)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
