"""Matplotlib figures for the HTML report, returned as inline ``data:image/png;base64`` URIs.

Uses the object-oriented ``matplotlib.figure.Figure`` API (no pyplot, no global backend), so it is
safe in servers and threads and never opens a window.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

#: palette shared with the report's CSS
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#2563eb"
ORANGE = "#ea580c"
GREEN = "#059669"
PURPLE = "#7c3aed"
RED = "#dc2626"
PARTS = [BLUE, PURPLE, GREEN, ORANGE, "#0891b2", "#be185d"]
LABEL_COLORS = {
    "normal": "#10b981",
    "inverted": "#0ea5e9",
    "growing": "#f59e0b",
    "overfitting": "#f97316",
    "severe": "#ef4444",
    "critical": "#991b1b",
    None: "#9ca3af",
}
DPI = 110


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#9ca3af")
    ax.tick_params(colors=INK, labelsize=9)
    ax.grid(True, color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.title.set_color(INK)
    ax.xaxis.label.set_color(MUTED)
    ax.yaxis.label.set_color(MUTED)


def _fig(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), dpi=DPI)
    fig.patch.set_facecolor("white")
    return fig


def to_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(name: str, n: int = 22) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def class_distribution(labels: Sequence[str], series: dict[str, dict[str, float]]) -> str:
    """Horizontal bars per class, one colour per split; log axis when the imbalance exceeds 20:1."""
    k = len(labels)
    fig = _fig(9.5, max(2.2, 0.32 * k * max(1, len(series)) / 1.6 + 1.0))
    ax = fig.add_subplot(1, 1, 1)
    colors = [BLUE, ORANGE, GREEN]
    height = 0.8 / max(1, len(series))
    y = np.arange(k)
    allv = [v for s in series.values() for v in s.values() if v > 0]
    for i, (split, counts) in enumerate(series.items()):
        vals = np.array([float(counts.get(lab, 0)) for lab in labels])
        total = vals.sum() or 1.0
        bars = ax.barh(y + i * height - 0.4 + height / 2, vals, height=height, color=colors[i % 3], label=split, alpha=0.9)
        for b, v in zip(bars, vals):
            ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:g} ({100 * v / total:.1f}%)",
                    va="center", fontsize=8.5, color=MUTED)
    if allv and max(allv) / min(allv) > 20:
        ax.set_xscale("log")
        ax.set_xlabel("examples (log scale)")
    else:
        ax.set_xlabel("examples")
    ax.set_yticks(y, [_short(x) for x in labels])
    ax.invert_yaxis()
    ax.margins(x=0.18)
    _style(ax)
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    fig.tight_layout()
    return to_uri(fig)


def training_curves(table: list[dict], *, baseline_table: list[dict] | None = None) -> str:
    """Three panels: loss components per epoch, validation vs train score, and the gap with trend labels."""
    from tailtune.diagnostics.rules import GAP_CRITICAL, GAP_OVERFITTING, GAP_SEVERE

    fig = _fig(13.5, 3.8)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ep = [r["epoch"] for r in table]
    parts = sorted({p for r in table for p in r["loss_parts"]})
    for i, p in enumerate(parts):
        ax1.plot(ep, [r["loss_parts"].get(p) for r in table], marker="o", ms=3.5, color=PARTS[i % len(PARTS)], label=f"train {p}")
    if any(r["train_loss"] is not None for r in table):
        ax1.plot(ep, [r["train_loss"] for r in table], color=INK, lw=2, label="train total")
    if any(r["val_loss"] is not None for r in table):
        ax1.plot(ep, [r["val_loss"] for r in table], color=RED, lw=2, ls="--", label="validation")
    ax1.set_title("Loss components", fontsize=11, loc="left")
    ax1.set_xlabel("epoch")
    ax1.legend(frameon=False, fontsize=8.5)
    metric = table[0]["gap_metric"] if table else None
    ax2.plot(ep, [r["train_score"] for r in table], color=BLUE, marker="o", ms=3.5, label="train")
    ax2.plot(ep, [r["val_score"] for r in table], color=ORANGE, marker="o", ms=3.5, label="validation")
    if baseline_table:
        ax2.plot([r["epoch"] for r in baseline_table], [r["val_score"] for r in baseline_table], color=MUTED,
                 ls=":", label="baseline validation")
    for r in table:
        if r["best"]:
            ax2.axvline(r["epoch"], color=GREEN, lw=1, ls="--")
            if r["val_score"] is not None:
                ax2.annotate("best", (r["epoch"], r["val_score"]), textcoords="offset points", xytext=(4, -12), fontsize=9, color=GREEN)
    ax2.set_title(f"{metric or 'score'} per epoch", fontsize=11, loc="left")
    ax2.set_xlabel("epoch")
    ax2.legend(frameon=False, fontsize=8.5)
    gaps = [r["gap"] if r["gap"] is not None else 0.0 for r in table]
    ax3.bar(ep, [100 * g for g in gaps], color=[LABEL_COLORS.get(r["label"], MUTED) for r in table], width=0.6)
    for thr, name in ((GAP_OVERFITTING, "overfitting"), (GAP_SEVERE, "severe"), (GAP_CRITICAL, "critical")):
        if max(gaps + [0]) * 100 > thr * 100 * 0.6:
            ax3.axhline(100 * thr, color=LABEL_COLORS[name], lw=0.9, ls="--")
            ax3.text(ep[0] - 0.4 if ep else 0, 100 * thr, f"{name} ", fontsize=8, color=LABEL_COLORS[name], va="bottom")
    for e, g, r in zip(ep, gaps, table):
        if r["label"]:
            ax3.text(e, 100 * g, r["label"], ha="center", va="bottom" if g >= 0 else "top", fontsize=8, color=INK, rotation=0)
    ax3.axhline(0, color="#9ca3af", lw=0.8)
    ax3.set_title("Train − validation gap (points)", fontsize=11, loc="left")
    ax3.set_xlabel("epoch")
    for ax in (ax1, ax2, ax3):
        _style(ax)
        if ep:
            ax.set_xticks(ep)
    fig.tight_layout()
    return to_uri(fig)


def per_class_bars(labels: Sequence[str], cand: dict[str, dict], base: dict[str, dict] | None) -> str:
    """Precision / recall / F1 per class: candidate bars, baseline as black ticks."""
    k = len(labels)
    fig = _fig(13.5, max(2.4, 0.3 * k + 1.2))
    axes = fig.subplots(1, 3, sharey=True)
    y = np.arange(k)
    for ax, (key, color) in zip(axes, (("precision", BLUE), ("recall", ORANGE), ("f1", GREEN))):
        vals = [float((cand.get(lab) or {}).get(key) or 0.0) for lab in labels]
        ax.barh(y, vals, color=color, height=0.62, alpha=0.9, label="this run")
        for yi, v in zip(y, vals):
            ax.text(min(v, 1.0) + 0.015, yi, f"{v:.2f}", va="center", fontsize=8.5, color=MUTED)
        if base:
            bv = [(base.get(lab) or {}).get(key) for lab in labels]
            ax.scatter([b if b is not None else np.nan for b in bv], y, marker="|", s=220, color=INK, linewidths=2,
                       label="baseline", zorder=3)
        ax.set_xlim(0, 1.12)
        ax.set_title(key if key != "f1" else "F1", fontsize=11, loc="left")
        _style(ax)
    axes[0].set_yticks(y, [_short(x) for x in labels])
    axes[0].invert_yaxis()
    if base:
        axes[2].legend(frameon=False, fontsize=9, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, borderaxespad=0.2)
    fig.tight_layout()
    return to_uri(fig)


def confusion(matrix: np.ndarray, labels: Sequence[str]) -> str:
    """Row-normalised confusion matrix (rows = truth) with counts annotated."""
    k = len(labels)
    size = min(max(3.6, 0.55 * k + 1.8), 11)
    fig = _fig(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    rows = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{matrix[i, j]}\n{100 * norm[i, j]:.0f}%", ha="center", va="center", fontsize=7 if k > 8 else 8.5,
                        color="white" if norm[i, j] > 0.55 else INK)
    ax.set_xticks(range(k), [_short(x, 14) for x in labels], rotation=35 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), [_short(x, 18) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(labelsize=8.5, colors=INK)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.ax.tick_params(labelsize=8)
    cb.set_label("share of the true class", fontsize=8, color=MUTED)
    fig.tight_layout()
    return to_uri(fig)


def pr_curves(scores: np.ndarray, onehot: np.ndarray, labels: Sequence[str], *, max_curves: int = 12) -> tuple[str, dict[str, float]]:
    """One-vs-rest precision-recall curve per class (rarest ``max_curves``) with average precision."""
    from tailtune.reports.predictions import pr_curve

    k = len(labels)
    prevalence = onehot.mean(axis=0)
    order = [i for i in np.argsort(prevalence) if onehot[:, i].sum() > 0][:max_curves]
    cols = min(4, max(1, len(order)))
    rows = math.ceil(len(order) / cols) if order else 1
    fig = _fig(3.3 * cols, 2.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    ap: dict[str, float] = {}
    curves = {}
    for i in range(k):
        if onehot[:, i].sum() > 0:
            p, r, a = pr_curve(onehot[:, i], scores[:, i])
            ap[labels[i]] = a
            curves[i] = (p, r)
    for ax, i in zip(axes, order):
        p, r = curves[i]
        ax.plot(r, p, color=BLUE, lw=1.8, drawstyle="steps-pre")
        ax.fill_between(r, p, step="pre", alpha=0.12, color=BLUE)
        ax.axhline(prevalence[i], color=MUTED, ls=":", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.03)
        ax.set_title(f"{_short(labels[i], 20)}  AP {ap[labels[i]]:.2f}", fontsize=9.5, loc="left")
        ax.set_xlabel("recall", fontsize=9)
        ax.set_ylabel("precision", fontsize=9)
        _style(ax)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    fig.tight_layout()
    return to_uri(fig), ap


def reliability(rel, rel_cal=None) -> str:
    """Reliability diagram (accuracy vs confidence per bin) with the confidence histogram beneath."""
    fig = _fig(6.8, 5.4)
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 1], hspace=0.08)
    ax = fig.add_subplot(gs[0])
    axh = fig.add_subplot(gs[1], sharex=ax)
    centers = (rel.edges[:-1] + rel.edges[1:]) / 2
    width = rel.edges[1] - rel.edges[0]
    ax.plot([0, 1], [0, 1], color=MUTED, ls="--", lw=1, label="perfect calibration")
    acc = np.nan_to_num(rel.accuracy)
    ax.bar(centers, acc, width=width * 0.92, color=BLUE, alpha=0.85, label=f"accuracy (ECE {rel.ece:.3f})", edgecolor="white")
    m = rel.count > 0
    ax.scatter(centers[m], rel.confidence[m], marker="D", s=22, color=INK, zorder=3, label="mean confidence in the bin")
    if rel_cal is not None:
        m = rel_cal.count > 0
        ax.plot(rel_cal.confidence[m], rel_cal.accuracy[m], color=ORANGE, marker="o", ms=4, lw=1.8,
                label=f"after temperature (ECE {rel_cal.ece:.3f})")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    ax.tick_params(labelbottom=False)
    _style(ax)
    axh.bar(centers, rel.count, width=width * 0.92, color=MUTED, alpha=0.7)
    axh.set_xlabel("confidence of the decision")
    axh.set_ylabel("count")
    _style(axh)
    return to_uri(fig)
