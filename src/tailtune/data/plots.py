"""PNG plots of :func:`tailtune.data.stats.compute_statistics` output (matplotlib).

Each function takes the statistics dict and returns PNG bytes (written atomically by the caller):
class distribution on a log scale, class weights per scheme, token length by class (box plots from
the stored percentiles) and a co-occurrence (multi-label) or aspect x polarity (aspects) heat map.
They use matplotlib's object API (``matplotlib.figure.Figure``, no pyplot): no global backend is
switched, so calling them from a notebook leaves its inline plots alone.
"""

from __future__ import annotations

import io

import numpy as np

SPLIT_COLOURS = {"train": "#1f77b4", "validation": "#ff7f0e", "test": "#2ca02c"}


def _subplots(figsize):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _order(stats: dict) -> list[str]:
    train = stats["counts"]["train"]
    return sorted(stats["classes"], key=lambda n: (-train[n], n))


def class_distribution(stats: dict) -> bytes:
    """Horizontal bars per class (largest first), one bar per split, log-scaled counts."""
    names = _order(stats)
    splits = list(stats["counts"])
    height = max(3.0, 0.22 * len(names) * max(1, len(splits)) ** 0.5 + 1.2)
    fig, ax = _subplots((8, min(height, 40)))
    y = np.arange(len(names))
    bar = 0.8 / len(splits)
    for k, split in enumerate(splits):
        vals = np.array([stats["counts"][split][n] for n in names], dtype=float)
        pos = y + (k - (len(splits) - 1) / 2) * bar
        ax.barh(pos, np.where(vals > 0, vals, np.nan), height=bar,
                label=f"{split} ({stats['rows'][split]:,} rows)", color=SPLIT_COLOURS.get(split))
        if len(names) <= 30:
            for p, v in zip(pos, vals):
                if v > 0:
                    ax.text(v * 1.05, p, f"{int(v):,}", va="center", fontsize=7)
    ax.set_xscale("log")
    top = max((max(stats["counts"][s].values(), default=1) for s in splits), default=1)
    ax.set_xlim(0.8, top * 3)  # bars start at 1 example, room for the count labels
    ax.set_yticks(y, names, fontsize=8 if len(names) < 40 else 6)
    ax.invert_yaxis()
    ax.set_xlabel("examples (log scale)")
    imb = stats.get("imbalance")
    title = f"{stats['task']['kind']}: examples per class"
    if imb:
        title += f" - train imbalance {imb['ratio']:.1f}:1"
    ax.set_title(title)
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def class_weights(stats: dict) -> bytes:
    """Weight of each class under each scheme (normalised to mean 1), classes by train count."""
    weights = stats["weights"]
    if "per_aspect" in weights:
        series, names = {}, []
        for aspect, per_scheme in weights["per_aspect"].items():
            for scheme in weights["schemes"]:
                vals = per_scheme[scheme]
                series.setdefault(scheme, []).extend(
                    [vals.get(c, np.nan) if "error" not in vals else np.nan for c in stats["aspects"]["classes"]]
                )
            names.extend(f"{aspect}#{c}" for c in stats["aspects"]["classes"])
    else:
        names = _order(stats)
        series = {
            s: [w.get(n, np.nan) if "error" not in w else np.nan for n in names]
            for s, w in weights["per_scheme"].items()
        }
    fig, ax = _subplots((max(7, 0.18 * len(names) + 3), 4.5))
    x = np.arange(len(names))
    for scheme, vals in series.items():
        ax.plot(x, vals, marker="o", markersize=3, linewidth=1.2, label=scheme)
    ax.set_yscale("log")
    ax.set_ylabel("class weight (mean 1, log scale)")
    ax.set_xticks(x, names, rotation=90, fontsize=7 if len(names) < 60 else 5)
    ax.set_title("class weights per scheme" + ("" if "per_aspect" in weights else " (classes by train count)"))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _png(fig)


def length_by_class(stats: dict) -> bytes:
    """Box plots of the train token length per class (whiskers p5-p95) from the stored percentiles."""
    per = stats["lengths"]["splits"]["train"]["per_class"]
    names = [n for n in (_order(stats) if stats["task"]["kind"] != "aspects" else list(per)) if per.get(n, {}).get("count")]
    boxes = [
        {"label": f"{n} (n={per[n]['count']:,})", "med": per[n]["p50"], "q1": per[n]["p25"], "q3": per[n]["p75"],
         "whislo": per[n]["p5"], "whishi": per[n]["p95"], "mean": per[n]["mean"], "fliers": []}
        for n in names
    ]
    fig, ax = _subplots((8, max(3.0, 0.28 * len(boxes) + 1.2)))
    ax.bxp(boxes, orientation="horizontal", showmeans=True, showfliers=False)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8 if len(boxes) < 40 else 6)
    ax.set_xlabel(f"{stats['lengths']['unit']} per text (box: p25-p75, whiskers: p5-p95, triangle: mean)")
    ax.set_title("text length by class (train)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def heat_map(stats: dict) -> bytes | None:
    """Label co-occurrence (multi-label, log colour) or aspect x polarity counts (aspects); None otherwise."""
    from matplotlib.colors import LogNorm

    if "multilabel" in stats:
        co = stats["multilabel"]["co_occurrence"]
        names = co["labels"]
        m = np.array(co["matrix"], dtype=float)
        order = np.argsort(-np.diag(m), kind="stable")
        m = m[np.ix_(order, order)]
        names = [names[i] for i in order]
        title = "label co-occurrence (train; diagonal = label count)"
        xnames = names
    elif "aspects" in stats:
        table = stats["aspects"]["polarity_table"]["train"]
        names = list(table)
        xnames = stats["aspects"]["classes"]
        m = np.array([[table[a][c] for c in xnames] for a in names], dtype=float)
        title = "aspect x polarity (train)"
    else:
        return None
    size = max(4.0, 0.16 * max(len(names), len(xnames)) + 3)
    fig, ax = _subplots((size + 1 if len(xnames) > 8 else 6, size if len(names) > 8 else 4))
    masked = np.ma.masked_where(m <= 0, m)
    im = ax.imshow(masked, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(m.max(), 1)), aspect="auto")
    fs = 8 if len(names) < 30 else 5
    ax.set_xticks(np.arange(len(xnames)), xnames, rotation=90, fontsize=fs)
    ax.set_yticks(np.arange(len(names)), names, fontsize=fs)
    if m.size <= 200:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7, color="white" if v < m.max() ** 0.5 else "black")
    fig.colorbar(im, ax=ax, label="examples (log scale)")
    ax.set_title(title)
    return _png(fig)


PLOTS = {
    "class_distribution.png": class_distribution,
    "class_weights.png": class_weights,
    "length_by_class.png": length_by_class,
    "heat_map.png": heat_map,
}
