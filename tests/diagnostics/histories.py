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
