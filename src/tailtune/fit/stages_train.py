"""The stages that spend the budget: screening, planning, fine-tuning over seeds, and the decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tailtune.data.kinds import task_kind
from tailtune.fit import decide, planner, units  # modules: tests replace their functions (monkeypatch)
from tailtune.fit import screening as fit_screening
from tailtune.fit.analysis import subsample_rows, write_splits
from tailtune.fit.candidates import BASELINE, HIERARCHY_MODE
from tailtune.fit.context import CANDIDATES_DIR, DATA_DIR, FitContext, _setting, cost_model

__all__ = ["stage_decide", "stage_plan", "stage_screen", "stage_train"]

#: share of the whole budget the screening stage may use (it subsamples its training texts to fit)
SCREEN_SHARE = 0.2


def _shape(task) -> tuple[int, int]:
    """(outputs, independently tuned blocks) of the task's logits."""
    return task.num_outputs, (len(task.labels) if task_kind(task).per_aspect else 1)


def _templates(ctx: FitContext, cands: dict) -> dict[str, Path]:
    return {c["name"]: ctx.folder / c["recipe_file"] for c in cands["candidates"]}


def _screen_work(ctx: FitContext, analysis: dict, cands: dict, probe: dict) -> dict[str, Any]:
    names = [c["name"] for c in cands["candidates"]]
    by_rule = [n for n in names if n != BASELINE][: ctx.opts.finalists]
    if len(names) < 2 or ctx.opts.finalists == 0:
        return {"skipped": "no challenger to screen", "finalists": by_rule, "ranking": [], "dropped": []}
    f = cands["features"]
    worth = _screen_worth_it(ctx, f, probe)
    if worth is not None:  # the challengers in rule order: the plan keeps what fits, the replan may add back
        return {"skipped": worth, "finalists": by_rule, "ranking": [], "dropped": []}
    seeds = min(ctx.opts.seeds, fit_screening.SCREEN_SEEDS)
    outputs, blocks = _shape(ctx.task)
    tune_s = planner.tune_cost(f["n_validation"] // 2 + 1, outputs, blocks=blocks, bootstrap=30)

    def estimate(n):
        return fit_screening.screen_cost(n, f["n_validation"], n_candidates=len(names), seeds=seeds,
                                         eval_s=probe["eval_s"], tune_s=tune_s)

    share = SCREEN_SHARE * ctx.opts.budget_s
    size, data_dir = f["n_train"], ctx.folder / DATA_DIR
    if estimate(size) > share:
        per_text = (estimate(size) - estimate(0)) / max(size, 1)
        size = int((share - estimate(0)) / per_text) if per_text > 0 else 0
        if size < min(planner.SUBSAMPLE_FLOOR, f["n_train"]):
            return {"skipped": f"a screen needs about {estimate(planner.SUBSAMPLE_FLOOR):.0f} s, more than its "
                    f"share ({share:.0f} s) of the budget: the finalists are the first candidates in rule order",
                    "finalists": by_rule, "ranking": [], "dropped": []}
        rows = subsample_rows(ctx.loaded.targets["train"], ctx.task, size, seed=ctx.opts.seed)
        data_dir = write_splits(ctx.loaded, ctx.folder / "screen" / "data", rows={"train": rows})
    res = fit_screening.run_screening(data_dir, ctx.folder / "screen", _templates(ctx, cands), baseline=BASELINE,
                                      task=ctx.task, model=ctx.opts.model, seeds=seeds, seed=ctx.opts.seed,
                                      max_length=_setting(cands, "data.max_length"), finalists=ctx.opts.finalists,
                                      cache_dir=ctx.opts.cache_dir)
    return res | {"estimate_s": round(estimate(size), 1), "train_size": size, "data_dir": ctx.rel(data_dir),
                  "screen_json": ctx.rel(Path(res["screen_json"]))}


def _screen_worth_it(ctx: FitContext, f: dict, probe: dict) -> str | None:
    """``None`` when a screen and then a comparison (two arms, two seeds, one epoch on the smallest
    subsample) fit in the budget; else why the screen is skipped (the challengers are then taken in
    rule order and the plan keeps what fits). Raises BudgetTooSmall when not even one baseline run
    fits, before the screen spends anything."""
    cost = cost_model(probe)
    floor = min(planner.SUBSAMPLE_FLOOR, f["n_train"])
    one = cost.run(floor, 1, f["n_validation"])
    free = (ctx.budget.left() - _reserve(ctx, cost, runs=4)) * planner.PLAN_MARGIN
    if free < one:
        raise planner.budget_too_small(free, one, f"the smallest run (baseline, 1 seed, 1 epoch, {floor:,} texts)",
                                       budget_s=ctx.opts.budget_s)
    if free - SCREEN_SHARE * ctx.opts.budget_s >= 4 * one:
        return None
    if free >= 4 * one:
        return ("a screen would leave too little time to compare a challenger with the baseline (2 seeds each): "
                "the challengers are taken in rule order")
    return ("by the probe's estimate not even one challenger can be compared with the baseline (2 seeds each): no "
            "screen; the challengers in rule order, for the plan and the replan after the first run to keep if they fit")


def stage_screen(ctx: FitContext, analysis: dict, cands: dict, probe: dict) -> dict[str, Any]:
    return ctx.unit("screen", lambda: _screen_work(ctx, analysis, cands, probe), stage="screening candidates")


def finish_need(ctx: FitContext, cost, *, members: int) -> float:
    """Estimated seconds of the finishing stages when ``members`` models are scored on test."""
    outputs, blocks = _shape(ctx.task)
    return planner.finish_reserve(cost, members=members, n_val=len(ctx.loaded.targets["validation"]),
                                  n_test=len(ctx.loaded.targets.get("test", [])), n_outputs=outputs, blocks=blocks,
                                  copy_s=cost.checkpoint_s / 3)


def _reserve(ctx: FitContext, cost, *, runs: int) -> float:
    """Time kept back for the decision and the finishing stages (one model scored on test: an ensemble
    ships only when its members' test predictions fit in what is left then, see ``stage_ensemble``)."""
    outputs, blocks = _shape(ctx.task)
    n_val = len(ctx.loaded.targets["validation"])
    return planner.decide_reserve(runs, n_val, outputs, blocks=blocks) + finish_need(ctx, cost, members=1)


def _plan_work(ctx: FitContext, cands: dict, probe: dict, screening: dict) -> dict[str, Any]:
    cost = cost_model(probe)
    arms = [BASELINE] + list(screening["finalists"])
    seeds = [ctx.opts.seed + i for i in range(ctx.opts.seeds)]
    reserve = _reserve(ctx, cost, runs=len(arms) * len(seeds))
    available = (ctx.budget.left() - reserve) * planner.PLAN_MARGIN
    f = cands["features"]
    plan = planner.make_plan(available, arms, seeds, epochs=_setting(cands, "train.epochs"), n_train=f["n_train"],
                             n_val=f["n_validation"], cost=cost, budget_s=ctx.opts.budget_s)
    data_dir = ctx.folder / DATA_DIR
    if plan.train_size < f["n_train"]:
        rows = subsample_rows(ctx.loaded.targets["train"], ctx.task, plan.train_size, seed=ctx.opts.seed)
        data_dir = write_splits(ctx.loaded, ctx.folder / f"{DATA_DIR}-sub{plan.train_size}", rows={"train": rows})
        plan.train_size = int(len(rows))
    return plan.to_dict() | {"data_dir": ctx.rel(data_dir), "reserve_s": round(reserve, 1),
                             "finalists": arms, "seeds_asked": seeds}


def stage_plan(ctx, analysis, cands, probe, screening) -> dict[str, Any]:
    return ctx.unit("plan", lambda: _plan_work(ctx, cands, probe, screening), stage="planning")


def _unit_name(arm: str, seed: int) -> str:
    return f"train/{arm}/seed-{seed}"


def _train_one(ctx: FitContext, cands: dict, plan: dict, arm: str, seed: int, *, factor: float, probe: dict,
               force: bool) -> dict[str, Any]:
    cost = cost_model(probe, factor)
    n_val = len(ctx.loaded.targets["validation"])
    estimate = cost.run(plan["train_size"], plan["epochs"], n_val)
    reserve = _reserve(ctx, cost, runs=len(plan["finalists"]) * len(plan["seeds_asked"]))
    if not force and ctx.budget.now() + estimate > ctx.budget.end - reserve:
        return {"skipped": True, "estimated_s": round(estimate, 1), "why": "does not fit in the time left"}
    guard = planner.BudgetGuard(ctx.budget.end - reserve - cost.post_stop(plan["train_size"], n_val),
                                ctx.budget.now)
    template = yaml.safe_load((ctx.folder / CANDIDATES_DIR / arm / "recipe.yaml").read_text(encoding="utf-8"))
    run_dir = ctx.folder / CANDIDATES_DIR / arm / f"seed-{seed}"
    out = units.run_training_unit(run_dir, template, seed=seed, epochs=plan["epochs"],
                                  data_dir=ctx.folder / plan["data_dir"],
                                  callbacks=[guard, ctx.progress.trainer_hook(f"{arm} seed {seed}")])
    return out | {"run_dir": ctx.rel(run_dir), "estimated_s": round(estimate, 1), "stopped_by_budget": guard.stopped}


def _replan(ctx: FitContext, plan: dict, probe: dict, first: dict, first_seconds: float) -> dict[str, Any]:
    predicted = cost_model(probe).run(plan["train_size"], plan["epochs"], len(ctx.loaded.targets["validation"]))
    factor = max(first_seconds, 1e-6) / max(predicted, 1e-6)
    cost = cost_model(probe, factor)
    reserve = _reserve(ctx, cost, runs=len(plan["finalists"]) * len(plan["seeds_asked"]))
    available = ctx.budget.left() - reserve
    arms, seeds, skipped = planner.replan_units(available, plan["finalists"], plan["seeds_asked"],
                                                unit_s=first_seconds, done=1)
    return {"factor": factor, "unit_s": round(first_seconds, 1), "available_s": round(available, 1), "arms": arms,
            "seeds": seeds, "skipped": skipped}


def stage_train(ctx: FitContext, analysis, cands: dict, probe: dict, plan: dict) -> dict[str, dict[int, str]]:
    """The fine-tuning units; returns ``{arm: {seed: run dir relative to the fit folder}}`` of the runs
    that trained."""
    first_arm, first_seed = BASELINE, plan["seeds"][0]
    first_name = _unit_name(first_arm, first_seed)
    ctx.unit(first_name, lambda: _train_one(ctx, cands, plan, first_arm, first_seed, factor=1.0, probe=probe,
                                             force=True), stage="fine-tuning")
    seconds = ctx.state.data["units"][first_name]["seconds"]
    replan = ctx.unit("replan", lambda: _replan(ctx, plan, probe, ctx.state.result(first_name), seconds))
    order = planner.unit_order(replan["arms"], replan["seeds"])
    for i, (arm, seed) in enumerate(order):
        ctx.progress.stage("fine-tuning", done=i, total=len(order))
        ctx.unit(_unit_name(arm, seed), lambda a=arm, s=seed: _train_one(
            ctx, cands, plan, a, s, factor=replan["factor"], probe=probe, force=False), stage="fine-tuning")
    runs: dict[str, dict[int, str]] = {}
    for arm, seed in order:
        res = ctx.state.result(_unit_name(arm, seed))
        if not res.get("skipped"):
            runs.setdefault(arm, {})[seed] = res["run_dir"]
    return runs


def hierarchy_mode(ctx: FitContext) -> str | None:
    return HIERARCHY_MODE if task_kind(ctx.task).multi_hot and ctx.task.hierarchy else None


def member_scores(ctx: FitContext, arm: str, runs: dict[int, str]) -> dict[int, dict]:
    """Validation scores (default and cross-fitted tuned rule) of an arm's runs, computed once per session."""
    cache = ctx.cache.setdefault("scores", {})
    for seed, run in runs.items():
        if (arm, seed) not in cache:
            cache[(arm, seed)] = decide.run_scores(ctx.folder / run, ctx.task, hierarchy_mode=hierarchy_mode(ctx))
    return {seed: cache[(arm, seed)] for seed in runs}


def stage_decide(ctx: FitContext, runs: dict[str, dict[int, str]]) -> dict[str, Any]:
    def work():
        scores = {arm: member_scores(ctx, arm, r) for arm, r in runs.items()}
        y = next(iter(scores[BASELINE].values()))["y"]
        result = decide.decide(ctx.task, y, scores, baseline=BASELINE)
        result["runs"] = {arm: {str(s): {"run_dir": runs[arm][s], "default": r["default"], "tuned": r["tuned"]}
                                for s, r in rows.items()} for arm, rows in scores.items()}
        return result

    return ctx.unit("decide", work, stage="deciding (paired tests on validation)")
