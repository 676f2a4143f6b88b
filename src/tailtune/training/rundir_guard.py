"""What ``train`` may do with its run directory: one writer, no mixing, nothing that blocks a retry.

:func:`guarded_train` wraps the training pipeline (``tailtune.training.train``:
:mod:`tailtune.training.pipeline`, prepare -> lint -> train -> report) and owns these rules
(docs/reliability.md, "Process and exit codes"):

- **one writer**: the run directory's exclusive lock (:func:`tailtune.utils.runlock.run_dir_lock`) is
  held for the whole run by rank 0 (other ranks of a distributed run never write it); a second
  process exits 2 naming the holder;
- **no mixing**: a fresh run refuses an ``output`` that holds a run (resume it or choose another
  folder) or files tailtune did not write (:func:`check_fresh_output`);
- **a failed start blocks nothing**: a fresh run that fails with an error before its first complete
  checkpoint removes what it wrote (:func:`remove_run_files`), and what an earlier start left without
  completing an epoch (a kill, an interrupt) is cleared by the next fresh start; interrupts and
  failed writes (disk full) keep their files so ``--resume`` can continue;
- **a finished run is not resumed**: ``--resume`` on a run whose final files are complete returns it
  as it is (:class:`FinishedRun`) and writes nothing, so a later ``tailtune tune``'s entries stay.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from tailtune.errors import RunDirError, StorageError
from tailtune.utils import rundir
from tailtune.utils.io import read_jsonl
from tailtune.utils.runlock import LOCK_NAME, run_dir_lock

__all__ = [
    "FinishedRun",
    "RUN_ENTRIES",
    "check_fresh_output",
    "finished_run",
    "foreign_entries",
    "guarded_train",
    "remove_run_files",
]

logger = logging.getLogger(__name__)

#: what a training run (and the commands that add to it) write into its folder
RUN_ENTRIES = frozenset({
    rundir.RECIPE, rundir.TASK, rundir.RESOLVED, rundir.LINT, rundir.HISTORY, rundir.MODEL_DIR,
    rundir.POSTPROCESS, rundir.EVAL, rundir.REPORT, rundir.CHECKPOINTS_DIR, rundir.PREDICTIONS_DIR,
})
#: entries a file manager puts into any folder; never a reason to refuse it
_IGNORED = frozenset({LOCK_NAME, ".DS_Store", "Thumbs.db", "desktop.ini", ".gitkeep"})


def _is_temp(name: str) -> bool:
    """A temporary file of an interrupted atomic write (``.<name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def foreign_entries(run_dir: str | os.PathLike) -> list[str]:
    """Names in ``run_dir`` that no tailtune command writes there (sorted)."""
    path = Path(run_dir)
    if not path.is_dir():
        return []
    return sorted(p.name for p in path.iterdir()
                  if p.name not in RUN_ENTRIES and p.name not in _IGNORED and not _is_temp(p.name))


def _holds_run(run_dir: Path) -> bool:
    """A run that got somewhere: history rows, a complete checkpoint or final files."""
    from tailtune.training.faults import checkpoint_is_complete

    if (run_dir / rundir.HISTORY).exists() or (run_dir / rundir.EVAL).exists() or (run_dir / rundir.MODEL_DIR).exists():
        return True
    ckpt = run_dir / rundir.CHECKPOINTS_DIR
    return ckpt.is_dir() and any(checkpoint_is_complete(p) for p in ckpt.glob("checkpoint-*"))


def remove_run_files(run_dir: str | os.PathLike) -> list[str]:
    """Delete what a run wrote into ``run_dir`` (tailtune's own entries and temporary files only;
    anything else is left alone); returns the removed names."""
    path = Path(run_dir)
    removed = []
    if not path.is_dir():
        return removed
    for entry in sorted(path.iterdir()):
        if entry.name in RUN_ENTRIES or _is_temp(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def check_fresh_output(run_dir: str | os.PathLike) -> None:
    """Make ``run_dir`` ready for a new run, or refuse it (RunDirError naming what is there and the fix).

    Refused: a folder holding a run (history, a complete checkpoint, final files) and a folder
    holding files tailtune does not write. Accepted: a missing or empty folder, and the leftovers of
    a start that never completed an epoch (recipe.yaml, task.json, resolved.json, lint.json,
    incomplete checkpoints, temporary files), which are removed.
    """
    path = Path(run_dir)
    if not path.exists():
        return
    if not path.is_dir():
        raise RunDirError(f"output {path}: is a file, not a folder. Fix: choose a folder path with --output")
    if _holds_run(path):
        raise RunDirError(
            f"output {path}: already holds a run; continue it with --resume {path} or choose another --output"
        )
    foreign = foreign_entries(path)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RunDirError(
            f"output {path}: holds files that are not a tailtune run ({shown}); a run written into it would "
            "mix with them. Fix: choose a new or empty folder with --output (or move those files away)"
        )
    removed = remove_run_files(path)
    if removed:
        logger.warning("output %s: removed what a start that never completed an epoch left: %s", path,
                       ", ".join(removed))


class FinishedRun:
    """Marker mixed into the result of ``--resume`` on a finished run: nothing was trained or written."""

    already_finished = True


def finished_run(run_dir: str | os.PathLike) -> tuple[list[dict], dict] | None:
    """``(history, eval)`` of a run whose final files are complete, else None.

    Complete: the last history row says why training stopped, ``eval.json`` parses, and ``model/``
    holds its weights and ``tailtune_model.json`` (written last by ``save_classifier``).
    """
    path = Path(run_dir)
    model = path / rundir.MODEL_DIR
    if not ((model / "model.safetensors").is_file() and (model / "tailtune_model.json").is_file()):
        return None
    try:
        history = read_jsonl(path / rundir.HISTORY)
        evaluation = json.loads((path / rundir.EVAL).read_text(encoding="utf-8"))
        json.loads((model / "tailtune_model.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not history or not isinstance(history[-1], dict) or not history[-1].get("stopped"):
        return None
    if not isinstance(evaluation, dict):
        return None
    return history, evaluation


def _is_rank_zero() -> bool:
    """Rank 0 of a ``torchrun``/``accelerate`` launch (or a single process): the one that writes."""
    for var in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(var)
        if value not in (None, ""):
            try:
                return int(value) == 0
            except ValueError:
                return True
    return True


def _output_of(recipe) -> Path | None:
    output = recipe.get("output") if isinstance(recipe, Mapping) else getattr(recipe, "output", None)
    return Path(output) if output else None


def _describe(resume, run_dir: Path) -> str:
    """The holder's command as a second process sees it: this command line when it is the CLI's."""
    import shlex
    import sys

    if sys.argv and Path(sys.argv[0]).name in ("tailtune", "main.py", "__main__.py"):
        return shlex.join(["tailtune", *sys.argv[1:]])
    return f"train(resume={str(run_dir)!r})" if resume is not None else f"train(output={str(run_dir)!r})"


def guarded_train(train_fn: Callable, recipe, *, resume, callbacks, result_cls):
    """``train_fn(recipe, resume=resume, callbacks=callbacks)`` under the rules of this module.

    ``result_cls`` is the training result class; a finished run comes back as a subclass of it that
    also is a :class:`FinishedRun` (``result.already_finished`` is True).
    """
    run_dir = Path(resume) if resume is not None else _output_of(recipe)
    if run_dir is None or not _is_rank_zero() or (resume is not None and not run_dir.is_dir()):
        return train_fn(recipe, resume=resume, callbacks=callbacks)  # its own error, or a non-writing rank
    with run_dir_lock(run_dir, command=_describe(resume, run_dir)):
        if resume is not None:
            done = finished_run(run_dir) if (run_dir / rundir.RECIPE).is_file() else None
            if done is not None:
                from tailtune.training.checkpoints import load_run_recipe

                load_run_recipe(run_dir)  # still read (safely): a corrupt recipe is an error
                logger.warning("--resume %s: the run is finished; nothing to resume, nothing written", run_dir)
                cls = type("FinishedRunResult", (result_cls, FinishedRun), {})
                return cls(run_dir=run_dir, history=done[0], eval=done[1])
        else:
            check_fresh_output(run_dir)
        try:
            return train_fn(recipe, resume=resume, callbacks=callbacks)
        except Exception as exc:
            if resume is None and not isinstance(exc, StorageError) and not _holds_run(run_dir):
                remove_run_files(run_dir)  # a failed start: the same command can simply be run again
            raise
