"""The training pipeline: lint -> train -> report, one call that leaves a complete run directory.

``tailtune.training.train(recipe)`` (this module's :func:`train`) is what ``tailtune train``,
``tailtune demo``, sweeps, ablations and ``tailtune fit`` call, and what a library user calls:

1. :func:`~tailtune.training.run.prepare_run` reads the data and resolves the recipe
   (:func:`tailtune.recipe.resolve`), every user error before any model loads; the data loader's
   notes (the delimiter it detected, text it NFC-normalised, rows it dropped) go to ``on_notes``
   (the CLI prints them) and into :attr:`RunResult.notes`;
2. :func:`~tailtune.diagnostics.lint.lint_recipe` checks the recipe against the training counts;
   the findings go to ``on_findings`` (the CLI prints them) and into the run directory as
   ``lint.json``. They never stop training: ``tailtune lint`` is the gate;
3. :func:`~tailtune.training.run.train_model` trains and writes ``recipe.yaml``, ``task.json``,
   ``resolved.json``, ``history.jsonl``, ``model/``, ``eval.json`` and ``predictions/``;
4. :func:`tailtune.reports.write_report` writes ``report.html``. Training has succeeded by then, so
   a report that fails is recorded in :attr:`RunResult.report_error` (with the retry command), not
   raised.

The whole pipeline runs under the run-directory rules of :mod:`tailtune.training.rundir_guard`
(:func:`~tailtune.training.rundir_guard.guarded_train`): the run directory's lock is held from the
output checks to the report, a fresh run refuses a folder holding a run or files tailtune does not
write, a failed start removes what it wrote, and ``resume`` on a finished run returns it untouched
(``result.already_finished``; no lint, no training, no report).

``reports/`` sits below ``training/`` in the layer order (it reads run directories only), so this
is a plain import (docs/architecture.md, "Changes to DESIGN.md").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial

from tailtune.diagnostics.findings import Finding
from tailtune.diagnostics.lint import lint_recipe
from tailtune.reports import write_report
from tailtune.training.run import PreparedRun, RunResult, prepare_run, train_model
from tailtune.training.rundir_guard import guarded_train

__all__ = ["lint_prepared", "train"]


def lint_prepared(prepared: PreparedRun) -> list[Finding]:
    """:func:`~tailtune.diagnostics.lint.lint_recipe` of a prepared run, with its training counts."""
    counts = prepared.counts
    return lint_recipe(prepared.recipe, class_counts=counts, num_examples=counts.num_examples,
                       task=prepared.task)


def train(
    recipe=None,
    *,
    resume: str | os.PathLike | None = None,
    callbacks: Sequence = (),
    lint: bool = True,
    report: bool = True,
    on_findings: Callable[[list[Finding]], None] | None = None,
    on_notes: Callable[[list[str]], None] | None = None,
) -> RunResult:
    """Lint, train and report: a complete run directory (see the module docstring).

    Args:
        recipe: a :class:`tailtune.recipe.Recipe` or its mapping (``None`` with ``resume``).
        resume: a run directory to continue from its last complete checkpoint.
        callbacks: extra ``transformers.TrainerCallback`` objects (e.g. progress bars).
        lint: run the recipe lint (findings in ``lint.json`` and :attr:`RunResult.findings`).
        report: write ``report.html`` at the end.
        on_findings: called with the lint findings before training starts (not on resume).
        on_notes: called with the data loader's notes (:attr:`tailtune.data.LoadedData.notes`) before
            training starts, when there are any (on resume too: the data is read again).

    Returns:
        :class:`~tailtune.training.run.RunResult` with ``notes``, ``findings``, ``report`` (the path)
        and ``report_error``; for ``resume`` on a finished run, that run as it is with
        ``already_finished`` True.

    Raises:
        the errors of :func:`~tailtune.training.run.prepare_run` and
        :func:`~tailtune.training.run.train_model` (RecipeError, DataError, RunDirError, StorageError);
        RunDirError also for an output holding a run or foreign files;
        :class:`~tailtune.utils.runlock.RunDirBusy` when another process holds the run directory.

    Example:
        >>> from tailtune.recipe import load_recipe  # doctest: +SKIP
        >>> result = train(load_recipe("examples/multiclass.yaml"))  # doctest: +SKIP
        >>> result.report  # doctest: +SKIP
        PosixPath('runs/multiclass/report.html')
    """
    run = partial(_pipeline, lint=lint, report=report, on_findings=on_findings, on_notes=on_notes)
    return guarded_train(run, recipe, resume=resume, callbacks=callbacks, result_cls=RunResult)


def _pipeline(
    recipe,
    *,
    resume: str | os.PathLike | None,
    callbacks: Sequence,
    lint: bool,
    report: bool,
    on_findings: Callable[[list[Finding]], None] | None,
    on_notes: Callable[[list[str]], None] | None,
) -> RunResult:
    """:func:`train` inside the run-directory guard: prepare -> lint -> train_model -> report."""
    prepared = prepare_run(recipe, resume=resume)
    if on_notes is not None and prepared.loaded.notes:
        on_notes(list(prepared.loaded.notes))
    if lint:
        prepared.findings = lint_prepared(prepared)
        if on_findings is not None and resume is None:
            on_findings(prepared.findings)
    result = train_model(prepared, callbacks=callbacks)
    if report and result.main_process:
        try:
            result.report = write_report(result.run_dir)
        except Exception as exc:  # noqa: BLE001 - the run directory is complete; say how to retry
            result.report_error = (f"report.html not written ({type(exc).__name__}: {exc}); retry with "
                                   f"`tailtune report {result.run_dir}`")
    return result
