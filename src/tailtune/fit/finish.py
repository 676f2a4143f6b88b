"""Finishing: the winner's seeds as an ensemble when that helps on validation, the bagged decision
rule with temperature scaling, then the test split scored once; the fit folder becomes run-like.

**Ensemble or one model?** The winner's seed runs are averaged (:func:`tailtune.evaluation.ensemble
.build_ensemble`, validation predictions only at this point). The ensemble and every member are
scored with the same cross-fitted tuned rule (:mod:`tailtune.evaluation.crossfit`), so the
ensemble's own validation tuning cannot flatter it. The ensemble ships when its score is at least
the members' mean (what one model of this recipe is expected to score); otherwise the member with
the best cross-fitted score ships.

**The final folder** (the fit's output folder itself): ``task.json``, ``recipe.yaml``,
``history.jsonl`` (a member's), ``predictions/{validation,test}.npz``, then ``model/`` (one model)
or ``members.json`` (relative paths to the member runs under ``candidates/``), then
:func:`tailtune.evaluation.runs.tune_run`: temperature + bagged rule fitted on validation, written
to ``postprocess.json``, and ``eval.json`` with validation and test under the default and the tuned
rule. The test split is predicted here, after every choice is recorded, and nowhere else.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.evaluation import crossfit, ensemble, runs  # modules: tests replace their functions
from tailtune.evaluation.predictor import Predictor
from tailtune.evaluation.run_dir import MEMBERS, load_predictions, open_run, save_predictions
from tailtune.experiments.stats import paired_bootstrap
from tailtune.fit import decide  # a module: tests change its constants
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_bytes, atomic_write_json

__all__ = ["RUN_FILES", "assemble_final", "choose_ensemble"]

FINISH_DIR = "finish"
#: the run-directory entries the final stage writes into the fit folder (removed before a redo)
RUN_FILES = (rundir.MODEL_DIR, rundir.PREDICTIONS_DIR, "members.json", rundir.POSTPROCESS, rundir.EVAL,
             rundir.RECIPE, rundir.TASK, rundir.HISTORY, rundir.REPORT)


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


def choose_ensemble(folder: Path, members: dict[int, Path], scores: dict[int, dict], task, *,
                    hierarchy_mode: str | None, no_time: str | None = None) -> dict[str, Any]:
    """Ensemble or the best single member, decided on cross-fitted validation scores (``no_time``: why
    an ensemble cannot finish within the budget; the best member then ships)."""
    seeds = sorted(members)
    best = max(seeds, key=lambda s: scores[s]["tuned"])
    out: dict[str, Any] = {"members": {str(s): os.path.relpath(members[s], folder) for s in seeds}, "best_seed": best,
                           "member_tuned": {str(s): scores[s]["tuned"] for s in seeds}}
    if len(seeds) < 2:
        return out | {"use_ensemble": False, "reason": "one finished seed: no ensemble to build"}
    if no_time:
        return out | {"use_ensemble": False, "reason": f"{no_time}: seed {best} ships alone (best cross-fitted member)"}
    staging = _fresh(folder / FINISH_DIR / "ensemble-check")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ensemble.build_ensemble([members[s] for s in seeds], staging, hierarchy_mode=hierarchy_mode)
    logits, targets = load_predictions(open_run(staging), "validation")
    y = scores[seeds[0]]["y"]
    pred = crossfit.cross_fitted_decisions(logits, y, task, bootstrap=decide.DECIDE_BOOTSTRAP,
                                           hierarchy_mode=hierarchy_mode)
    ens = decide.macro_f1(task, y, pred)
    mean_member = float(np.mean([scores[s]["tuned"] for s in seeds]))
    test = paired_bootstrap(y, [scores[s]["tuned_pred"] for s in seeds], pred, task=task,
                            n_resamples=decide.N_RESAMPLES)
    use = ens >= mean_member
    reason = (f"the {len(seeds)}-seed ensemble scores {ens:.4f} cross-fitted validation macro-F1 against the members' "
              f"mean {mean_member:.4f} ({100 * (ens - mean_member):+.1f} points, item interval "
              f"[{100 * test.ci_low:+.1f}, {100 * test.ci_high:+.1f}]): "
              + ("the ensemble ships" if use else f"seed {best} ships alone (best cross-fitted member)"))
    return out | {"use_ensemble": use, "ensemble_tuned": ens, "members_mean_tuned": mean_member,
                  "item_ci": [test.ci_low, test.ci_high], "reason": reason}


def _predict_test(run: Path, texts: list[str], targets: np.ndarray, device: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation notes: the run truncates as it trained
        logits = Predictor.from_run_dir(run, device=device).predict_logits(texts)
    save_predictions(run, "test", logits, targets)


def _copy_file(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, src.read_bytes())


def _copy_model(src: Path, dst: Path) -> None:
    tmp = dst.parent / f".{dst.name}.tmp"
    _fresh(tmp)
    shutil.copytree(src, tmp)
    os.replace(tmp, dst)


def _single(folder: Path, run: Path) -> None:
    _copy_model(run / rundir.MODEL_DIR, folder / rundir.MODEL_DIR)
    for split in ("validation", "test"):
        src = run / rundir.PREDICTIONS_DIR / f"{split}.npz"
        if src.is_file():
            _copy_file(src, folder / rundir.PREDICTIONS_DIR / f"{split}.npz")
    _copy_file(run / rundir.TASK, folder / rundir.TASK)


def _ensemble(folder: Path, members: list[Path], *, hierarchy_mode: str | None) -> None:
    staging = _fresh(folder / FINISH_DIR / "ensemble")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ensemble.build_ensemble(members, staging, hierarchy_mode=hierarchy_mode)
    for npz in sorted((staging / rundir.PREDICTIONS_DIR).glob("*.npz")):
        _copy_file(npz, folder / rundir.PREDICTIONS_DIR / npz.name)
    _copy_file(staging / rundir.TASK, folder / rundir.TASK)
    weights = [1.0 / len(members)] * len(members)
    atomic_write_json(folder / MEMBERS,
                      {"members": [os.path.relpath(m, folder) for m in members], "weights": weights})


def assemble_final(folder: Path, choice: dict, test: tuple[list[str], np.ndarray] | None, *, device: str,
                   hierarchy_mode: str | None) -> dict[str, Any]:
    """Write the run-like final folder, tune its rule on validation, score test once; return the scores."""
    for name in RUN_FILES:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    members = {int(s): folder / m for s, m in choice["members"].items()}
    shipped = [members[s] for s in sorted(members)] if choice["use_ensemble"] else [members[int(choice["best_seed"])]]
    if test is not None:
        for run in shipped:
            _predict_test(run, test[0], test[1], device)
    if choice["use_ensemble"]:
        _ensemble(folder, shipped, hierarchy_mode=hierarchy_mode)
    else:
        _single(folder, shipped[0])
    _copy_file(shipped[0] / rundir.RECIPE, folder / rundir.RECIPE)
    _copy_file(shipped[0] / rundir.HISTORY, folder / rundir.HISTORY)
    summary = runs.tune_run(folder, hierarchy_mode=hierarchy_mode)
    return {"shipped": [os.path.relpath(m, folder) for m in shipped], "ensemble": bool(choice["use_ensemble"]),
            "validation": {"default": summary["validation_default"], "tuned": summary["validation_tuned"]},
            "test": None if summary["test_default"] is None else
            {"default": summary["test_default"], "tuned": summary["test_tuned"]},
            "postprocess": {k: summary["postprocess"].get(k) for k in ("temperature", "hierarchy_mode", "tuned_on")}}
