"""The planner: the shrink order, what a too-small budget says, the replan, the guard, and the
bound: a whole fit never overruns its budget by more than 10% (fake clock, simulated costs that
are up to 3x off for training and 1.5x off for the evaluation, decision and finishing work)."""

from __future__ import annotations

import random

import pytest

from tailtune.fit import planner
from tailtune.fit.planner import BudgetGuard, BudgetTooSmall, CostModel, make_plan, replan_units, unit_order

COST = CostModel(train_s=0.05, eval_s=0.01, fixed_s=5.0, checkpoint_s=1.0)
ARMS = ["baseline", "a", "b"]
SEEDS = [13, 14, 15]


def test_full_plan_when_it_fits():
    plan = make_plan(1e9, ARMS, SEEDS, epochs=4, n_train=2000, n_val=300, cost=COST)
    assert (plan.arms, plan.seeds, plan.epochs, plan.train_size, plan.steps) == (ARMS, SEEDS, 4, 2000, [])
    assert plan.estimate_s == pytest.approx(9 * COST.run(2000, 4, 300))


def test_shrink_order_challengers_epochs_seeds_then_subsample():
    unit = COST.run(2000, 2, 300)
    plan = make_plan(2 * 3 * unit + 1, ARMS, SEEDS, epochs=4, n_train=2000, n_val=300, cost=COST)
    assert plan.steps == ["dropped challenger b (lowest screening rank)", "epochs lowered to 3", "epochs lowered to 2"]
    assert (plan.arms, plan.seeds, plan.epochs) == (["baseline", "a"], SEEDS, 2)
    assert all(s["estimated_s"] > 0 for s in plan.skipped)
    tight = make_plan(4 * COST.run(800, 1, 300), ARMS, SEEDS, epochs=4, n_train=3200, n_val=300, cost=COST)
    assert tight.steps[-2:] == ["training subsample of 1,600 of 3,200 texts", "training subsample of 800 of 3,200 texts"]
    assert (tight.arms, tight.seeds, tight.epochs, tight.train_size) == (["baseline", "a"], [13, 14], 1, 800)


def test_too_small_budget_names_the_minimum():
    with pytest.raises(BudgetTooSmall, match=r"raise --budget by at least \d+ minutes"):
        make_plan(1.0, ARMS, SEEDS, epochs=4, n_train=2000, n_val=300, cost=COST)


def test_too_small_budget_names_the_budget_given_and_one_that_would_do():
    err = planner.budget_too_small(-40.0, 33.0, "the smallest run", budget_s=30)
    # 30 s given; 40 s short of zero after the reserves, 33 s needed, with the plan margin: 30 + 86 s -> 2m + 1
    assert str(err).startswith("--budget 30s leaves 0 s for fine-tuning, but the smallest run needs about 33 s. "
                               "Fix: --budget 3m or more (the same command with it continues this fit")
    with pytest.raises(BudgetTooSmall, match=r"--budget 1m leaves \d+ s .* Fix: --budget \d+m or more"):
        make_plan(1.0, ARMS, SEEDS, epochs=4, n_train=2000, n_val=300, cost=COST, budget_s=60)


def test_a_fit_stopped_by_a_small_budget_continues_with_a_larger_one(tiny_data, tmp_path, monkeypatch,
                                                                     tiny_encoder_dir):
    """The fix the error names works: the same command with the larger budget continues the fit (the
    probe is not measured again) instead of refusing it for "other options"."""
    import tailtune
    import tailtune.fit.stages_train as st

    calls = []

    def probe(*a, **k):
        calls.append(1)
        return {"train_s": 2.0, "eval_s": 0.05, "fixed_s": 5.0, "checkpoint_s": 1.0}

    class Planned(Exception):
        pass

    def plan(*a, **k):
        raise Planned

    monkeypatch.setattr("tailtune.fit.probe.probe_costs", probe)
    data, out = tiny_data("binary"), tmp_path / "fit"
    with pytest.raises(BudgetTooSmall, match=r"--budget 30s leaves .* Fix: --budget \d+m or more"):
        tailtune.fit(data, out, model=str(tiny_encoder_dir), budget=30, seeds=2)
    monkeypatch.setattr(st, "_screen_work", lambda *a, **k: {"skipped": "test", "finalists": [], "ranking": [],
                                                             "dropped": []})
    monkeypatch.setattr(planner, "make_plan", plan)
    with pytest.raises(Planned):  # got past the folder's fingerprint and the screen: planning the larger budget
        tailtune.fit(data, out, model=str(tiny_encoder_dir), budget="30m", seeds=2)
    assert len(calls) == 1


def test_replan_adds_back_or_drops_in_order():
    arms, seeds, skipped = replan_units(1e9, ARMS, SEEDS, unit_s=10.0, done=1)
    assert (arms, seeds, skipped) == (ARMS, SEEDS, [])
    arms, seeds, skipped = replan_units(35.0, ARMS, SEEDS, unit_s=10.0, done=1)  # 4 units in all
    assert (arms, seeds) == (["baseline", "a"], [13, 14]) and len(skipped) == 2
    arms, seeds, _ = replan_units(5.0, ARMS, SEEDS, unit_s=10.0, done=1)  # nothing more fits
    assert (arms, seeds) == (["baseline"], [13])


def test_seed_major_order():
    assert unit_order(["b", "x"], [1, 2]) == [("b", 1), ("x", 1), ("b", 2), ("x", 2)]


