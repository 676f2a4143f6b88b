"""fit's one progress line: stage, units done, the running unit's epoch and step, time left."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from tailtune.fit.progress import FitProgress, format_seconds


class FakeBudget:
    def __init__(self, total_s: float, left_s: float):
        self.total_s, self._left = total_s, left_s

    def left(self) -> float:
        return self._left


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=160, color_system=None), buf


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.6, 754, 4000, -12)] == ["0:00", "1:00", "12:34", "1:06:40", "-0:12"]


def test_the_line_shows_stage_units_unit_progress_and_time_left():
    console, buf = _console()
    budget = FakeBudget(600, 421)
    progress = FitProgress(budget, enabled=True, console=console).start()
    progress.stage("fine-tune", done=2, total=5, detail="focal seed 14")
    hook = progress.trainer_hook("focal seed 14")
    hook.on_step_end(SimpleNamespace(num_train_epochs=3), SimpleNamespace(epoch=1.5, global_step=30, max_steps=60), None)
    hook.on_train_begin(None, None, None)  # every other callback event is a no-op
    progress.note("plan: 5 units, [estimated] 380 s")  # markup in a note is printed as typed
    progress.close()
    out = buf.getvalue()
    assert "fine-tune" in out and "2/5 units" in out
    assert "focal seed 14 · epoch 1.50/3 · step 30/60" in out
    assert "7:01 left of 10:00" in out
    assert "fit: plan: 5 units, [estimated] 380 s" in out


def test_over_budget_shows_negative_time_and_disabled_prints_nothing():
    console, buf = _console()
    progress = FitProgress(FakeBudget(60, -5), enabled=True, console=console).start()
    progress.stage("final")
    progress.close()
    assert "-0:05 left of 1:00" in buf.getvalue()
    quiet_console, quiet = _console()
    silent = FitProgress(FakeBudget(60, 30), enabled=False, console=quiet_console).start()
    silent.stage("screen", done=1, total=2)
    silent.note("nothing")
    silent.trainer_hook("x").on_step_end(SimpleNamespace(num_train_epochs=1), SimpleNamespace(epoch=0, global_step=1,
                                                                                             max_steps=2), None)
    silent.close()
    assert quiet.getvalue() == ""
