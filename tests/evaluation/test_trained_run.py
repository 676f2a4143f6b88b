"""On a real ``tailtune.training.train`` output (tiny encoder): tune, evaluate and predict agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tailtune.evaluation import evaluate_run, tune_run
from tailtune.evaluation.predictor import Predictor

WORDS = {"pos": "good great fine lovely", "neg": "bad awful poor dull", "plot": "plot story scene actor"}


def _write_data(root, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir()
    texts = {}
    for split, n in (("train", 64), ("validation", 32), ("test", 32)):
        rows = []
        for _ in range(n):
            y = ["pos", "neg", "plot"][rng.choice(3, p=[0.55, 0.3, 0.15])]
            rows.append({"text": " ".join(rng.choice(WORDS[y].split(), size=4)) + " movie", "labels": y})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        texts[split] = [r["text"] for r in rows]
    return texts


def test_trained_run_tune_evaluate_predict(tiny_encoder_dir, tmp_path):
    try:
        from tailtune.training import train
    except ImportError:  # pragma: no cover - the trainer is a sibling module
        pytest.skip("tailtune.training.train not available")
    texts = _write_data(tmp_path / "data")
    recipe = {
        "task": {"kind": "multiclass"},
        "data": {"path": str(tmp_path / "data"), "max_length": 16},
        "model": {"name": str(tiny_encoder_dir), "pooling": "mean", "dropout": 0.0},
        "loss": {"cross_entropy": {"weight": 1.0}},
        "optim": {"lr": 3.0e-3, "warmup": 0.0},
        "train": {"epochs": 1, "batch_size": 16, "seed": 13},
        "output": str(tmp_path / "run"),
    }
    run = train(recipe).run_dir
    summary = tune_run(run)
    assert summary["validation_tuned"] >= summary["validation_default"] - 1e-12
    predictor = Predictor.from_run_dir(run)
    assert predictor.max_length == 16  # the recipe's data.max_length, as in training
    with np.load(run / "predictions" / "test.npz") as f:
        np.testing.assert_allclose(predictor.predict_logits(texts["test"]), f["logits"], rtol=1e-3, atol=1e-3)
    entries = evaluate_run(run, split="test")
    assert entries["test_tuned"]["macro_f1"] == pytest.approx(summary["test_tuned"])
    assert len(predictor.predict(texts["test"][:3])) == 3
