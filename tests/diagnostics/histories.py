"""Hand-built history.jsonl rows (docs/architecture.md schema) exhibiting one pattern each."""

from __future__ import annotations


def rows(
    *,
    train_loss=None,
    val_loss=None,
    parts: dict[str, list[float]] | None = None,
    train_f1=None,
    val_f1=None,
    val_per_class: list[dict] | dict | None = None,
    train_counts: dict[str, int] | None = None,
    best: int | None = None,
    stopped: str | None = "max_epochs",
    es: dict | None = None,
):
    """One row per epoch; ``best`` is the 1-based best epoch (default: the argmax of ``val_f1``)."""
    n = max(len(x) for x in (train_loss, val_loss, train_f1, val_f1, *(parts or {}).values()) if x)
    if best is None and val_f1:
        best = max(range(n), key=lambda i: val_f1[i]) + 1
    out = []
    for i in range(n):
        train, val = {}, {}
        if train_loss:
            train["loss"] = train_loss[i]
        if parts:
            train["loss_parts"] = {k: v[i] for k, v in parts.items()}
            train.setdefault("loss", sum(v[i] for v in parts.values()))
        if train_f1:
            train["macro_f1"] = train_f1[i]
        if train_counts:
            train["per_class"] = {k: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": c} for k, c in train_counts.items()}
        if val_loss:
            val["loss"] = val_loss[i]
        if val_f1:
            val["macro_f1"] = val_f1[i]
        if val_per_class is not None:
            val["per_class"] = val_per_class[i] if isinstance(val_per_class, list) else val_per_class
        row = {"epoch": i + 1, "step": 10 * (i + 1), "lr": 3e-5, "train": train, "validation": val}
        if train_f1 and val_f1:
            row["gap"] = {"macro_f1": train_f1[i] - val_f1[i]}
        if best is not None:
            row["best"] = i + 1 == best
        row["early_stopping"] = dict(es or {"metric": "macro_f1", "best": max(val_f1[: i + 1]) if val_f1 else None})
        out.append(row)
    if stopped:
        out[-1]["stopped"] = stopped
    return out


def healthy():
    """Both parts falling, validation improving, small steady gap, best at the end, all classes recalled."""
    pc = {"a": {"precision": 0.9, "recall": 0.92, "f1": 0.91, "support": 300},
          "b": {"precision": 0.7, "recall": 0.66, "f1": 0.68, "support": 60},
          "c": {"precision": 0.6, "recall": 0.55, "f1": 0.57, "support": 20}}
    return rows(
        parts={"focal": [0.80, 0.60, 0.45, 0.34, 0.26, 0.20], "supcon": [4.0, 3.6, 3.25, 2.95, 2.7, 2.45]},
        val_loss=[0.90, 0.75, 0.66, 0.60, 0.57, 0.55],
        train_f1=[0.50, 0.60, 0.66, 0.70, 0.725, 0.74],
        val_f1=[0.49, 0.585, 0.645, 0.68, 0.70, 0.71],
        val_per_class=pc,
        train_counts={"a": 1500, "b": 300, "c": 100},
        best=6,
        stopped="early_stopping",
    )


# ------------------------------------------------------------------ the practitioners' composite cases
def contrastive_dominates():
    """focal + supcon: focal 0.65 -> 0.60 while supcon 0.64 -> 0.35 over 5 epochs (the classifier stalls)."""
    return rows(
        parts={"focal": [0.65, 0.635, 0.62, 0.61, 0.60], "supcon": [0.64, 0.55, 0.47, 0.40, 0.35]},
        val_loss=[0.70, 0.69, 0.69, 0.685, 0.685],
        train_f1=[0.55, 0.57, 0.58, 0.585, 0.59],
        val_f1=[0.53, 0.55, 0.555, 0.556, 0.557],
    )


def early_saturation():
    """ce + supcon: ce at 0.076 by epoch 8 (8% of its start) while supcon is still at 0.55 (79% of its start)."""
    return rows(
        parts={"ce": [0.90, 0.52, 0.33, 0.22, 0.15, 0.11, 0.09, 0.076],
               "supcon": [0.70, 0.66, 0.63, 0.61, 0.59, 0.575, 0.56, 0.55]},
        val_loss=[0.80, 0.62, 0.55, 0.53, 0.54, 0.56, 0.58, 0.60],
        train_f1=[0.55, 0.70, 0.80, 0.86, 0.90, 0.93, 0.95, 0.96],
        val_f1=[0.52, 0.61, 0.65, 0.66, 0.664, 0.662, 0.665, 0.663],
        stopped="max_epochs",
    )


def healthy_composites():
    """Composite histories that must stay silent: both parts fall, each at its own pace."""
    common = {"val_loss": [0.90, 0.75, 0.66, 0.60, 0.57, 0.55], "train_f1": [0.50, 0.60, 0.66, 0.70, 0.725, 0.74],
              "val_f1": [0.49, 0.585, 0.645, 0.68, 0.70, 0.71], "best": 6, "stopped": "early_stopping"}
    return {
        # the classification part falls faster than the contrastive one (the usual case: supcon has a floor)
        "classification_faster": healthy(),
        # similar pace
        "same_pace": rows(parts={"focal": [0.70, 0.60, 0.52, 0.45, 0.39, 0.34],
                                 "supcon": [0.64, 0.55, 0.47, 0.41, 0.355, 0.31]}, **common),
        # the contrastive part is faster, but the classifier keeps a steady share of its pace (> 1/3)
        "contrastive_faster_classifier_learning": rows(
            parts={"focal": [0.65, 0.60, 0.555, 0.515, 0.48, 0.445], "supcon": [0.64, 0.55, 0.47, 0.41, 0.355, 0.31]},
            **common),
        # the classification part converged near its floor while validation still improves
        "classifier_converged_val_improving": rows(
            parts={"ce": [0.90, 0.40, 0.18, 0.09, 0.06, 0.05], "supcon": [0.70, 0.66, 0.63, 0.61, 0.59, 0.575]},
            **common),
    }


# ------------------------------------------------------------------ contradictory advice on class weights
#: a multi-label run (Reuters-like): 9 rare labels never recalled at weight 10 (the cap), 2 up-weighted
#: labels over-predicted
ML_LABELS = ["earn", "acq", "crude", "trade"] + [f"rare{i}" for i in range(9)]
ML_COUNTS = {"earn": 900, "acq": 600, "crude": 90, "trade": 80, **{f"rare{i}": 12 for i in range(9)}}


def conflicting_class_weights():
    """``(history, run kwargs)`` of the multi-label run whose rules advise raising and lowering the weights."""
    pc = {"earn": (0.95, 0.94, 300), "acq": (0.90, 0.88, 200), "crude": (0.35, 0.80, 30), "trade": (0.30, 0.75, 25)}
    pc.update({f"rare{i}": (0.0, 0.0, 4) for i in range(9)})
    per_class = {k: {"precision": p, "recall": r, "f1": 0.0 if p + r == 0 else 2 * p * r / (p + r), "support": s}
                 for k, (p, r, s) in pc.items()}
    h = rows(train_loss=[0.30, 0.20, 0.15, 0.12], val_loss=[0.25, 0.2, 0.18, 0.17], val_f1=[0.30, 0.35, 0.37, 0.38],
             train_f1=[0.32, 0.37, 0.39, 0.40], val_per_class=per_class, train_counts=ML_COUNTS, stopped="early_stopping")
    weights = {"earn": 1.5, "acq": 2.8, "crude": 10.0, "trade": 10.0, **{f"rare{i}": 10.0 for i in range(9)}}
    kwargs = {"recipe": {"loss": {"bce": {}}, "weighting": {"scheme": "inverse", "cap": 10.0}},
              "task": {"kind": "multilabel", "labels": ML_LABELS}, "class_weights": weights}
    return h, kwargs
