"""One training unit: a candidate's recipe for one seed, trained into ``candidates/<name>/seed-<s>/``.

:func:`train_run` is the ONE place where ``tailtune fit`` calls the training layer: the public
pipeline :func:`tailtune.training.train` (prepare -> lint -> train_model -> report, inside the run
directory's lock and output rules) with ``lint=False, report=False``. The lint runs once per
candidate in the ``candidates`` stage (every seed of a candidate has the same recipe and the same
training counts, so a per-unit lint would repeat identical findings), and a unit's own
``report.html`` would never be read: the fit folder's report covers every unit. Everything else
(the lock on the unit's folder, the fresh-output check, resume, a finished run returned as it is)
is the pipeline's.

A unit whose folder already holds a ``recipe.yaml`` (a fit killed while it trained) is continued
with ``train(resume=...)``: from its last complete checkpoint, or from the start when none is
complete; a finished run comes back untouched (``already_finished``). A folder without a recipe is
removed and trained afresh.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tailtune.fit.recipes import run_recipe
from tailtune.training import train
from tailtune.utils import rundir

__all__ = ["run_training_unit", "train_run"]


def train_run(recipe=None, *, resume: Path | None = None, callbacks=()):
    """Train (or resume) one run directory: the single call site of :func:`tailtune.training.train`."""
    return train(recipe, resume=resume, callbacks=list(callbacks), lint=False, report=False)


def run_training_unit(run_dir: Path, template: dict, *, seed: int, epochs: int, data_dir: Path,
                      callbacks=()) -> dict[str, Any]:
    """Train ``template`` with ``seed`` into ``run_dir`` (or continue it); return what fit.json records."""
    if (run_dir / rundir.RECIPE).is_file():
        result = train_run(None, resume=run_dir, callbacks=callbacks)
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        recipe = run_recipe(template, seed=seed, output=run_dir, epochs=epochs, data_dir=data_dir)
        result = train_run(recipe, callbacks=callbacks)
    last = result.history[-1] if result.history else {}
    validation = result.eval.get("validation") or {}
    return {"epochs_run": last.get("epoch"), "stopped": last.get("stopped"),
            "validation_macro_f1_default_rule": validation.get("macro_f1")}
