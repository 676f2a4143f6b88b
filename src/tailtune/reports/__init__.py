"""tailtune.reports: ``report.html`` for a run and the automatic post-mortem against a baseline."""

from tailtune.reports.compare import Comparison, compare_values, paired_bootstrap
from tailtune.reports.html import build_context, render_report, write_report
from tailtune.reports.postmortem import postmortem, recipe_changes, write_postmortem

__all__ = [
    "Comparison",
    "build_context",
    "compare_values",
    "paired_bootstrap",
    "postmortem",
    "recipe_changes",
    "render_report",
    "write_postmortem",
    "write_report",
]
