"""The planner: what the fine-tuning stage can afford in the budget, and the guard that holds it.

**Cost model.** A probe times a few real training steps and evaluation batches of the encoder on
the data (:mod:`tailtune.fit.probe`); a run then costs about::

    fixed + epochs * (n_train * train_s + (n_val + min(n_train, 2000)) * eval_s + checkpoint_s)
          + n_val * eval_s                              # the final validation predictions

(the 2,000 are the training subsample every epoch scores). After the first real run the model is
scaled by ``factor = measured / predicted``, and the remaining units are planned again.

**The plan.** The full plan trains every finalist (the baseline and the top screened candidates)
for every seed and the rule-given epochs on the whole training split. When its estimate does not
fit in the time left (after reserving the decision and finishing stages), it shrinks in this order,
one step at a time, until it fits, and every cut is recorded with its estimated cost:

1. drop challengers from the lowest screening rank, down to one;
2. lower the epochs, down to 2;
3. lower the seeds, down to 2 (two seeds are the fewest that measure seed noise);
4. lower the epochs to 1;
5. halve the training split (stratified subsample) down to :data:`SUBSAMPLE_FLOOR` texts;
6. drop the last challenger (only the baseline is trained; the log says no challenger fitted);
7. one seed.

If even that does not fit, :class:`BudgetTooSmall` names the smallest budget that would.

**The bound.** A unit starts only when its estimate fits before ``end - reserve``; a
:class:`BudgetGuard` inside the Trainer stops it at ``end - reserve - post_stop`` (``post_stop``:
the evaluation, checkpoint and predictions that still follow a stop). With the reserves and the
post-stop costs estimated within a factor 1.5 (they are measured by the probe and the first run),
the whole fit ends within 10% of the budget; ``tests/fit/test_planner.py`` checks it with a fake clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tailtune.errors import TailtuneError

__all__ = ["BudgetGuard", "BudgetTooSmall", "CostModel", "budget_too_small", "Plan", "make_plan", "replan_units", "SUBSAMPLE_FLOOR",
           "unit_order"]

#: the smallest training subsample the planner goes down to
SUBSAMPLE_FLOOR = 400
#: share of the time left that the first (probe-based) plan may use: room for a mis-estimate
PLAN_MARGIN = 0.85
#: safety factor on the reserves and post-stop costs (estimates of evaluation and writing)
RESERVE_FACTOR = 1.5


class BudgetTooSmall(TailtuneError):
    """Not even the smallest useful fine-tune fits in the budget."""


def _duration(seconds: float) -> str:
    """``45`` -> ``"45s"``, ``180`` -> ``"3m"``, ``5400`` -> ``"1h30m"`` (what ``--budget`` reads)."""
    s = int(math.ceil(seconds))
    if s < 60:
        return f"{s}s"
    h, m = divmod(math.ceil(s / 60), 60)
    return f"{h}h{m}m" if h and m else f"{h}h" if h else f"{m}m"


def budget_too_small(free_s: float, need_s: float, what: str, *, budget_s: float | None) -> BudgetTooSmall:
    """The error for a budget that leaves ``free_s`` seconds for fine-tuning (after the reserves and
    :data:`PLAN_MARGIN`) when ``what`` needs ``need_s``: it names the budget given and a budget that
    would do (whole minutes, one to spare), and says that the rerun continues the fit."""
    short = (need_s - free_s) / PLAN_MARGIN  # free_s < 0 (the reserves exceed what is left) counts in full
    given = f"--budget {_duration(budget_s)}" if budget_s else "the budget"
    fix = (f"--budget {_duration(60 * (math.ceil((budget_s + short) / 60) + 1))} or more"
           if budget_s else f"raise --budget by at least {math.ceil(short / 60) + 1} minutes")
    return BudgetTooSmall(f"{given} leaves {max(free_s, 0):.0f} s for fine-tuning, but {what} needs about {need_s:.0f} s. "
                          f"Fix: {fix} (the same command with it continues this fit; what it measured is kept)")


@dataclass
class CostModel:
    """Seconds per training example, per evaluated example and per run (see the module docstring)."""

    train_s: float
    eval_s: float
    fixed_s: float
    checkpoint_s: float
    factor: float = 1.0
    train_eval_max: int = 2000

    def run(self, n_train: int, epochs: int, n_val: int) -> float:
        """Estimated seconds of one training run (including its evaluation and writes)."""
        per_epoch = (n_train * self.train_s + (n_val + min(n_train, self.train_eval_max)) * self.eval_s
                     + self.checkpoint_s)
        return self.factor * (self.fixed_s + epochs * per_epoch + n_val * self.eval_s)

    def post_stop(self, n_train: int, n_val: int) -> float:
        """What a run still does after the guard stops it: one evaluation, a checkpoint, the final
        predictions and the model (with the safety factor)."""
        work = (2 * n_val + min(n_train, self.train_eval_max)) * self.eval_s + 2 * self.checkpoint_s
        return RESERVE_FACTOR * self.factor * work

    def predict(self, n: int) -> float:
        return self.factor * (n * self.eval_s + self.fixed_s / 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    """What the fine-tuning stage trains, its estimate, and what was cut (with estimated costs)."""

    arms: list[str]
    seeds: list[int]
    epochs: int
    train_size: int
    unit_s: float
    estimate_s: float
    available_s: float
    full_estimate_s: float
    steps: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cut(plan: dict, what: str, saved: float) -> None:
    plan["steps"].append(what)
    plan["skipped"].append({"what": what, "estimated_s": round(saved, 1)})


def _shrink_steps(p: dict, n_full: int, floor: int):
    """Yield after each shrink step of the documented order (the caller stops when the plan fits)."""
    while len(p["arms"]) > 2:
        p["dropped"] = p["arms"].pop()
        yield f"dropped challenger {p['dropped']} (lowest screening rank)"
    while p["epochs"] > 2:
        p["epochs"] -= 1
        yield f"epochs lowered to {p['epochs']}"
    while len(p["seeds"]) > 2:
        yield f"dropped seed {p['seeds'].pop()}"
    if p["epochs"] > 1:
        p["epochs"] = 1
        yield "epochs lowered to 1"
    while p["size"] > floor:
        p["size"] = max(floor, p["size"] // 2)
        yield f"training subsample of {p['size']:,} of {n_full:,} texts"
    if len(p["arms"]) > 1:
        p["dropped"] = p["arms"].pop()
        yield f"dropped the last challenger {p['dropped']}: only the baseline fits"
    if len(p["seeds"]) > 1:
        yield f"dropped seed {p['seeds'].pop()}"


def make_plan(available_s: float, arms: list[str], seeds: list[int], *, epochs: int, n_train: int, n_val: int,
              cost: CostModel, floor: int = SUBSAMPLE_FLOOR, budget_s: float | None = None) -> Plan:
    """The largest plan of the documented shrink order whose estimate fits in ``available_s``.

    ``arms`` are the baseline followed by the challengers in screening order; ``budget_s`` (the whole
    budget) only words the error.

    Raises:
        BudgetTooSmall: the smallest plan (baseline, 1 seed, 1 epoch, ``floor`` texts) does not fit.
    """
    p = {"arms": list(arms), "seeds": list(seeds), "epochs": int(epochs), "size": int(n_train), "steps": [],
         "skipped": []}

    def estimate() -> float:
        return len(p["arms"]) * len(p["seeds"]) * cost.run(p["size"], p["epochs"], n_val)

    full = estimate()
    previous = full
    if full > available_s:
        for step in _shrink_steps(p, n_train, min(floor, n_train)):
            now = estimate()
            _cut(p, step, previous - now)
            previous = now
            if now <= available_s:
                break
        else:
            raise budget_too_small(available_s, previous, f"the smallest run (baseline, 1 seed, 1 epoch, {p['size']:,} "
                                   "texts)", budget_s=budget_s)
    unit = cost.run(p["size"], p["epochs"], n_val)
    return Plan(arms=p["arms"], seeds=p["seeds"], epochs=p["epochs"], train_size=p["size"], unit_s=unit,
                estimate_s=estimate(), available_s=available_s, full_estimate_s=full, steps=p["steps"],
                skipped=p["skipped"])


def _arm_seed_steps(arms: list[str], seeds: list[int]):
    """The arm and seed steps of the shrink order (epochs and the subsample are fixed by now)."""
    while len(arms) > 2:
        yield f"dropped challenger {arms.pop()} (lowest screening rank)"
    while len(seeds) > 2:
        yield f"dropped seed {seeds.pop()}"
    if len(arms) > 1:
        yield f"dropped the last challenger {arms.pop()}: only the baseline fits"
    while len(seeds) > 1:
        yield f"dropped seed {seeds.pop()}"


def replan_units(available_s: float, arms: list[str], seeds: list[int], *, unit_s: float,
                 done: int) -> tuple[list[str], list[int], list[dict]]:
    """After the first run: the arms and seeds (from the full finalist list and the seeds asked for)
    that fit with the measured unit cost; the epochs and the subsample stay as planned, so every run
    of the comparison is alike. ``done`` units are trained already. This may add back seeds or
    challengers the first plan cut when the runs are cheaper than estimated.

    Returns ``(arms, seeds, skipped)``.
    """
    arms, seeds = list(arms), list(seeds)
    skipped: list[dict] = []
    capacity = done + max(0, int((available_s + 1e-9) // max(unit_s, 1e-9)))
    before = len(arms) * len(seeds)
    if before > capacity:
        for step in _arm_seed_steps(arms, seeds):
            now = len(arms) * len(seeds)
            skipped.append({"what": step, "estimated_s": round((before - now) * unit_s, 1)})
            before = now
            if now <= capacity:
                break
    return arms, seeds, skipped


def unit_order(arms: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """Seed-major order: every arm's first seed, then every arm's second seed, ... so that a budget
    that runs out leaves complete seed groups for the comparison."""
    return [(arm, seed) for seed in seeds for arm in arms]


class BudgetGuard:
    """A Trainer callback that stops training when ``clock()`` reaches ``deadline`` (after an
    optimiser step or an epoch); :attr:`stopped` says whether it did. Only ``control`` is changed."""

    def __init__(self, deadline: float, clock: Callable[[], float]):
        self.deadline = float(deadline)
        self.clock = clock
        self.stopped = False

    def _check(self, control):
        if self.clock() >= self.deadline:
            self.stopped = True
            control.should_training_stop = True
        return control

    def on_step_end(self, args, state, control, **kwargs):
        return self._check(control)

    def on_epoch_end(self, args, state, control, **kwargs):
        return self._check(control)

    def __getattr__(self, name):  # the other TrainerCallback hooks: do nothing
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)


def tune_cost(n_items: int, n_outputs: int, *, blocks: int, bootstrap: int) -> float:
    """Seconds of one bagged rule fit (:func:`tailtune.evaluation.tuning.tune_decision_rule`) on
    ``n_items`` x ``n_outputs`` logits; ``blocks``: independently tuned blocks (aspects: one per aspect).
    Measured on the 2-core CPU: 390 x 90 multilabel 1.4 s, 190 x 4 multiclass 0.2 s, 200 x 8 x 4
    aspects 1.6 s at 100 resamples."""
    return 0.3 + bootstrap * (blocks * 1.8e-3 + n_items * n_outputs * 3.5e-7)


def decide_reserve(n_runs: int, n_val: int, n_outputs: int, *, blocks: int, bootstrap: int = 100) -> float:
    """The decision stage: two cross-fitted rule fits per run on validation halves, the paired tests."""
    per_run = 2 * tune_cost(n_val // 2 + 1, n_outputs, blocks=blocks, bootstrap=bootstrap)
    return RESERVE_FACTOR * (n_runs * per_run + 5.0)


def finish_reserve(cost: CostModel, *, members: int, n_val: int, n_test: int, n_outputs: int, blocks: int,
                   copy_s: float) -> float:
    """The finishing stage: the ensemble check and build (rule fits, cross-fitting), the members' test
    predictions, the final rule fit and scores, copying the model, the report (about 10 s)."""
    fits = 5 * tune_cost(n_val, n_outputs, blocks=blocks, bootstrap=100)
    return RESERVE_FACTOR * (members * cost.predict(n_test) + fits + copy_s + 10.0)
