"""Tiny labelled data sets of every task kind for the experiments and CLI tests (text depends on the label)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = {"a": "good great fine lovely", "b": "bad awful poor dull", "c": "plot story scene actor"}


def write_data(root: Path, kind: str, *, n_train: int = 90, n_eval: int = 45, seed: int = 0) -> Path:
    """train/validation/test JSONL for ``kind``; a minority class/label/polarity in each."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        rows = []
        for _ in range(n):
            if kind == "binary":
                y = int(rng.random() < 0.25)
                rows.append({"text": " ".join(rng.choice(WORDS["b" if y else "a"].split(), 4)), "labels": y})
            elif kind == "multiclass":
                y = int(rng.choice(3, p=[0.5, 0.35, 0.15]))
                rows.append({"text": " ".join(rng.choice(WORDS["abc"[y]].split(), 4)), "labels": ["pos", "neg", "plot"][y]})
            elif kind == "multilabel":
                labs = [k for k, p in (("a", 0.5), ("b", 0.3), ("c", 0.15)) if rng.random() < p]
                words = [w for lab in labs for w in rng.choice(WORDS[lab].split(), 2)] or ["nothing"]
                rows.append({"text": " ".join(words), "labels": labs})
            else:
                cells, words = {}, []
                for asp in ("food", "service"):
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
