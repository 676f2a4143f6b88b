"""Resume support: the newest complete checkpoint, the run's own recipe, the history rows to keep."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tailtune.errors import RunDirError
from tailtune.recipe import Recipe, load_recipe
from tailtune.training.faults import checkpoint_is_complete
from tailtune.utils import rundir
from tailtune.utils.io import read_jsonl

__all__ = ["find_checkpoint", "load_run_recipe", "resume_history"]


def find_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest COMPLETE Trainer checkpoint of a run (:func:`~tailtune.training.faults.checkpoint_is_complete`:
    ``trainer_state.json``, written last, parses and names the step; weights and optimiser present)."""
    ckpt_root = Path(run_dir) / rundir.CHECKPOINTS_DIR
    if not ckpt_root.is_dir():
        return None
    found = [(int(p.name.rsplit("-", 1)[-1]), p) for p in ckpt_root.glob("checkpoint-*") if checkpoint_is_complete(p)]
    return max(found)[1] if found else None


def load_run_recipe(run_dir: Path) -> Recipe:
    """The ``recipe.yaml`` a run wrote (what ``--resume`` continues with)."""
    path = run_dir / rundir.RECIPE
    if not path.exists():
        raise RunDirError(
            f"{run_dir}: no {rundir.RECIPE}; is this a tailtune run directory? (A run stopped before it wrote "
            f"{rundir.RECIPE} has nothing to resume: start it again with tailtune train RECIPE --output {run_dir})"
        )
    return load_recipe(path)


def resume_history(run_dir: Path, checkpoint: Path | None) -> list[dict]:
    """The history rows up to the checkpoint's step (later rows are trained again)."""
    if checkpoint is None or not (run_dir / rundir.HISTORY).exists():
        return []
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return [r for r in read_jsonl(run_dir / rundir.HISTORY) if r.get("step", 0) <= state["global_step"]]
