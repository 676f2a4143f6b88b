"""tailtune.diagnostics: rules over a run's history, and recipe lint.

* :func:`run_rules` / :data:`RULES` — loss dynamics, train/validation gap with trend labels, best epoch,
  early stopping, validation-to-test drop, per-class warnings (see docs/diagnostics.md);
* :func:`lint_recipe` — remedies that cancel or compound each other, before training;
* :func:`load_run` — read a run directory into :class:`RunData`.
"""

from tailtune.diagnostics.findings import SEVERITIES, Finding, sort_findings
from tailtune.diagnostics.lint import class_counts_from_data, lint_recipe
from tailtune.diagnostics.rules import RULES, epoch_table, gap_label, run_rules
from tailtune.diagnostics.rundata import RunData, load_run, run_from_history

__all__ = [
    "RULES",
    "SEVERITIES",
    "Finding",
    "RunData",
    "class_counts_from_data",
    "epoch_table",
    "gap_label",
    "lint_recipe",
    "load_run",
    "run_from_history",
    "run_rules",
    "sort_findings",
]
