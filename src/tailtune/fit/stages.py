"""The stages of a fit, each a unit (or a series of units) recorded in ``fit.json`` when complete.

``analyze`` -> ``candidates`` -> ``probe`` -> ``screen`` -> ``plan`` -> ``train/<candidate>/seed-<s>``
(the first) -> ``replan`` -> the other training units -> ``decide`` -> ``ensemble`` -> ``final`` ->
``report``. Every stage reads what earlier units recorded, so a fit killed at any moment continues
from the first unrecorded unit with the same inputs.
"""

from __future__ import annotations

from typing import Any

import torch

from tailtune.data.stats import split_texts
from tailtune.fit import probe as fit_probe
from tailtune.fit.analysis import analyze_data, model_info, write_heldout, write_splits
from tailtune.fit.candidates import BASELINE, DataFeatures, candidate_rules, shared_settings
from tailtune.fit.context import CANDIDATES_DIR, DATA_DIR, HELDOUT_DIR, FitContext, _setting
from tailtune.fit.recipes import candidate_recipe, lint_candidate, read_template, run_recipe, write_template
from tailtune.fit.stages_finish import stage_ensemble, stage_final, stage_report
from tailtune.fit.stages_train import stage_decide, stage_plan, stage_screen, stage_train

__all__ = ["run_stages", "stage_analyze", "stage_candidates", "stage_probe"]

#: share of the budget the probe's timed steps may use (between 3 and 30 seconds)
PROBE_SHARE = 0.01
#: the probe's batch on a CPU (the cost per text hardly depends on the batch there; smaller is quicker)
PROBE_CPU_BATCH = 16


# ------------------------------------------------------------------------------------- analysis
def stage_analyze(ctx: FitContext) -> dict[str, Any]:
    def work():
        summary = analyze_data(ctx.loaded, ctx.folder)
        write_splits(ctx.loaded, ctx.folder / DATA_DIR)
        heldout = write_heldout(ctx.loaded, ctx.folder / HELDOUT_DIR)
        return summary | {"data_dir": DATA_DIR, "heldout": ctx.rel(heldout) if heldout else None,
                          "analysis_file": "analysis.json"}

    return ctx.unit("analyze", work, stage="analysing the data")


def stage_candidates(ctx: FitContext, analysis: dict) -> dict[str, Any]:
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


def stage_probe(ctx: FitContext, cands: dict) -> dict[str, Any]:
    def work():
        texts = [t for c in split_texts(ctx.loaded.splits["train"]).chunks for t in c.to_pylist()]
        n_total = sum(len(ds) for name, ds in ctx.loaded.splits.items() if name != "test")
        batch = _setting(cands, "train.batch_size")
        baseline = next(c for c in cands["candidates"] if c["name"] == BASELINE)
        # the baseline's own recipe (model section, max_length, length chunking) as one unit would train it
        recipe = run_recipe(read_template(ctx.folder / baseline["recipe_file"]), seed=ctx.opts.seed,
                            output=ctx.folder / CANDIDATES_DIR / BASELINE / "probe",
                            epochs=_setting(cands, "train.epochs"), data_dir=ctx.folder / DATA_DIR)
        probe_batch = batch if ctx.device.startswith("cuda") else min(batch, PROBE_CPU_BATCH)
        return fit_probe.probe_costs(recipe, ctx.task, texts, batch_size=probe_batch, device=ctx.device,
                                     n_total=n_total, seed=ctx.opts.seed,
                                     max_s=min(30.0, max(3.0, PROBE_SHARE * ctx.opts.budget_s)))

    result = ctx.unit("probe", work, stage="measuring the model's speed")
    if result.get("threads"):  # the measured faster thread count, for the rest of this fit (api.fit restores it)
        torch.set_num_threads(int(result["threads"]))
    return result


def run_stages(ctx: FitContext) -> dict[str, Any]:
    """Every stage in order; returns the ``final`` unit's result."""
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
