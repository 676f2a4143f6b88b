"""``report.html``: one self-contained page per run (inline CSS, inline PNG plots, no script, no CDN).

Sections: summary, diagnostics (history rules + recipe lint), class distribution, loss components
and gap per epoch (with the epoch table), per-class precision/recall/F1 against a baseline, per
aspect (aspect tasks) and per label group (``task.groups``; both :mod:`tailtune.reports.breakdown`),
confusion matrix, precision-recall curves, reliability diagram, thresholds (``postprocess.json``)
and the recipe. Sections whose inputs are missing (no predictions, no eval.json) say so instead of
disappearing, so a report of a killed run still renders; the per-aspect and label-group sections
(:data:`OPTIONAL_SECTIONS`) appear only for runs that have aspects or groups.

Example:
    >>> write_report("runs/reuters-focal", baseline="runs/reuters-ce")  # doctest: +SKIP
    PosixPath('runs/reuters-focal/report.html')
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from tailtune.diagnostics import epoch_table, lint_recipe, load_run, run_rules
from tailtune.diagnostics.rundata import RunData, check_same_task, finite_number
from tailtune.recipe.counts import ClassCounts
from tailtune.reports.breakdown import aspect_tables, cell_weight_table, group_rows, metric_delta
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_text
from tailtune.utils.rundir import TRAIN_EVAL_MAX

SECTIONS = (
    ("summary", "Summary"),
    ("diagnostics", "Diagnostics"),
    ("distribution", "Class distribution"),
    ("training", "Training"),
    ("per-class", "Per class"),
    ("confusion", "Confusion matrix"),
    ("pr-curves", "Precision-recall"),
    ("reliability", "Reliability"),
    ("thresholds", "Thresholds"),
    ("recipe", "Recipe"),
)


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("tailtune.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda x, d=3: "–" if x is None else f"{x:.{d}f}"
    env.filters["pts"] = lambda x: "–" if x is None else f"{100 * x:+.1f}"
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}%"
    return env


def _split(run: RunData) -> str | None:
    for split in ("test", "validation"):
        if isinstance((run.eval or {}).get(split), dict):
            return split
    return None


def _report_of(run: RunData, split: str | None) -> dict:
    if split and isinstance((run.eval or {}).get(split), dict):
        return run.eval[split]
    return (run.best_row or {}).get("validation") or {}


def _distribution(run: RunData, labels: list[str]) -> tuple[dict[str, dict[str, float]], str]:
    series: dict[str, dict[str, float]] = {}
    note = ""
    if run.class_counts:
        series["train"] = dict(run.class_counts)
        single_label = run.kind_info is not None and run.kind_info.single_label
        if TRAIN_EVAL_MAX and abs(sum(run.class_counts.values()) - TRAIN_EVAL_MAX) < 1 and single_label:
            note = (f"train counts are from the {TRAIN_EVAL_MAX:,} training examples evaluated each epoch "
                    "(a fixed subsample): shares are exact, totals scaled down")
    for split in ("validation", "test"):
        pc = ((run.eval or {}).get(split) or {}).get("per_class") or {}
        if pc:
            series[split] = {k: float(v.get("support") or 0) for k, v in pc.items()}
    return series, note


def _lint(run: RunData) -> list:
    """The recipe lint with the run's training counts (``resolved.json``: an aspect task's per-cell
    counts too, so per-cell weights are checked as trained; else the history's per-class counts)."""
    if not run.recipe:
        return []
    counts = (run.extra.get("resolved") or {}).get("counts")
    class_counts = ClassCounts.from_dict(counts) if isinstance(counts, dict) and counts.get("per_class") else None
    try:
        if class_counts is not None:
            return lint_recipe(run.recipe, class_counts=class_counts, num_examples=class_counts.num_examples)
        return lint_recipe(run.recipe, class_counts=run.class_counts, num_examples=run.extra.get("n_train"))
    except (TypeError, ValueError):
        return []


#: sections only runs that have them show (after "Per class"): aspect tasks, ``task.groups``
OPTIONAL_SECTIONS = (("per-aspect", "Per aspect"), ("groups", "Label groups"))


