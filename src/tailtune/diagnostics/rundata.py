"""Read a run directory (the contract of docs/architecture.md, "Run directory") for diagnostics and reports.

Only ``history.jsonl`` is required; every other file is optional and ``None`` when absent, so a
run that is still training (or was killed) can be diagnosed. A file that exists but cannot be read
raises :class:`~tailtune.errors.RunDirError` naming the file, the line and the fix.

Example:
    >>> run = load_run("runs/reuters-focal")  # doctest: +SKIP
    >>> run.labels, run.best_epoch  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tailtune.data.kinds import TaskKind, known_task_kind
from tailtune.diagnostics.weights import recipe_class_weights, weights_from_resolved
from tailtune.errors import RunDirError
from tailtune.recipe.io import yaml_error_text
from tailtune.recipe.schema import OptimSection
from tailtune.utils import rundir

#: names (or substrings of names/types) of loss parts that work on embeddings, not logits
CONTRASTIVE_NAMES = ("supcon", "contrast", "triplet", "ntxent", "infonce", "simcse", "scl")
#: the CE default learning rate the lint compares focal recipes with (the schema's ``optim.lr`` default)
DEFAULT_LR = OptimSection.model_fields["lr"].default


@dataclass
class RunData:
    """Everything diagnostics and reports read from one run directory.

    ``recipe`` is the raw mapping of ``recipe.yaml`` (not re-validated, so an older or partial recipe
    still reads); ``task`` the mapping of ``task.json``; ``eval`` of ``eval.json``; ``postprocess`` of
    ``postprocess.json``. ``class_counts`` are per-class training counts when known (see
    :func:`train_counts`) and ``class_weights`` the class weights the recipe gave each class (see
    :func:`tailtune.diagnostics.weights.recipe_class_weights`).
    """

    path: Path | None
    history: list[dict]
    eval: dict | None = None
    recipe: dict | None = None
    task: dict | None = None
    postprocess: dict | None = None
    class_counts: dict[str, float] | None = None
    class_weights: dict[str, float] | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived views
    @property
    def kind(self) -> str | None:
        return (self.task or {}).get("kind") or ((self.recipe or {}).get("task") or {}).get("kind")

    @property
    def kind_info(self) -> TaskKind | None:
        """The :class:`~tailtune.data.kinds.TaskKind` of :attr:`kind`; ``None`` when missing or unknown."""
        return known_task_kind(self.kind)

    @property
    def labels(self) -> list[str]:
        """Class names: TaskSpec labels, else the per-class keys of the history/eval."""
        if self.task and self.task.get("labels"):
            return [str(x) for x in self.task["labels"]]
        for row in reversed(self.history):
            pc = (row.get("validation") or {}).get("per_class")
            if pc:
                return list(pc)
        return []

    @property
    def seed(self) -> int | None:
        seed = ((self.recipe or {}).get("train") or {}).get("seed")
        return int(seed) if isinstance(seed, int) else None

    @property
    def stop_metric(self) -> str:
        """The early-stopping metric (``macro_f1`` when the recipe says nothing)."""
        es = (self.recipe or {}).get("early_stopping") or {}
        if isinstance(es, dict) and es.get("metric"):
            return str(es["metric"])
        for row in reversed(self.history):
            m = (row.get("early_stopping") or {}).get("metric")
            if m:
                return str(m)
        return "macro_f1"

    @property
    def best_epoch(self) -> int | None:
        """Epoch of the last row flagged ``best``; else the epoch with the best validation metric."""
        flagged = [r.get("epoch") for r in self.history if r.get("best")]
        if flagged:
            return flagged[-1]
        metric = self.stop_metric
        vals = [(r.get("epoch"), val_metric(r, metric)) for r in self.history]
        vals = [(e, v) for e, v in vals if v is not None]
        if not vals:
            return None
        pick = min if metric.endswith("loss") else max
        return pick(vals, key=lambda ev: ev[1])[0]

    def row_at(self, epoch) -> dict | None:
        for row in self.history:
            if row.get("epoch") == epoch:
                return row
        return None

    @property
    def best_row(self) -> dict | None:
        e = self.best_epoch
        return self.row_at(e) if e is not None else (self.history[-1] if self.history else None)

    def loss_parts(self) -> dict[str, dict[str, Any]]:
        """``{part: {"type": registry name, "weight": float, "contrastive": bool}}`` from the recipe
        (falling back to the part names logged in the history)."""
        out: dict[str, dict[str, Any]] = {}
        loss = (self.recipe or {}).get("loss")
        if isinstance(loss, str):
            loss = {loss: {}}
        elif isinstance(loss, list):
            loss = {str(x): {} for x in loss}
        if isinstance(loss, dict):
            for name, spec in loss.items():
                spec = spec or {}
                ltype = str(spec.get("type") or name)
                out[str(name)] = {
                    "type": ltype,
                    "weight": float(spec.get("weight", 1.0)),
                    "contrastive": is_contrastive(str(name), ltype),
                }
        for row in self.history:
            for name in ((row.get("train") or {}).get("loss_parts") or {}):
                out.setdefault(name, {"type": name, "weight": None, "contrastive": is_contrastive(name, name)})
        return out

    def predictions(self, split: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(logits, targets)`` from ``predictions/<split>.npz``, or ``None`` when absent."""
        if self.path is None:
            return None
        path = self.path / rundir.PREDICTIONS_DIR / f"{split}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return np.asarray(z["logits"], dtype=np.float64), np.asarray(z["targets"])
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            reason = "not a NumPy .npz archive" if "pickle" in str(exc) else str(exc)  # never advise unpickling
            raise RunDirError(
                f"{path}: cannot read logits/targets ({reason}); re-run `tailtune evaluate` to rewrite it"
            ) from None


