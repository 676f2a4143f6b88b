"""A candidate whose gain over the baseline is a shift of decision boundaries, which tuning the baseline recovers.

Both runs see the same evidence for the true class; the baseline's logits lean towards the frequent
classes (as a model trained with plain cross-entropy on skewed data does), the candidate's much less
(as a class-weighted one does). Tuning the baseline's biases on validation removes its lean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_run import COUNTS, LABELS, write_run

from tailtune.evaluation.runs import evaluate_run, tune_run

CE = {"task": {"kind": "multiclass"}, "loss": {"ce": {}}, "optim": {"lr": 5.0e-5},
      "train": {"epochs": 6, "batch_size": 32}, "early_stopping": {"metric": "macro_f1", "patience": 3}}
WEIGHTED_FOCAL = {**CE, "loss": {"focal": {"gamma": 2.0}}, "weighting": {"scheme": "inverse", "apply_to": "alpha"},
                  "optim": {"lr": 1.0e-4}}


def _logits(rng, y, lean: float) -> np.ndarray:
    share = np.asarray(COUNTS, float) / np.sum(COUNTS)
    z = rng.normal(0, 1.0, (len(y), len(share)))
    z[np.arange(len(y)), y] += 1.6
    return (z + lean * np.log(share)[None, :]).astype(np.float32)


def write_pair(root: Path, *, n: int = 1500, tune_baseline: bool = True, tune_candidate: bool = False,
               bootstrap: int = 0) -> tuple[Path, Path]:
    """``(candidate, baseline)`` run directories; the baseline (and optionally the candidate) tuned with
    ``tailtune tune`` (``bootstrap=0``: one exact fit on validation, the fast form for tests)."""
    share = np.asarray(COUNTS, float) / np.sum(COUNTS)
    runs = []
    for name, recipe, lean, seed in (("focal-weighted", WEIGHTED_FOCAL, 0.15, 13), ("ce", CE, 1.2, 13)):
        path = write_run(root / name, recipe=recipe, seed=seed, postprocess=False)
        for split, split_seed in (("validation", 1), ("test", 2)):
            y = np.random.default_rng(split_seed).choice(len(LABELS), size=n, p=share)
            noise = np.random.default_rng(100 + split_seed + (7 if name == "ce" else 0))
            np.savez(path / "predictions" / f"{split}.npz", logits=_logits(noise, y, lean), targets=y)
            if split == "validation":
                (path / "eval.json").unlink(missing_ok=True)  # write_run's figures are of other logits
            evaluate_run(path, split=split)
        runs.append(path)
    cand, base = runs
    if tune_baseline:
        tune_run(base, bootstrap=bootstrap)
    if tune_candidate:
        tune_run(cand, bootstrap=bootstrap)
    return cand, base


def untune(run: Path) -> None:
    """Remove what ``tailtune tune`` wrote (postprocess.json, the ``*_tuned`` entries of eval.json)."""
    import json

    (run / "postprocess.json").unlink(missing_ok=True)
    ev = json.loads((run / "eval.json").read_text())
    (run / "eval.json").write_text(json.dumps({k: v for k, v in ev.items() if not k.endswith("_tuned")}))