def _sections(aspects: dict | None, groups: list) -> tuple:
    """The navigation: :data:`SECTIONS`, with the per-aspect and label-group sections when the run has them."""
    shown = {"per-aspect": aspects is not None, "groups": bool(groups)}
    extra = tuple(s for s in OPTIONAL_SECTIONS if shown[s[0]])
    at = [s[0] for s in SECTIONS].index("per-class") + 1
    return SECTIONS[:at] + extra + SECTIONS[at:]


def _class_order(run: RunData, labels: list[str]) -> list[str]:
    counts = run.class_counts or {}
    if counts and all(lab in counts for lab in labels):
        return sorted(labels, key=lambda lab: -counts[lab])
    return labels


def _bias_rows(run: RunData, labels: list[str], biases) -> list[dict]:
    """One row per class bias; aspects carry one row of P + 1 biases per aspect ("aspect · class")."""
    if not isinstance(biases, list):
        return []
    if biases and isinstance(biases[0], list):  # aspects: (A, P + 1)
        aspects = (run.task or {}).get("labels") or [str(i) for i in range(len(biases))]
        return [{"label": f"{a} · {c}", "bias": b} for a, row in zip(aspects, biases) for c, b in zip(labels, row)]
    return [{"label": n, "bias": b} for n, b in zip(labels, biases)]


def _cards(run: RunData, rep: dict, base_rep: dict | None, split: str | None, table: list, problems: list) -> list[dict]:
    """The summary cards: macro-F1 and accuracy (vs the baseline), best epoch, gap, warnings."""
    best = next((r for r in table if r["best"]), None)
    cards = []
    for key, title in (("macro_f1", "macro-F1"), ("accuracy", "accuracy")):
        val = finite_number(rep.get(key))
        b = finite_number((base_rep or {}).get(key)) if base_rep else None
        cards.append({"title": title, "value": None if val is None else f"{val:.3f}",
                      "delta": None if (val is None or b is None) else 100 * (val - b),
                      "sub": f"{split or 'validation'}" + (f" · baseline {b:.3f}" if b is not None else "")})
    cards.append({"title": "best epoch", "value": f"{run.best_epoch} / {len(run.history)}" if run.best_epoch is not None else "–",
                  "delta": None, "sub": (run.history[-1].get("stopped") or "running").replace("_", " ")})
    cards.append({"title": "gap at best", "value": "–" if not best or best["gap"] is None else f"{100 * best['gap']:+.1f} pts",
                  "delta": None, "sub": best["label"] if best and best["label"] else ""})
    cards.append({"title": "warnings", "value": str(len(problems)), "delta": None,
                  "sub": "errors: " + str(sum(f.severity == "error" for f in problems))})
    return cards


def _per_class_rows(run: RunData, rep: dict, base_rep: dict | None) -> tuple[list[dict], list[str]]:
    """The per-class table's rows (training count, class weight, P/R/F1 and their change) and label order."""
    per_class = rep.get("per_class") or {}
    base_pc = (base_rep or {}).get("per_class") or {}
    pc_labels = _class_order(run, list(per_class))
    rows = []
    for lab in pc_labels:
        m = per_class[lab]
        b = base_pc.get(lab) or {}
        rows.append({
            "label": lab,
            "train": (run.class_counts or {}).get(lab),
            "weight": (run.class_weights or {}).get(lab),
            **{k: finite_number(m.get(k)) for k in ("precision", "recall", "f1")},
            "support": m.get("support"),
            **{f"d_{k}": metric_delta(m.get(k), b.get(k)) for k in ("precision", "recall", "f1")},
        })
    return rows, pc_labels