def is_contrastive(name: str, ltype: str) -> bool:
    """Whether a loss part (by name or registry type) is an embedding (contrastive) loss."""
    text = f"{name} {ltype}".lower()
    return any(key in text for key in CONTRASTIVE_NAMES)


def val_metric(row: dict, metric: str) -> float | None:
    return finite_number((row.get("validation") or {}).get(metric))


def finite_number(x) -> float | None:
    """``x`` as a float when it is a finite int or float (not a bool), else ``None``: how every
    reader of a history or eval.json value (diagnostics, reports) treats missing or NaN entries."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def train_counts(history: list[dict]) -> dict[str, float] | None:
    """Per-class training counts: the ``support`` of the first history row's train ``per_class``.

    The trainer evaluates a fixed seeded subsample of at most 2,000 training examples each epoch,
    so for larger training sets these are the subsample's counts: the class *shares* are right,
    the absolute numbers are scaled down.
    """
    for row in history:
        pc = (row.get("train") or {}).get("per_class")
        if pc and all(isinstance(v, dict) and "support" in v for v in pc.values()):
            return {k: float(v["support"]) for k, v in pc.items()}
    return None


def _read_json(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(
            f"{path}: line {exc.lineno}: not valid JSON ({exc.msg}); the file is corrupt. {_rewrite_fix(path)}"
        ) from None
    except UnicodeDecodeError as exc:
        raise RunDirError(
            f"{path}: not UTF-8 (byte {exc.start}); the file is corrupt. {_rewrite_fix(path)}"
        ) from None


def _rewrite_fix(path: Path) -> str:
    """How to get a good copy of a corrupt run-directory file back."""
    return {
        rundir.EVAL: "Fix: re-run `tailtune evaluate RUN` to rewrite it (or delete it)",
        rundir.POSTPROCESS: "Fix: re-run `tailtune tune RUN` or delete the file",
        rundir.TASK: "Fix: restore task.json from the training run (model/tailtune_model.json holds a copy)",
        rundir.RESOLVED: "Fix: delete it (diagnostics then recompute the class weights from recipe.yaml)",
    }.get(path.name, "Fix: restore the file or re-run training")


def read_history(path: Path) -> list[dict]:
    rows = []
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise RunDirError(
                    f"{path}: line {i}: not UTF-8 (byte {exc.start} of the line); remove the torn line or resume the run"
                ) from None
            except json.JSONDecodeError as exc:
                raise RunDirError(
                    f"{path}: line {i}: not valid JSON ({exc.msg}); remove the torn line or resume the run"
                ) from None
            if not isinstance(row, dict):
                raise RunDirError(
                    f"{path}: line {i}: expected one JSON object per epoch, got {type(row).__name__}; remove the "
                    "line or restore the history written by `tailtune train`"
                )
            rows.append(row)
    return rows


def _task_key(run: RunData) -> tuple[str | None, list[str], list[str]]:
    polarities = [str(x) for x in (run.task or {}).get("polarities") or []]
    return run.kind, run.labels, polarities


def check_same_task(runs, baselines, *, command: str = "a comparison") -> None:
    """Raise :class:`RunDirError` when a baseline answers another question than the runs: another task
    kind, other labels (class order included) or other polarities. Metrics of different tasks (an
    aspect model against a spam filter) do not compare, and a paired verdict on them would be noise.
    What a run does not record (no ``task.json`` and no per-class history) is not compared."""
    ref = runs[0] if runs else None
    for other in [*runs[1:], *baselines]:
        if ref is None:
            return
        a, b = _task_key(ref), _task_key(other)
        differs = [what for what, x, y in zip(("kind", "labels", "polarities"), a, b, strict=True) if x and y and x != y]
        if differs:
            show = lambda key: f"a task of kind {key[0]!r} with labels {key[1][:8]}{' ...' if len(key[1]) > 8 else ''}"  # noqa: E731
            raise RunDirError(
                f"{other.path or other.name}: {show(b)}, but {ref.path or ref.name} is {show(a)} (its {' and '.join(differs)} "
                f"differ); {command} compares runs of one task. Fix: pass runs trained on the same data"
            )


def load_run(run_dir: str | os.PathLike, *, class_counts: dict[str, float] | None = None) -> RunData:
    """Read ``run_dir``; only ``history.jsonl`` must exist.

    Args:
        run_dir: a run directory written by ``tailtune train``.
        class_counts: per-class training counts (default: :func:`train_counts` of the history).

    Raises:
        RunDirError: no such folder, no ``history.jsonl``, or a corrupt file (named, with its line).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory; pass the folder a `tailtune train` wrote (its `output`)")
    hist = path / rundir.HISTORY
    if not hist.exists():
        raise RunDirError(
            f"{path}: no {rundir.HISTORY}; is this a tailtune run directory? (train writes it after the first epoch)"
        )
    history = read_history(hist)
    if not history:
        raise RunDirError(
            f"{hist}: empty; the run has not finished an epoch yet. Fix: wait for the first epoch, or resume "
            "the run (`tailtune train --resume RUN`)"
        )
    recipe = None
    rpath = path / rundir.RECIPE
    if rpath.exists():
        fix = "Fix: restore the recipe.yaml the run wrote (or delete it: diagnostics then skip recipe checks)"
        try:
            recipe = yaml.safe_load(rpath.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise RunDirError(f"{rpath}: {yaml_error_text(exc)}; the file is corrupt. {fix}") from None
        except UnicodeDecodeError as exc:
            raise RunDirError(f"{rpath}: not UTF-8 (byte {exc.start}); the file is corrupt. {fix}") from None
        if not isinstance(recipe, dict):
            raise RunDirError(f"{rpath}: expected a mapping of recipe sections, got {type(recipe).__name__}. {fix}")
    run = RunData(
        path=path,
        history=history,
        eval=_read_json(path / rundir.EVAL),
        recipe=recipe,
        task=_read_json(path / rundir.TASK),
        postprocess=_read_json(path / rundir.POSTPROCESS),
        name=path.name,
    )
    run.class_counts = dict(class_counts) if class_counts else train_counts(history)
    n_train = next((finite_number((r.get("train") or {}).get("n_samples")) for r in history if (r.get("train") or {}).get("n_samples")), None)
    run.extra["n_train"] = n_train
    resolved = _read_json(path / rundir.RESOLVED)  # what the run recorded it trained with
    run.extra["resolved"] = resolved
    run.class_weights = (weights_from_resolved(resolved) if resolved is not None else
                         recipe_class_weights(run.recipe, run.kind, run.class_counts, labels=run.labels, num_examples=n_train))
    return run


def run_from_history(history: list[dict], **kwargs) -> RunData:
    """A :class:`RunData` without a folder (tests, library callers holding rows in memory)."""
    run = RunData(path=None, history=list(history), **kwargs)
    if run.class_counts is None:
        run.class_counts = train_counts(run.history)
    return run
