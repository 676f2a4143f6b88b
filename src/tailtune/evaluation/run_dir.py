"""The run-directory module of the evaluation layer: open a run (or ensemble) directory, read and
write its files atomically.

A *scorable* directory holds ``task.json`` and either ``model/`` (a training run) or ``members.json``
(an ensemble, see :mod:`tailtune.evaluation.ensemble`), plus ``predictions/<split>.npz``
(``logits``, ``targets``) for the splits it was scored on. Every problem raises
:class:`~tailtune.errors.RunDirError` naming the file and the fix. The modules above it
(:mod:`~tailtune.evaluation.predictor`, :mod:`~tailtune.evaluation.runs`,
:mod:`~tailtune.evaluation.ensemble`) import it and not each other in a circle:
``run_dir <- predictor <- runs <- ensemble``.
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
import yaml

from tailtune.data.task import TaskSpec
from tailtune.errors import RunDirError
from tailtune.evaluation.postprocess import PostProcess
from tailtune.recipe import Recipe, load_recipe, recipe_from_dict
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_bytes, atomic_write_json

__all__ = [
    "MEMBERS",
    "RunInfo",
    "available_splits",
    "load_predictions",
    "open_run",
    "read_eval",
    "read_members",
    "read_run_recipe",
    "recipe_data_section",
    "recipe_max_length",
    "save_predictions",
    "update_eval",
]

#: an ensemble directory's list of member runs and weights
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


def read_json(path: Path) -> Any:
    """A run file's JSON; RunDirError naming the file and how to rebuild it."""
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
        task = TaskSpec.from_dict(read_json(task_path))
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


def read_members(path: str | os.PathLike) -> list[tuple[Path, float]]:
    """``[(member run dir, weight)]`` of an ensemble folder; RunDirError when unreadable."""
    f = Path(path) / MEMBERS
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
        # a relative member path is relative to the ensemble folder (a folder holding its members can move)
        members = [Path(m) if Path(m).is_absolute() else Path(path) / m for m in d["members"]]
        weights = [float(w) for w in d.get("weights") or [1.0] * len(members)]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{f}: unreadable ({exc}). Fix: rebuild with `tailtune ensemble RUN... --out DIR`") from None
    if not members or len(weights) != len(members):
        raise RunDirError(f"{f}: needs a non-empty 'members' list and one weight per member")
    for m in members:
        if not m.is_dir():
            raise RunDirError(f"{f}: member {m} no longer exists. Fix: restore it or rebuild the ensemble")
    return list(zip(members, weights, strict=True))


def available_splits(run: RunInfo) -> list[str]:
    """The splits with ``predictions/<split>.npz``."""
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
            f"{run.path}: split {split!r} has no predictions ({path} missing); available: {have or 'none'}. Fix: "
            + (f"pass --split {have[0]}, or predict the split first: tailtune evaluate {run.path} --split {split} "
               f"--recompute" if have else
               f"finish the training (it writes predictions/ at the end): tailtune train --resume {run.path}")
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


def read_eval(run: RunInfo) -> dict[str, Any]:
    """``eval.json`` (``{}`` when absent)."""
    path = run.path / rundir.EVAL
    current = read_json(path) if path.is_file() else {}
    return current if isinstance(current, dict) else {}


def update_eval(run: RunInfo, entries: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``entries`` into ``eval.json`` (``current``: its content, read beforehand by the caller)."""
    current = read_eval(run) if current is None else current
    current.update(entries)
    atomic_write_json(run.path / rundir.EVAL, current)
    return current


def read_run_recipe(run_dir: str | os.PathLike) -> Recipe:
    """The run's ``recipe.yaml`` as a validated :class:`~tailtune.recipe.Recipe`; the defaults when
    the directory has none (one not written by ``tailtune train``).

    Raises:
        RecipeError: ``recipe.yaml`` is unreadable or invalid (naming the file, the field and the fix).
    """
    path = Path(run_dir) / rundir.RECIPE
    return load_recipe(path) if path.is_file() else recipe_from_dict({})


def recipe_data_section(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``data`` section of the run's ``recipe.yaml`` (``{}`` when absent or unreadable)."""
    path = Path(run_dir) / rundir.RECIPE
    if not path.is_file():
        return {}
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return dict(recipe.get("data") or {})
    except (yaml.YAMLError, AttributeError, TypeError, ValueError, UnicodeDecodeError):
        return {}


def recipe_max_length(run_dir: str | os.PathLike) -> int | None:
    """``data.max_length`` of the run's ``recipe.yaml`` (what training truncated at), if readable."""
    value = recipe_data_section(run_dir).get("max_length")
    return value if isinstance(value, int) and value >= 2 else None
