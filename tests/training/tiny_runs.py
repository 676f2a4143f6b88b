"""Tiny generated data sets of every task kind and a recipe for the tiny encoder (training/CLI tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = {
    "a": "good great fine lovely",
    "b": "bad awful poor dull",
    "c": "plot story scene actor",
}
ASPECTS = ["food", "service"]
POLARITIES = ["positive", "negative"]


def write_tiny_data(root: Path, kind: str, *, n_train: int = 64, n_eval: int = 24, seed: int = 0) -> Path:
    """Write train/validation/test JSONL files for ``kind`` (text depends on the label, so it is learnable)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        rows = []
        for _ in range(n):
            if kind == "binary":
                y = int(rng.random() < 0.25)
                text = " ".join(rng.choice(WORDS["b" if y else "a"].split(), size=5))
                rows.append({"text": text + " film", "labels": ["ham", "spam"][y]})
            elif kind == "multiclass":
                y = rng.choice(3, p=[0.5, 0.35, 0.15])
                text = " ".join(rng.choice(WORDS["abc"[y]].split(), size=5))
                rows.append({"text": text + " movie", "labels": ["pos", "neg", "plot"][y]})
            elif kind == "multilabel":
                labs = [n for n, p in (("a", 0.5), ("b", 0.3), ("c", 0.15)) if rng.random() < p]
                words = [w for lab in labs for w in rng.choice(WORDS[lab].split(), size=3)] or ["nothing"]
                rows.append({"text": " ".join(words), "labels": labs})
            else:
                cells, words = {}, []
                for asp in ASPECTS:
                    r = rng.random()
                    pol = "positive" if r < 0.35 else "negative" if r < 0.55 else "absent"
                    cells[asp] = pol
                    if pol != "absent":
                        words += [asp, "good" if pol == "positive" else "bad"]
                rows.append({"text": " ".join(words) or "the place", "aspects": cells})
        with open(root / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    if kind == "multilabel":
        (root / "labels.txt").write_text("a\nb\nc\n")
    return root


def tiny_recipe(kind: str, data: Path, encoder: Path, output: Path, **sections) -> dict:
    """A recipe mapping for the tiny encoder: max_length 16, 2 epochs, batch 8."""
    loss = "bce" if kind in ("binary", "multilabel") else "cross_entropy"
    recipe = {
        "task": {"kind": kind},
        "data": {"path": str(data), "max_length": 16},
        "model": {"name": str(encoder), "pooling": "mean", "dropout": 0.0},
        "loss": {loss: {"weight": 1.0}},
        "optim": {"lr": 3.0e-3, "warmup": 0.0},
        "train": {"epochs": 2, "batch_size": 8, "seed": 13},
        "early_stopping": {"metric": "macro_f1", "patience": 0},
        "output": str(output),
    }
    for key, value in sections.items():
        recipe[key] = value
    return recipe
