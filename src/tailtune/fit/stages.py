"""The stages of a fit, each a unit (or a series of units) recorded in ``fit.json`` when complete.

``analyze`` -> ``candidates`` -> ``probe`` -> ``screen`` -> ``plan`` -> ``train/<candidate>/seed-<s>``
(the first) -> ``replan`` -> the other training units -> ``decide`` -> ``ensemble`` -> ``final`` ->
``report``. Every stage reads what earlier units recorded, so a fit killed at any moment continues
from the first unrecorded unit with the same inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailtune.fit.candidates import BASELINE
from tailtune.fit.options import Budget, FitOptions
from tailtune.fit.progress import FitProgress
from tailtune.fit.state import FitState

__all__ = ["FitContext", "run_stages"]

CANDIDATES_DIR = "candidates"
#: share of the budget the probe's timed steps may use (between 3 and 30 seconds)
PROBE_SHARE = 0.01
#: the probe's batch on a CPU (the cost per text hardly depends on the batch there; smaller is quicker)
PROBE_CPU_BATCH = 16
DATA_DIR = "data"
HELDOUT_DIR = "heldout"


@dataclass
class FitContext:
    """A running fit: its options, data, state file, budget, progress line and device."""

    opts: FitOptions
    loaded: Any
    state: FitState
    budget: Budget
    progress: FitProgress
    device: str
    bf16: bool = False
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.opts.output

    @property
    def task(self):
        return self.loaded.task

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.folder)

    def unit(self, name: str, fn, *, stage: str | None = None) -> dict[str, Any]:
        """Run ``fn`` as unit ``name`` unless it is recorded; record its result and duration."""
        if self.state.done(name):
            return self.state.result(name)
        self.progress.stage(stage or name)
        start = self.budget.now()
        result = fn()
        self.state.record(name, result, self.budget.now() - start)
        return result


# ------------------------------------------------------------------------------------- analysis
def stage_analyze(ctx: FitContext) -> dict[str, Any]:
    from tailtune.fit.analysis import analyze_data, write_heldout, write_splits

    def work():
        summary = analyze_data(ctx.loaded, ctx.folder)
        write_splits(ctx.loaded, ctx.folder / DATA_DIR)
        heldout = write_heldout(ctx.loaded, ctx.folder / HELDOUT_DIR)
        return summary | {"data_dir": DATA_DIR, "heldout": ctx.rel(heldout) if heldout else None,
                          "analysis_file": "analysis.json"}

    return ctx.unit("analyze", work, stage="analysing the data")


def stage_candidates(ctx: FitContext, analysis: dict) -> dict[str, Any]:
    from tailtune.fit.analysis import model_info
    from tailtune.fit.candidates import DataFeatures, candidate_rules, shared_settings
    from tailtune.fit.recipes import candidate_recipe, lint_candidate, write_template

    def work():
        features = DataFeatures(**analysis["features"])
        model = model_info(ctx.opts.model)
        shared = shared_settings(features, model, device=ctx.device, bf16=ctx.bf16, max_epochs=ctx.opts.max_epochs)
        out = []
        for cand in candidate_rules(features):
            template = candidate_recipe(cand, shared, ctx.task, ctx.folder / DATA_DIR)
            path = write_template(template, ctx.folder / CANDIDATES_DIR / cand.name / "recipe.yaml")
            lint = lint_candidate(template, analysis["lint_counts"], features.n_train, task=ctx.task)
            out.append(cand.to_dict() | {"recipe_file": ctx.rel(path), "lint": lint})
        return {"features": features.to_dict(), "model": model.to_dict(),
                "shared": [s.to_dict() for s in shared], "candidates": out}

    return ctx.unit("candidates", work, stage="choosing candidates")


def _setting(cands: dict, path: str) -> Any:
    return next(s["value"] for s in cands["shared"] if s["path"] == path)


def stage_probe(ctx: FitContext, cands: dict) -> dict[str, Any]:
    from tailtune.data.stats import split_texts
    from tailtune.fit.probe import probe_costs
    from tailtune.fit.recipes import read_template, run_recipe

    def work():
        texts = [t for c in split_texts(ctx.loaded.splits["train"]).chunks for t in c.to_pylist()]
        n_total = sum(len(ds) for name, ds in ctx.loaded.splits.items() if name != "test")
        batch = _setting(cands, "train.batch_size")
        baseline = next(c for c in cands["candidates"] if c["name"] == BASELINE)
        # the baseline's own recipe (model section, max_length, length chunking) as one unit would train it
        recipe = run_recipe(read_template(ctx.folder / baseline["recipe_file"]), seed=ctx.opts.seed,
                            output=ctx.folder / CANDIDATES_DIR / BASELINE / "probe",
                            epochs=_setting(cands, "train.epochs"), data_dir=ctx.folder / DATA_DIR)
        return probe_costs(recipe, ctx.task, texts,
                           batch_size=batch if ctx.device.startswith("cuda") else min(batch, PROBE_CPU_BATCH),
                           device=ctx.device, n_total=n_total, seed=ctx.opts.seed,
                           max_s=min(30.0, max(3.0, PROBE_SHARE * ctx.opts.budget_s)))

    result = ctx.unit("probe", work, stage="measuring the model's speed")
    if result.get("threads"):  # the measured faster thread count, for the rest of this fit (api.fit restores it)
        import torch

        torch.set_num_threads(int(result["threads"]))
    return result


def cost_model(probe: dict, factor: float = 1.0):
    from tailtune.fit.planner import CostModel
    from tailtune.utils.rundir import TRAIN_EVAL_MAX

    return CostModel(train_s=probe["train_s"], eval_s=probe["eval_s"], fixed_s=probe["fixed_s"],
                     checkpoint_s=probe["checkpoint_s"], factor=factor, train_eval_max=TRAIN_EVAL_MAX)


def run_stages(ctx: FitContext) -> dict[str, Any]:
    """Every stage in order; returns the ``final`` unit's result."""
    from tailtune.fit.stages_finish import stage_ensemble, stage_final, stage_report
    from tailtune.fit.stages_train import stage_decide, stage_plan, stage_screen, stage_train

    analysis = stage_analyze(ctx)
    cands = stage_candidates(ctx, analysis)
    probe = stage_probe(ctx, cands)
    screening = stage_screen(ctx, analysis, cands, probe)
    plan = stage_plan(ctx, analysis, cands, probe, screening)
    runs = stage_train(ctx, analysis, cands, probe, plan)
    decision = stage_decide(ctx, runs)
    choice = stage_ensemble(ctx, runs, decision)
    final = stage_final(ctx, choice)
    stage_report(ctx)
    return final
