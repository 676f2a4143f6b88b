"""Reading, re-scoring and tuning run directories (and ensemble directories, which look alike).

A *scorable* directory holds ``task.json`` and either ``model/`` (a training run) or ``members.json``
(an ensemble, see :mod:`tailtune.evaluation.ensemble`), plus ``predictions/<split>.npz`` (``logits``,
``targets``) for the splits it was scored on. Every problem raises :class:`RunDirError` naming the
file and the fix.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tailtune.errors import RunDirError
from tailtune.evaluation.postprocess import PostProcess
from tailtune.evaluation.tuning import DEFAULT_BOOTSTRAP, DEFAULT_MARGIN, tune_decision_rule
from tailtune.metrics import classification_report
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_bytes, atomic_write_json

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

MEMBERS = "members.json"


@dataclass
class RunInfo:
    """A checked run (or ensemble) directory."""

    path: Path
    task: Any
    postprocess: PostProcess
    is_ensemble: bool

    @property
    def predictions_dir(self) -> Path:
        return self.path / rundir.PREDICTIONS_DIR


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        fix = (
            f"Fix: delete {path.name} and re-run `tailtune evaluate` (it rebuilds it from predictions/)"
            if path.name == rundir.EVAL
            else "Fix: re-run training (or `tailtune ensemble`) for this directory"
        )
        raise RunDirError(f"{path}: not valid JSON ({exc}); the run may have been interrupted while writing. {fix}") from None


def open_run(path: str | os.PathLike, *, need_model: bool = False) -> RunInfo:
    """Check that ``path`` is a run or ensemble directory and read its task and decision rule.

    Raises:
        RunDirError: the folder is missing, has no ``task.json`` (half-written run), a corrupt
            ``task.json``/``postprocess.json``, or (``need_model``) neither ``model/`` nor
            ``members.json``.
    """
    from tailtune.data import TaskSpec

    p = Path(path)
    if not p.exists():
        raise RunDirError(f"{p}: no such run directory. Fix: pass the folder that `tailtune train` wrote")
    if not p.is_dir():
        raise RunDirError(f"{p}: is a file, not a run directory. Fix: pass the run's folder")
    task_path = p / rundir.TASK
    if not task_path.is_file():
        raise RunDirError(
            f"{p}: no {rundir.TASK}; this is not a tailtune run directory, or its training was interrupted "
            "before it started. Fix: point to a finished run, or re-run `tailtune train`"
        )
    try:
        task = TaskSpec.from_dict(_read_json(task_path))
    except ValueError as exc:
        if isinstance(exc, RunDirError):
            raise
        raise RunDirError(f"{task_path}: {exc}. Fix: restore task.json from the training run") from None
    is_ensemble = (p / MEMBERS).is_file()
    if need_model and not is_ensemble and not (p / rundir.MODEL_DIR).is_dir():
        raise RunDirError(
            f"{p}: no {rundir.MODEL_DIR}/ folder; training did not finish (the model is written last). "
            f"Fix: resume with `tailtune train --resume {p}` or re-run training"
        )
    post = PostProcess.load(p / rundir.POSTPROCESS)
    post.check(task, source=str(p / rundir.POSTPROCESS))
    return RunInfo(p, task, post, is_ensemble)


def available_splits(run: RunInfo) -> list[str]:
    d = run.predictions_dir
    return sorted(f.stem for f in d.glob("*.npz")) if d.is_dir() else []


def save_predictions(run_dir: str | os.PathLike, split: str, logits: np.ndarray, targets: np.ndarray) -> Path:
    """Write ``predictions/<split>.npz`` atomically (``logits`` float32, ``targets``)."""
    buf = io.BytesIO()
    np.savez(buf, logits=np.asarray(logits, dtype=np.float32), targets=np.asarray(targets))
    return atomic_write_bytes(Path(run_dir) / rundir.PREDICTIONS_DIR / f"{split}.npz", buf.getvalue())


def load_predictions(run: RunInfo, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, targets)`` of ``predictions/<split>.npz``; RunDirError naming the available splits."""
    path = run.predictions_dir / f"{split}.npz"
    if not path.is_file():
        have = available_splits(run)
        raise RunDirError(
            f"{run.path}: split {split!r} has no predictions ({path} missing); available: {have or 'none'}. "
            f"Fix: pass --split {have[0] if have else 'validation'}"
            + ("" if have else ", or train the run to completion (it writes predictions/ at the end)")
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            logits, targets = np.asarray(f["logits"]), np.asarray(f["targets"])
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        # numpy's words for a non-zip file suggest unpickling it: never repeat that advice
        reason = "not a NumPy .npz archive" if "pickle" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise RunDirError(
            f"{path}: unreadable or incomplete ({reason}). Fix: re-run "
            f"`tailtune evaluate {run.path} --split {split} --recompute` to rebuild it from the model"
        ) from None
    k = run.task.num_outputs
    if logits.ndim != 2 or logits.shape[1] != k or len(targets) != len(logits):
        raise RunDirError(
            f"{path}: logits have shape {logits.shape} and targets {len(targets)} rows, but task.json needs "
            f"(N, {k}). Fix: re-run `tailtune evaluate --recompute` or restore the file"
        )
    return logits, targets


def _targets(task, targets: np.ndarray) -> np.ndarray:
    y = np.rint(np.asarray(targets, dtype=np.float64)).astype(np.int64)
    return y.reshape(-1) if task.kind in ("binary", "multiclass") else y


def _read_eval(run: RunInfo) -> dict[str, Any]:
    path = run.path / rundir.EVAL
    current = _read_json(path) if path.is_file() else {}
    return current if isinstance(current, dict) else {}


def _update_eval(run: RunInfo, entries: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``entries`` into ``eval.json`` (``current``: its content, read beforehand by the caller)."""
    current = _read_eval(run) if current is None else current
    current.update(entries)
    atomic_write_json(run.path / rundir.EVAL, current)
    return current


def _recompute(
    run: RunInfo, split: str, data: str | os.PathLike | None, *, trust_remote_code: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Predict ``split`` with the run's model from the data named by ``data`` or recipe.yaml."""
    import yaml

    from tailtune.data import load_dataset
    from tailtune.evaluation.predictor import Predictor

    source = data
    data_cfg: dict[str, Any] = {}
    recipe_path = run.path / rundir.RECIPE
    if recipe_path.is_file():
        try:
            recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8")) or {}
            data_cfg = dict(recipe.get("data") or {})
        except (yaml.YAMLError, AttributeError, TypeError):
            data_cfg = {}
    if source is None:
        source = data_cfg.get("path")
        if source and not Path(source).exists() and (run.path / source).exists():
            source = run.path / source
    if not source:
        raise RunDirError(
            f"{run.path}: cannot recompute split {split!r}: no data path (recipe.yaml has no data.path). "
            "Fix: pass --data PATH"
        )
    loaded = load_dataset(
        source,
        task=run.task,
        val_fraction=float(data_cfg.get("val_fraction") or 0.1),
        label_sep=data_cfg.get("label_sep"),
        empty_text=data_cfg.get("empty_text") or "error",
        unused_labels=data_cfg.get("unused_labels") or "error",
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
) -> dict[str, Any]:
    """Score ``split`` of a run with the default rule and, when ``postprocess.json`` holds a tuned rule,
    with that too; update ``eval.json`` (keys ``<split>`` and ``<split>_tuned``) and return the entries.

    ``recompute=True`` (or missing predictions when ``data`` is given) predicts the split with the
    run's model first and rewrites ``predictions/<split>.npz``; ``trust_remote_code`` (off unless
    passed) lets that model's own Python code run.
    """
    run = open_run(run_dir)
    if recompute or (data is not None and not (run.predictions_dir / f"{split}.npz").is_file()):
        if run.is_ensemble:
            raise RunDirError(f"{run.path}: an ensemble is recomputed by re-running `tailtune ensemble`")
        open_run(run_dir, need_model=True)
        logits, targets = _recompute(run, split, data, trust_remote_code=trust_remote_code)
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
        _update_eval(run, entries)
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
        from tailtune.evaluation.tuning import check_tuning_split

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
    current_eval = _read_eval(run)
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
    _update_eval(run, entries, current_eval)
    return summary
