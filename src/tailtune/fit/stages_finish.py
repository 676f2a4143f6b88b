"""The finishing stages: ensemble or one model, the final run-like folder (test scored once), the report."""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune import reports
from tailtune.data.stats import split_texts
from tailtune.fit import finish  # a module: tests replace its functions (monkeypatch)
from tailtune.fit.context import FitContext, cost_model
from tailtune.fit.log import render_log
from tailtune.fit.stages_train import finish_need, hierarchy_mode, member_scores
from tailtune.utils.io import atomic_write_text

__all__ = ["DECISION_LOG", "stage_ensemble", "stage_final", "stage_report"]

DECISION_LOG = "decision-log.md"


def _ensemble_fits(ctx: FitContext, members: int) -> str | None:
    """``None`` when scoring ``members`` models on test still fits in the budget, else why not."""
    cost = cost_model(ctx.state.result("probe"), ctx.state.result("replan").get("factor", 1.0))
    need, left = finish_need(ctx, cost, members=members), ctx.budget.left()
    if members < 2 or need <= left:
        return None
    return f"an ensemble of {members} needs about {need:.0f} s to finish (test predictions of every member), {left:.0f} s are left"


def stage_ensemble(ctx: FitContext, runs: dict[str, dict[int, str]], decision: dict) -> dict[str, Any]:
    def work():
        winner = decision["winner"]
        members = {seed: ctx.folder / run for seed, run in runs[winner].items()}
        scores = member_scores(ctx, winner, runs[winner])
        return finish.choose_ensemble(ctx.folder, members, scores, ctx.task, hierarchy_mode=hierarchy_mode(ctx),
                                      no_time=_ensemble_fits(ctx, len(members))) | {"winner": winner}

    return ctx.unit("ensemble", work, stage="ensemble or one model")


def _test_split(ctx: FitContext) -> tuple[list[str], np.ndarray] | None:
    if "test" not in ctx.loaded.splits:
        return None
    texts = [t for c in split_texts(ctx.loaded.splits["test"]).chunks for t in c.to_pylist()]
    return texts, ctx.loaded.targets["test"]


def stage_final(ctx: FitContext, choice: dict) -> dict[str, Any]:
    return ctx.unit("final", lambda: finish.assemble_final(ctx.folder, choice, _test_split(ctx), device=ctx.device,
                                                           hierarchy_mode=hierarchy_mode(ctx)),
                    stage="finishing (rule, temperature, test once)")


def stage_report(ctx: FitContext) -> dict[str, Any]:
    def work():
        atomic_write_text(ctx.folder / DECISION_LOG, render_log(ctx.state.data))
        try:
            reports.write_report(ctx.folder)
        except Exception as exc:  # noqa: BLE001 - the model and every record are complete; say how to retry
            note = f"report.html not written ({type(exc).__name__}: {exc}); retry with `tailtune report {ctx.folder}`"
            ctx.progress.note(note)
            return {"decision_log": DECISION_LOG, "report": None, "warning": note}
        return {"decision_log": DECISION_LOG, "report": "report.html"}

    result = ctx.unit("report", work, stage="writing the report")
    if ctx.state.data.get("status") != "done":
        ctx.state.data["status"] = "done"
        atomic_write_text(ctx.folder / DECISION_LOG, render_log(ctx.state.data))
        ctx.state.write()
    return result