def _prediction_context(run: RunData) -> dict[str, Any]:
    """Confusion matrix (or the multi-label 2x2 rows), PR curves and reliability of the saved predictions."""
    from tailtune.reports import plots
    from tailtune.reports.predictions import prediction_view

    pred_split = next((s for s in ("test", "validation") if run.predictions(s) is not None), None)
    out: dict[str, Any] = {"pred_split": pred_split, "confusion_plot": None, "pr_plot": None, "rel_plot": None,
                           "ap": {}, "ml_rows": [], "ece": None, "ece_cal": None}
    if not (pred_split and run.task):
        return out
    logits, targets = run.predictions(pred_split)
    view = prediction_view(logits, targets, run.task, run.postprocess)
    if view.confusion is not None:
        out["confusion_plot"] = plots.confusion(view.confusion, view.labels)
    else:
        import numpy as np

        yt, yp = view.y_true, view.y_pred
        for i, lab in enumerate(view.labels):
            out["ml_rows"].append({"label": lab, "tp": int(np.sum((yt[:, i] == 1) & (yp[:, i] == 1))),
                                   "fp": int(np.sum((yt[:, i] == 0) & (yp[:, i] == 1))),
                                   "fn": int(np.sum((yt[:, i] == 1) & (yp[:, i] == 0))), "pos": int(yt[:, i].sum())})
    out["pr_plot"], out["ap"] = plots.pr_curves(view.scores, view.onehot, view.labels)
    out["rel_plot"] = plots.reliability(view.reliability, view.reliability_calibrated)
    out["ece"] = view.reliability.ece
    out["ece_cal"] = view.reliability_calibrated.ece if view.reliability_calibrated else None
    return out


def _rule_rows(run: RunData, labels: list[str]) -> tuple[list[dict], list[dict]]:
    """``postprocess.json`` as rows: decision thresholds and logit biases."""
    pp = run.postprocess or {}
    thresholds, biases = pp.get("thresholds"), pp.get("biases")
    names = labels[1:] if run.kind_info is not None and run.kind_info.is_binary else labels
    thr_rows = [{"label": n, "threshold": t} for n, t in zip(names, thresholds)] if isinstance(thresholds, list) else []
    bias_rows = _bias_rows(run, labels, biases)
    return thr_rows, bias_rows


def build_context(run: RunData, baseline: RunData | None = None) -> dict[str, Any]:
    """Everything the template renders (plots as data URIs); exposed for tests and custom templates."""
    import yaml

    from tailtune import __version__
    from tailtune.diagnostics.weights import imbalance_ratio
    from tailtune.reports import plots
    from tailtune.reports.fit_section import SECTION as FIT_SECTION
    from tailtune.reports.fit_section import fit_context

    if baseline is not None:
        check_same_task([run], [baseline], command="report --baseline")
    split = _split(run)
    rep = _report_of(run, split)
    base_rep = _report_of(baseline, _split(baseline)) if baseline is not None else None
    labels = run.labels or list(rep.get("per_class") or {})
    n_aspects = len(run.labels) if run.kind_info is not None and run.kind_info.per_aspect else None
    if n_aspects is not None and rep.get("per_class"):
        labels = list(rep["per_class"])  # the polarity classes (absent last), pooled over the aspects
    table = epoch_table(run)
    findings = run_rules(run, min_severity="ok")
    lint = _lint(run)
    problems = [f for f in findings + lint if f.is_problem]
    recipe = run.recipe or {}
    loss = recipe.get("loss") or {}
    loss_desc = ", ".join(
        f"{k} ×{(v or {}).get('weight', 1)}" + (f" (γ={(v or {}).get('gamma')})" if isinstance(v, dict) and "gamma" in v else "")
        for k, v in (loss.items() if isinstance(loss, dict) else [])
    )
    series, dist_note = _distribution(run, labels)
    dist_labels = _class_order(run, list(next(iter(series.values()))) if series else labels)
    pc_rows, pc_labels = _per_class_rows(run, rep, base_rep)
    per_class, base_pc = rep.get("per_class") or {}, (base_rep or {}).get("per_class") or {}
    aspects, groups = aspect_tables(rep, base_rep, run.extra.get("resolved")), group_rows(rep, base_rep)
    thr_rows, bias_rows = _rule_rows(run, labels)
    sections = _sections(aspects, groups)
    fit = fit_context(run.path)  # a `tailtune fit` folder: "How this model was chosen"
    return {
        "title": f"tailtune report · {run.name}",
        "sections": (sections[:1] + (FIT_SECTION,) + sections[1:]) if fit else sections,
        "fit": fit,
        "aspects": aspects,
        "groups": groups,
        "run": {"name": run.name, "path": str(run.path) if run.path else "", "kind": run.kind or "unknown",
                "n_labels": len(labels), "n_aspects": n_aspects, "seed": run.seed, "model": (recipe.get("model") or {}).get("name"),
                "loss": loss_desc, "version": recipe.get("tailtune_version") or __version__, "split": split},
        "baseline": {"name": baseline.name, "path": str(baseline.path) if baseline.path else ""} if baseline else None,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cards": _cards(run, rep, base_rep, split, table, problems),
        "findings": findings,
        "lint": lint,
        "dist_plot": plots.class_distribution(dist_labels, series) if series else None,
        "dist_note": dist_note,
        "imbalance": imbalance_ratio(series[next(iter(series))])[0] if series else None,
        "curves": plots.training_curves(table, baseline_table=epoch_table(baseline) if baseline is not None else None)
        if table else None,
        "epochs": table,
        "parts": sorted({p for r in table for p in r["loss_parts"]}),
        "pc_rows": pc_rows,
        "pc_plot": plots.per_class_bars(pc_labels, per_class, base_pc or None) if per_class else None,
        "has_baseline": baseline is not None and bool(base_pc),
        **_prediction_context(run),
        "pp": run.postprocess or {},
        "thr_rows": thr_rows,
        "bias_rows": bias_rows,
        "recipe_yaml": yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True) if recipe else "",
        "trained": trained_table(run.extra.get("resolved")),
    }


