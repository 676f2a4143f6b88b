"""Per-class, per-aspect and label-group tables of one ``classification_report`` (``train``'s closing
summary and ``evaluate``'s breakdown print the same tables)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

__all__ = ["aspect_table", "breakdown_tables", "class_table", "group_table"]


def f3(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def class_table(split: str, report: dict) -> Table:
    """Precision, recall, F1 and support per class (aspects: pooled over the aspects)."""
    pooled = " (pooled over the aspects)" if report.get("per_aspect") else ""
    table = Table(title=f"{split}: per-class results{pooled}", title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, row in (report.get("per_class") or {}).items():
        table.add_row(escape(str(name)), *(f3(row.get(k)) for k in ("precision", "recall", "f1")),
                      str(int(row.get("support", 0))))
    return table


def aspect_table(split: str, report: dict) -> Table | None:
    """Aspect tasks: each aspect's precision, recall and F1 (macro over its polarities), detection F1
    (present vs absent) and support (texts that mention it)."""
    per_aspect = report.get("per_aspect") or {}
    if not per_aspect:
        return None
    table = Table(title=f"{split}: per-aspect results (macro over the polarities)", title_justify="left")
    for col in ("aspect", "precision", "recall", "f1", "detection f1", "support"):
        table.add_column(col, justify="left" if col == "aspect" else "right")
    for name, row in per_aspect.items():
        table.add_row(escape(str(name)), *(f3(row.get(k)) for k in ("macro_precision", "macro_recall", "macro_f1",
                                                                       "detection_f1")),
                      str(int(row.get("support", 0))))
    return table


def group_table(split: str, report: dict) -> Table | None:
    """Label groups (``task.groups``): each group's macro precision/recall/F1, micro-F1, support and,
    with a label hierarchy, the violations of its labels."""
    groups = report.get("groups") or {}
    if not groups:
        return None
    violations = any("hierarchy_violations" in g for g in groups.values())
    table = Table(title=f"{split}: label groups", title_justify="left")
    cols = ["group", "members", "precision", "recall", "macro f1", "micro f1", "support"]
    for col in cols + (["hierarchy violations"] if violations else []):
        table.add_column(col, justify="left" if col in ("group", "members") else "right")
    for name, g in groups.items():
        members = ", ".join(map(str, g.get("members") or []))
        row = [escape(name), escape(members if len(members) <= 40 else members[:37] + "...")]
        row += [f3(g.get(k)) for k in ("macro_precision", "macro_recall", "macro_f1", "micro_f1")]
        row.append(str(int(g.get("support", 0))))
        if violations:
            row.append(str((g.get("hierarchy_violations") or {}).get("total", "-")))
        table.add_row(*row)
    return table


def breakdown_tables(split: str, report: dict) -> list[Table]:
    """The tables ``report`` has: per class, per aspect (aspect tasks), per label group (``task.groups``)."""
    tables = (class_table(split, report), aspect_table(split, report), group_table(split, report))
    return [t for t in tables if t is not None]
