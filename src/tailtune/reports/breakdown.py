"""The report's per-aspect and label-group tables (``report.html``: sections "Per aspect" and
"Label groups", templates ``_per_aspect.html.j2`` and ``_groups.html.j2``).

Everything comes from the run directory: the metrics from ``eval.json`` (or the best history row),
the training counts and class weights of every aspect x class cell from ``resolved.json`` (per-cell
weights when the recipe set ``weighting.per_aspect: true``; the pooled class weight otherwise).
"""

from __future__ import annotations

from typing import Any

from tailtune.diagnostics.rundata import finite_number

__all__ = ["aspect_tables", "cell_weight_table", "group_rows", "metric_delta"]

_PRF = ("precision", "recall", "f1")


def metric_delta(value, base) -> float | None:
    """``value - base`` when both are finite numbers (:func:`finite_number`), else ``None``: every
    difference to the baseline in the report's tables."""
    v, b = finite_number(value), finite_number(base)
    return None if v is None or b is None else v - b


def _cell_lookup(resolved: dict | None) -> tuple[dict, dict, bool]:
    """``(counts {aspect: {class: n}}, weights {aspect: {class: w}}, per_cell)`` from ``resolved.json``
    (pooled weights repeat the class weight in every aspect)."""
    resolved = resolved if isinstance(resolved, dict) else {}
    counts = (resolved.get("counts") or {}).get("per_cell") or {}
    cw = resolved.get("class_weights") or {}
    if cw.get("per_cell"):
        return counts, cw["per_cell"], True
    pooled = cw.get("per_class") or {}
    return counts, ({a: dict(pooled) for a in counts} if pooled else {}), False


def aspect_tables(rep: dict, base_rep: dict | None, resolved: dict | None) -> dict | None:
    """``{"overview": [...], "aspects": [...], "per_cell": bool}`` for an aspect run, else ``None``.

    ``overview``: one row per aspect (macro precision/recall/F1 over its polarities, detection F1,
    accuracy, support, and the F1 change against the baseline); ``aspects``: per aspect, one row per
    class (polarities and ``absent``) with its training count, class weight, precision, recall, F1,
    support and the F1 change.
    """
    per_aspect = rep.get("per_aspect") or {}
    if not per_aspect:
        return None
    base = (base_rep or {}).get("per_aspect") or {}
    counts, weights, per_cell = _cell_lookup(resolved)
    overview, details = [], []
    for name, entry in per_aspect.items():
        b = base.get(name) or {}
        overview.append({
            "aspect": name, **{k: finite_number(entry.get(f"macro_{k}")) for k in _PRF},
            "detection_f1": finite_number(entry.get("detection_f1")), "accuracy": finite_number(entry.get("accuracy")),
            "support": entry.get("support"), "d_f1": metric_delta(entry.get("macro_f1"), b.get("macro_f1")),
        })
        rows = []
        for cls, m in (entry.get("per_class") or {}).items():
            bm = (b.get("per_class") or {}).get(cls) or {}
            rows.append({
                "label": cls, "train": (counts.get(name) or {}).get(cls), "weight": (weights.get(name) or {}).get(cls),
                **{k: finite_number(m.get(k)) for k in _PRF}, "support": m.get("support"), "d_f1": metric_delta(m.get("f1"), bm.get("f1")),
            })
        details.append({"aspect": name, "rows": rows})
    return {"overview": overview, "aspects": details, "per_cell": per_cell}


def group_rows(rep: dict, base_rep: dict | None) -> list[dict]:
    """One row per label group (``task.groups``): members, macro precision/recall/F1, micro-F1,
    support, hierarchy violations and the macro-F1 change against the baseline."""
    base = (base_rep or {}).get("groups") or {}
    rows = []
    for name, g in (rep.get("groups") or {}).items():
        hv = g.get("hierarchy_violations")
        rows.append({
            "group": name, "members": ", ".join(map(str, g.get("members") or [])),
            **{k: finite_number(g.get(k)) for k in ("macro_precision", "macro_recall", "macro_f1", "micro_f1")},
            "support": g.get("support"), "violations": None if hv is None else hv.get("total"),
            "d_f1": metric_delta(g.get("macro_f1"), (base.get(name) or {}).get("macro_f1")),
        })
    return rows


def cell_weight_table(resolved: dict | None) -> dict[str, Any] | None:
    """Per-cell class weights of ``resolved.json`` as a matrix (rows aspects, columns classes) for
    "what actually trained"; ``None`` for pooled weights."""
    cw = (resolved or {}).get("class_weights") if isinstance(resolved, dict) else None
    cells = (cw or {}).get("per_cell")
    if not cells:
        return None
    classes = list(cw.get("classes") or next(iter(cells.values())))
    return {"classes": classes, "rows": [{"aspect": a, "weights": [row.get(c) for c in classes]} for a, row in cells.items()]}