def test_guard_stops_at_the_deadline():
    class Control:
        should_training_stop = False

    now = [0.0]
    guard = BudgetGuard(10.0, lambda: now[0])
    assert not guard.on_step_end(None, None, Control()).should_training_stop
    now[0] = 10.0
    assert guard.on_step_end(None, None, Control()).should_training_stop and guard.stopped


# ----------------------------------------------------------------------------- the 10% bound
class Sim:
    """A fake clock and simulated stages whose true costs are the estimates times random factors."""

    def __init__(self, rng: random.Random, train_factor: float):
        self.t = 1000.0
        self.rng = rng
        self.train_factor = train_factor
        self.reserves = {}

    def clock(self) -> float:
        return self.t

    def off(self) -> float:  # evaluation, decision and finishing work: within 1.5x of the estimate
        return self.rng.uniform(0.5, 1.5)


def _install(monkeypatch, sim: Sim, probe: dict, n_val: int):
    import tailtune.fit.finish as finish
    import tailtune.fit.stages_train as st

    cost = CostModel(**{k: probe[k] for k in ("train_s", "eval_s", "fixed_s", "checkpoint_s")})
    for name in ("decide_reserve", "finish_reserve"):
        real = getattr(planner, name)

        def wrapper(*a, _real=real, _name=name, **k):
            key = (_name, k.get("members"))
            sim.reserves[key] = _real(*a, **k)
            return sim.reserves[key]

        monkeypatch.setattr(planner, name, wrapper)

    def screening(data_dir, out, templates, **kw):
        names = list(templates)
        sim.t += sim.off() * (len(names) * 3 * 2.0 + 50 * cost.eval_s)
        return {"ranking": [], "finalists": [n for n in names if n != "baseline"][: kw["finalists"]], "dropped": [],
                "seeds": [], "embedding": {}, "timing": {}, "screen_json": str(out / "screen.json")}

    def unit(run_dir, template, *, seed, epochs, data_dir, callbacks):
        size = int(str(data_dir).rsplit("sub", 1)[1]) if "-sub" in str(data_dir) else 48
        guard = callbacks[0]
        true = sim.train_factor * cost.run(size, epochs, n_val)
        post = cost.post_stop(size, n_val) / planner.RESERVE_FACTOR
        for _ in range(100):  # 100 optimiser steps; the guard is asked after each
            sim.t += (true - post) / 100
            control = type("C", (), {"should_training_stop": False})()
            if guard.on_step_end(None, None, control).should_training_stop:
                break
        sim.t += post * sim.off()
        return {"epochs_run": epochs, "stopped": None, "validation_macro_f1_default_rule": 0.5}

    def scores(ctx, arm, runs):
        return {s: {"default": 0.5, "tuned": 0.5, "y": None} for s in runs}

    def decide(task, y, arms, *, baseline):
        sim.t += sim.reserves[("decide_reserve", None)] / planner.RESERVE_FACTOR * sim.off()
        return {"winner": baseline, "reason": "simulated", "summaries": {}, "comparisons": {}}

    def choose(folder, members, scores, task, **kw):
        return {"members": {str(s): str(m) for s, m in members.items()}, "best_seed": min(members),
                "use_ensemble": len(members) > 1 and not kw.get("no_time"), "reason": "simulated"}

    def final(folder, choice, test, **kw):
        members = len(choice["members"]) if choice["use_ensemble"] else 1
        sim.t += sim.reserves[("finish_reserve", members)] / planner.RESERVE_FACTOR * sim.off()
        return {"shipped": [], "ensemble": choice["use_ensemble"], "validation": {}, "test": None}

    monkeypatch.setattr("tailtune.fit.probe.probe_costs", lambda *a, **k: dict(probe))
    monkeypatch.setattr("tailtune.fit.screening.run_screening", screening)
    monkeypatch.setattr("tailtune.fit.units.run_training_unit", unit)
    monkeypatch.setattr(st, "member_scores", scores)
    monkeypatch.setattr("tailtune.fit.stages_finish.member_scores", scores)
    monkeypatch.setattr("tailtune.fit.decide.decide", decide)
    monkeypatch.setattr(finish, "choose_ensemble", choose)
    monkeypatch.setattr(finish, "assemble_final", final)
    monkeypatch.setattr("tailtune.reports.write_report", lambda folder: None)


@pytest.mark.parametrize("case", range(10))
def test_a_fit_never_overruns_its_budget_by_more_than_10_percent(case, tiny_data, tmp_path, monkeypatch, tiny_encoder_dir):
    import tailtune

    rng = random.Random(case)
    budget = rng.choice([300, 600, 1200, 3600, 7200])
    sim = Sim(rng, train_factor=rng.choice([0.5, 1.0, 1.5, 2.0, 3.0]))
    probe = {"train_s": rng.uniform(0.2, 3.0), "eval_s": rng.uniform(0.01, 0.2), "fixed_s": rng.uniform(5, 40),
             "checkpoint_s": rng.uniform(0.5, 5)}
    _install(monkeypatch, sim, probe, n_val=24)
    start = sim.t
    try:
        tailtune.fit(tiny_data("multiclass"), tmp_path / "fit", model=str(tiny_encoder_dir), budget=budget, seeds=3,
                     finalists=2, clock=sim.clock)
    except BudgetTooSmall:
        assert sim.t - start <= 0.3 * budget  # it said so early, before spending the budget
        return
    assert sim.t - start <= 1.10 * budget, (budget, sim.train_factor, sim.t - start)
