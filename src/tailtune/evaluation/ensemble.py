"""Ensembles of run directories: average the members' probabilities, re-tune, write a run-like folder.

.. math:: \\bar p(x) = \\frac{\\sum_m w_m \\, p_m(x)}{\\sum_m w_m}

where ``p_m`` is member m's temperature-scaled probability (its own ``postprocess.json``
temperature; thresholds/biases of members are not used, the ensemble gets its own). Sigmoid outputs
are averaged per label, softmax outputs per class (per aspect for aspect tasks).

The output folder looks like a run to ``evaluate``, ``tune`` and ``predict``::

    task.json            the members' (identical) task
    members.json         {"members": [absolute run paths], "weights": [normalised weights]}
    predictions/<split>.npz   logits = logit(p̄) (sigmoid) or log(p̄) (softmax), targets
    postprocess.json     tuned on the ensemble's validation predictions (temperature, thresholds/biases)
    eval.json            default and tuned metrics per split

Members must share ``task.json`` and their predictions of a split must have identical targets (the
same texts in the same order). Splits present in every member are ensembled; ``validation`` is
required (the rule is re-tuned on it).

Example:
    >>> build_ensemble(["runs/s1", "runs/s2", "runs/s3"], "runs/ens")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.errors import RunDirError
from tailtune.evaluation.postprocess import probs_to_logits
from tailtune.evaluation.run_dir import (
    MEMBERS,
    available_splits,
    load_predictions,
    open_run,
    read_members,
    save_predictions,
)
from tailtune.evaluation.runs import evaluate_run, tune_run
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_json
from tailtune.utils.runlock import LOCK_NAME

__all__ = ["build_ensemble", "read_members"]  # read_members lives in evaluation.run_dir


def build_ensemble(
    run_dirs: list[str | os.PathLike],
    out: str | os.PathLike,
    *,
    weights: list[float] | None = None,
    temperature: str = "scalar",
    min_support: int = 5,
    hierarchy_mode: str | None = None,
) -> dict[str, Any]:
    """Average the runs' probabilities, write the ensemble folder ``out``, re-tune on validation.

    Returns the :func:`tailtune.evaluation.runs.tune_run` summary plus ``members`` and ``splits``.

    Raises:
        ValueError: fewer than 2 runs, or bad weights.
        RunDirError: a member is not a run, tasks or targets differ, no common validation split,
            or ``out`` is a training run or a non-empty folder that is not an ensemble.
    """
    if len(run_dirs) < 2:
        raise ValueError(f"an ensemble needs at least 2 run directories, got {len(run_dirs)}")
    if weights is None:
        weights = [1.0] * len(run_dirs)
    if len(weights) != len(run_dirs) or any((not np.isfinite(w)) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(
            f"weights must be {len(run_dirs)} non-negative numbers with a positive sum (one per run), got {weights}"
        )
    out = Path(out)
    if out.exists():
        held = {LOCK_NAME}  # the lock of the command writing it (tailtune.utils.runlock)
        if (out / rundir.MODEL_DIR).exists() or (
            out.is_dir() and any(p.name not in held for p in out.iterdir()) and not (out / MEMBERS).is_file()
        ):
            raise RunDirError(f"{out}: exists and is not an ensemble folder; refusing to overwrite. Fix: pick a new --out")
    runs = [open_run(r) for r in run_dirs]
    if len({str(r.path.resolve()) for r in runs}) != len(runs):
        raise RunDirError("the same run directory is listed twice; pass distinct runs")
    task = runs[0].task
    for r in runs[1:]:
        if r.task.to_dict() != task.to_dict():
            raise RunDirError(f"{r.path}/task.json differs from {runs[0].path}/task.json; ensemble runs of one task")
    splits = sorted(set.intersection(*(set(available_splits(r)) for r in runs)))
    if "validation" not in splits:
        raise RunDirError(
            "the runs share no 'validation' predictions (needed to tune the ensemble); shared splits: "
            f"{splits or 'none'}. Fix: ensemble finished runs of the same data"
        )
    w = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    averaged: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in splits:
        acc, targets = None, None
        for r, wm in zip(runs, w, strict=True):
            logits, t = load_predictions(r, split)
            if targets is None:
                targets = t
            elif t.shape != targets.shape or not np.array_equal(t, targets):
                raise RunDirError(
                    f"{r.path}: predictions/{split}.npz targets differ from {runs[0].path}'s; the runs were scored "
                    "on different data. Fix: ensemble runs trained on the same splits"
                )
            p = r.postprocess.probabilities(logits, task)
            acc = p * wm if acc is None else acc + p * wm
        averaged[split] = (probs_to_logits(acc, task), targets)

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / rundir.TASK, task.to_dict())
    for stale in (rundir.POSTPROCESS, rundir.EVAL):
        if (out / stale).exists():
            (out / stale).unlink()
    for split, (z, t) in averaged.items():
        save_predictions(out, split, z, t)
    atomic_write_json(
        out / MEMBERS, {"members": [str(r.path.resolve()) for r in runs], "weights": w.tolist()}
    )
    for split in splits:
        evaluate_run(out, split=split)
    summary = tune_run(out, temperature=temperature, min_support=min_support, hierarchy_mode=hierarchy_mode)
    summary["members"] = [str(r.path.resolve()) for r in runs]
    summary["splits"] = splits
    member_scores = []
    for r in runs:
        if "test" in splits:
            member_scores.append(evaluate_run(r.path, split="test", write=False))
    if member_scores:
        summary["members_test_macro_f1"] = [
            m.get("test_tuned", m["test"])["macro_f1"] for m in member_scores
        ]
    return summary