def _arg_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_arg_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_arg_text(v) for v in value[:8]) + (", ..." if len(value) > 8 else "") + "]"
    return str(value)


def trained_table(resolved: dict | None) -> dict | None:
    """``resolved.json`` as the report's "what actually trained" rows (``None`` for a run without it):
    each loss part with every argument, the class weights per class (per-aspect weights: also as an
    aspect x class matrix, ``cells``) and where they went, the sampler and the sample weighting."""
    if not isinstance(resolved, dict):
        return None
    parts = []
    for name, part in (resolved.get("loss") or {}).items():
        args = dict(part.get("args") or {})
        cw_arg = part.get("class_weight_arg")
        if cw_arg in args:
            args[cw_arg] = "class weights (below)"
        parts.append({"name": name, "loss": part.get("loss"), "weight": part.get("weight"),
                      "args": ", ".join(f"{k}={_arg_text(v)}" for k, v in args.items())})
    cw = resolved.get("class_weights") or {}
    pos_weight = cw.get("pos_weight") or {}
    classes = [{"label": k, "weight": v, "pos_weight": pos_weight.get(k)} for k, v in (cw.get("per_class") or {}).items()]
    sw = resolved.get("sample_weighting") or {}
    return {
        "parts": parts, "classes": classes, "cells": cell_weight_table(resolved),
        "apply_to": cw.get("apply_to"), "scheme": cw.get("scheme"),
        "has_pos_weight": bool(pos_weight),
        "sampler": resolved.get("sampler"),
        "sample_weighting": ", ".join(k for k in ("length", "confidence") if sw.get(k)) or "none",
    }


def render_report(run: str | os.PathLike | RunData, baseline: str | os.PathLike | RunData | None = None) -> str:
    """The report's HTML text (nothing written)."""
    run = run if isinstance(run, RunData) else load_run(run)
    base = None
    if baseline is not None:
        base = baseline if isinstance(baseline, RunData) else load_run(baseline)
    return _env().get_template("report.html.j2").render(**build_context(run, base))


def write_report(
    run_dir: str | os.PathLike,
    baseline: str | os.PathLike | None = None,
    *,
    out: str | os.PathLike | None = None,
) -> Path:
    """Write ``report.html`` (atomically) into ``run_dir`` (or to ``out``) and return its path.

    Args:
        run_dir: a run directory (only ``history.jsonl`` is required).
        baseline: a run directory to compare per-class metrics and curves with.
        out: another destination file.

    Raises:
        RunDirError: ``run_dir`` or ``baseline`` is not a readable run directory.
    """
    html = render_report(run_dir, baseline)
    path = Path(out) if out is not None else Path(run_dir) / rundir.REPORT
    return atomic_write_text(path, html)
