"""Re-scoring and tuning run directories (and ensemble directories, which look alike).

Opening, reading and writing a run directory is :mod:`tailtune.evaluation.run_dir` (re-exported
here: ``open_run``, ``load_predictions``, ``save_predictions``, ...). Every problem raises
:class:`~tailtune.errors.RunDirError` naming the file and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.errors import RunDirError
from tailtune.evaluation.postprocess import PostProcess
from tailtune.evaluation.predictor import Predictor
from tailtune.evaluation.run_dir import (
    MEMBERS,
    RunInfo,
    available_splits,
    load_predictions,
    open_run,
    read_eval,
    read_run_recipe,
    save_predictions,
    update_eval,
)
from tailtune.evaluation.tuning import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_MARGIN,
    check_tuning_split,
    tune_decision_rule,
)
from tailtune.metrics import classification_report
from tailtune.utils import rundir

__all__ = [
    "MEMBERS",
    "RunInfo",
    "available_splits",
    "evaluate_run",
    "load_predictions",
    "open_run",
    "save_predictions",
    "tune_run",
]

def _targets(task, targets: np.ndarray) -> np.ndarray:
    y = np.rint(np.asarray(targets, dtype=np.float64)).astype(np.int64)
    return y.reshape(-1) if task_kind(task).single_label else y


def _recompute(
    run: RunInfo, split: str, data: str | os.PathLike | None, *, trust_remote_code: bool = False,
    columns: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict ``split`` with the run's model from the data named by ``data`` or recipe.yaml, read as
    training read it (:func:`tailtune.recipe.data.load_recipe_data` with the run's task); ``columns``
    (``{"text": ..., "labels": ...}``) name other columns than the recipe's, for data laid out otherwise."""
    # datasets/pyarrow: loaded only when a split is recomputed
    from tailtune.recipe.data import load_recipe_data

    recipe = read_run_recipe(run.path)
    if columns:
        recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update=columns)})
    source = data
    if source is None:
        source = recipe.data.path
        if source and not Path(source).exists() and (run.path / source).exists():
            source = run.path / source
    if not source:
        raise RunDirError(
            f"{run.path}: cannot recompute split {split!r}: no data path (recipe.yaml has no data.path). "
            "Fix: pass --data PATH"
        )
    loaded = load_recipe_data(recipe, data_path=source, task=run.task, require=())
    if split not in loaded.splits and Path(source).is_file():
        raise RunDirError(
            f"{source}: a single file is read as training data (train, and a validation split carved from it), so "
            f"it has no split {split!r}. Fix: put it in a folder as {split}{Path(source).suffix} next to the "
            f"training file (train.*, which fixes how labels are read) and pass the folder"
        )
    if split not in loaded.splits:
        raise RunDirError(
            f"{source}: has no split {split!r}; available: {sorted(loaded.splits)}. Fix: pass one of those to --split"
        )
    ds = loaded.splits[split]
    predictor = Predictor.from_run_dir(run.path, trust_remote_code=trust_remote_code)
    logits = predictor.predict_logits(list(ds["text"]))
    targets = np.asarray(ds["labels"])
    save_predictions(run.path, split, logits, targets)
    return logits.astype(np.float32), targets


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    split: str = "test",
    recompute: bool = False,
    data: str | os.PathLike | None = None,
    write: bool = True,
    trust_remote_code: bool = False,
    text_column: str | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Score ``split`` of a run with the default rule and, when ``postprocess.json`` holds a tuned rule,
    with that too; update ``eval.json`` (keys ``<split>`` and ``<split>_tuned``) and return the entries.

    ``recompute=True`` (or missing predictions when ``data`` is given) predicts the split with the
    run's model first and rewrites ``predictions/<split>.npz``; ``trust_remote_code`` (off unless
    passed) lets that model's own Python code run. ``text_column``/``label_column``: the columns of
    that data when they are not the recipe's (``--text-column``, ``--label-column``).
    """
    run = open_run(run_dir)
    columns = {k: v for k, v in (("text", text_column), ("labels", label_column)) if v}
    if recompute or (data is not None and not (run.predictions_dir / f"{split}.npz").is_file()):
        if run.is_ensemble:
            raise RunDirError(f"{run.path}: an ensemble is recomputed by re-running `tailtune ensemble`")
        open_run(run_dir, need_model=True)
        logits, targets = _recompute(run, split, data, trust_remote_code=trust_remote_code, columns=columns)
    elif columns:
        raise RunDirError(
            "--text-column/--label-column name the columns of data read with --recompute (or --data); stored "
            "predictions are scored as they are. Fix: add --recompute, or drop the column options"
        )
    else:
        logits, targets = load_predictions(run, split)
    y = _targets(run.task, targets)
    default = PostProcess()
    entries = {split: classification_report(y, default.decide(logits, run.task), run.task, y_score=logits)}
    if not run.postprocess.is_default:
        entries[f"{split}_tuned"] = classification_report(
            y,
            run.postprocess.decide(logits, run.task),
            run.task,
            y_score=run.postprocess.scaled(logits),
        )
    if write:
        update_eval(run, entries)
    return entries


def tune_run(
    run_dir: str | os.PathLike,
    *,
    split: str = "validation",
    temperature: str = "scalar",
    min_support: int = 5,
    hierarchy_mode: str | None = None,
    binary_metric: str = "macro_f1",
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    margin: float = DEFAULT_MARGIN,
) -> dict[str, Any]:
    """Tune the decision rule on the run's validation predictions; write ``postprocess.json`` and the
    ``<split>_tuned``/``test``/``test_tuned`` entries of ``eval.json``.

    Returns ``{"split", "validation_default", "validation_tuned", "gain", "test_default",
    "test_tuned", "postprocess"}`` (test entries ``None`` when the run has no test predictions).

    Raises:
        RunDirError: ``split`` is a test split, or has no predictions.
    """
    run = open_run(run_dir)
    try:
        check_tuning_split(split)
    except ValueError as exc:
        raise RunDirError(str(exc)) from None
    logits, targets = load_predictions(run, split)
    try:
        result = tune_decision_rule(
            logits,
            _targets(run.task, targets),
            run.task,
            split=split,
            temperature=temperature,
            min_support=min_support,
            hierarchy_mode=hierarchy_mode,
            binary_metric=binary_metric,
            bootstrap=bootstrap,
            seed=seed,
            margin=margin,
        )
    except ValueError as exc:
        raise RunDirError(f"{run.path}: cannot tune: {exc}") from None
    # read everything that can fail before writing anything (no postprocess.json next to a torn eval.json)
    current_eval = read_eval(run)
    test = load_predictions(run, "test") if (run.predictions_dir / "test.npz").is_file() else None
    entries: dict[str, Any] = {
        split: result.validation_default,
        f"{split}_tuned": result.validation_tuned,
    }
    summary: dict[str, Any] = {
        "split": split,
        "validation_default": result.validation_default["macro_f1"],
        "validation_tuned": result.validation_tuned["macro_f1"],
        "gain": result.gain,
        "test_default": None,
        "test_tuned": None,
        "postprocess": result.postprocess.to_dict(),
    }
    if test is not None:
        tl, tt = test
        y = _targets(run.task, tt)
        entries["test"] = classification_report(y, PostProcess().decide(tl, run.task), run.task, y_score=tl)
        entries["test_tuned"] = classification_report(
            y, result.postprocess.decide(tl, run.task), run.task, y_score=result.postprocess.scaled(tl)
        )
        summary["test_default"] = entries["test"]["macro_f1"]
        summary["test_tuned"] = entries["test_tuned"]["macro_f1"]
    result.postprocess.save(run.path / rundir.POSTPROCESS)
    update_eval(run, entries, current_eval)
    return summary
