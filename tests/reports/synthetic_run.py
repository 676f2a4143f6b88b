"""Build run directories that follow the run-directory contract (docs/architecture.md) from synthetic data.

Logits are drawn so that frequent classes are recognised better than rare ones (as on real skewed
data); eval.json is computed from them with scikit-learn, the history follows a chosen pattern.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

LABELS = ["plot", "character", "setting", "theme"]
COUNTS = [880, 300, 120, 40]


def _report(y, pred, labels, kind):
    if kind == "multilabel":
        p, r, f, s = precision_recall_fscore_support(y, pred, zero_division=0)
        acc = float((y == pred).all(axis=1).mean())
        macro = float(f1_score(y, pred, average="macro", zero_division=0))
        micro = float(f1_score(y, pred, average="micro", zero_division=0))
    else:
        p, r, f, s = precision_recall_fscore_support(y, pred, labels=list(range(len(labels))), zero_division=0)
        acc = float(accuracy_score(y, pred))
        macro = float(f1_score(y, pred, average="macro", zero_division=0))
        micro = acc
    return {
        "accuracy": acc, "macro_f1": macro, "micro_f1": micro, "weighted_f1": macro,
        "per_class": {lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
                      for i, lab in enumerate(labels)},
    }


def _draw(rng, n, counts, kind, skill, aspects=2):
    share = np.asarray(counts, float) / np.sum(counts)
    c = len(counts)
    if kind == "binary":
        y = (rng.random(n) < share[1]).astype(int)
        logits = (y * 2 - 1) * skill * 2.0 + rng.normal(0, 1.3, n) - 0.7
        return y, logits.reshape(-1, 1).astype(np.float32), (logits > 0).astype(int)
    if kind == "aspects":
        ys, ls, ps = [], [], []
        for _ in range(aspects):
            y, lg, pr = _draw(rng, n, counts, "multiclass", skill)
            ys.append(y), ls.append(lg), ps.append(pr)
        return np.stack(ys, 1), np.concatenate(ls, 1), np.stack(ps, 1)
    if kind == "multilabel":
        y = (rng.random((n, c)) < share * 0.6).astype(int)
        quality = skill * (0.6 + 0.4 * share / share.max())
        logits = (y * 2 - 1) * quality[None, :] * 1.6 + rng.normal(0, 1.2, (n, c)) - 0.8
        return y, logits.astype(np.float32), (logits > 0).astype(int)
    y = rng.choice(c, size=n, p=share)
    quality = skill * (0.5 + share / share.max())
    logits = rng.normal(0, 1.0, (n, c)) + np.log(share)[None, :] * 0.6
    logits[np.arange(n), y] += quality[y] * 1.8
    return y, logits.astype(np.float32), logits.argmax(axis=1)


def write_run(
    path: Path,
    *,
    kind: str = "multiclass",
    labels=LABELS,
    counts=COUNTS,
    seed: int = 13,
    skill: float = 1.0,
    epochs: int = 6,
    recipe: dict | None = None,
    history: list[dict] | None = None,
    n_eval: int = 500,
    postprocess: bool = True,
    gap_growth: float = 0.01,
) -> Path:
    """Write a complete run directory at ``path`` and return it.

    ``aspects``: ``labels`` are the aspect classes (polarities + ``absent`` last), two aspects.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = list(labels)
    ev = {}
    (path / "predictions").mkdir(exist_ok=True)
    polarities = labels[:-1] if kind == "aspects" else []
    for split in ("validation", "test"):
        y, logits, pred = _draw(rng, n_eval, counts, kind, skill)
        if kind == "aspects":
            ev[split] = _report(y.reshape(-1), pred.reshape(-1), labels, "multiclass")
        else:
            ev[split] = _report(y, pred, labels, kind)
        np.savez(path / "predictions" / f"{split}.npz", logits=logits, targets=y)
    (path / "eval.json").write_text(json.dumps(ev, indent=2))
    task = {"kind": kind, "labels": ["food", "service"] if kind == "aspects" else labels, "polarities": polarities,
            "hierarchy": None, "text_column": "text", "label_column": "labels"}
    (path / "task.json").write_text(json.dumps(task))
    recipe = recipe or {
        "task": {"kind": kind},
        "data": {"path": "data/papers"},
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2"},
        "loss": {"focal": {"weight": 0.7, "gamma": 1.0}, "supcon": {"weight": 0.3, "temperature": 0.1}},
        "weighting": {"scheme": "sqrt_inverse", "apply_to": "alpha"},
        "optim": {"lr": 3.0e-5},
        "train": {"epochs": epochs, "batch_size": 32, "grad_accum": 1, "seed": seed},
        "early_stopping": {"metric": "macro_f1", "patience": 3},
    }
    recipe = {**recipe, "train": {**recipe.get("train", {}), "seed": seed}, "tailtune_version": "0.1.0"}
    (path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    if postprocess:
        pp = {"temperature": 1.4,
              "thresholds": [0.5] * len(labels) if kind == "multilabel" else [0.4] if kind == "binary" else None,
              "biases": [0.0] + [0.3] * (len(labels) - 1) if kind == "multiclass" else None,
              "hierarchy_mode": None, "tuned_on": "validation"}
        (path / "postprocess.json").write_text(json.dumps(pp))
    if history is None:
        history = healthy_history(ev["validation"], labels, counts, epochs=epochs, gap_growth=gap_growth, rng=rng)
    (path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    return path


def healthy_history(val_report, labels, counts, *, epochs=6, gap_growth=0.01, rng=None):
    """A history whose losses fall and whose validation score approaches ``val_report`` (best at the last epoch)."""
    rng = rng or np.random.default_rng(0)
    final = val_report["macro_f1"]
    rows = []
    for e in range(1, epochs + 1):
        frac = 1 - 0.55 ** e
        val_f1 = final * (0.55 + 0.45 * frac)
        gap = 0.005 + gap_growth * (e - 1)
        pc = {lab: {k: (v * (0.6 + 0.4 * frac) if k != "support" else v) for k, v in m.items()}
              for lab, m in val_report["per_class"].items()}
        train_pc = {lab: {"precision": min(1, m["precision"] + gap), "recall": min(1, m["recall"] + gap),
                          "f1": min(1, m["f1"] + gap), "support": int(c)} for (lab, m), c in zip(pc.items(), counts)}
        focal = 0.9 * 0.72 ** e
        supcon = 4.2 * 0.9 ** e
        rows.append({
            "epoch": e, "step": 42 * e, "lr": 3e-5 * (1 - e / (epochs + 1)), "time_s": 30.0 * e,
            "train": {"loss": 0.7 * focal + 0.3 * supcon, "loss_parts": {"focal": focal, "supcon": supcon},
                      "accuracy": min(1, val_report["accuracy"] + gap), "macro_f1": val_f1 + gap, "per_class": train_pc},
            "validation": {"loss": 0.75 * 0.8 ** e + 0.2, "accuracy": val_report["accuracy"] * (0.8 + 0.2 * frac),
                           "macro_f1": val_f1, "per_class": pc},
            "gap": {"macro_f1": gap, "loss": 0.02},
            "best": e == epochs,
            "early_stopping": {"metric": "macro_f1", "best": val_f1, "patience_left": 3},
        })
    rows[-1]["stopped"] = "max_epochs"
    return rows
