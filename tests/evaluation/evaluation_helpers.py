"""Helpers: run directories built in the test: tiny random encoder + save_classifier + task.json + predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tailtune.data import TaskSpec
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_json

TEXTS = [
    "the food was great and the staff friendly",
    "terrible service, never again",
    "prices are fine",
    "I loved the ambience but the menu was short",
    "meh",
    "an absolutely wonderful evening with friends and family at the new place downtown",
    "cold soup",
    "waiter forgot our order twice",
] * 5

TASKS = {
    "binary": TaskSpec(kind="binary", labels=["neg", "pos"]),
    "multiclass": TaskSpec(kind="multiclass", labels=["a", "b", "c"]),
    "multilabel": TaskSpec(kind="multilabel", labels=["p", "c1", "c2"], hierarchy={"c1": "p"}),
    "aspects": TaskSpec(kind="aspects", labels=["food", "price"], polarities=["positive", "negative"]),
}


def random_targets(task: TaskSpec, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if task.kind == "binary":
        return rng.integers(0, 2, size=n)
    if task.kind == "multiclass":
        return rng.integers(0, 3, size=n)
    if task.kind == "multilabel":
        return (rng.random((n, 3)) < 0.4).astype(np.float32)
    return rng.integers(0, 3, size=(n, 2))


def make_run(path: Path, encoder_dir: Path, task: TaskSpec, *, seed: int = 0, predictions: bool = True) -> Path:
    """A finished-looking run: model/ (save_classifier), task.json, predictions from the model itself."""
    import torch

    from tailtune.evaluation.predictor import Predictor
    from tailtune.evaluation.runs import open_run, save_predictions
    from tailtune.models import build_classifier, load_tokenizer, save_classifier

    torch.manual_seed(seed)
    model = build_classifier({"name": str(encoder_dir), "dropout": 0.0}, task)
    with torch.no_grad():
        model.head.weight.mul_(40.0)  # spread the logits of the random encoder a little
    save_classifier(model, load_tokenizer(str(encoder_dir)), path / rundir.MODEL_DIR)
    atomic_write_json(path / rundir.TASK, task.to_dict())
    if predictions:
        predictor = Predictor(open_run(path, need_model=True), model=model.eval(), tokenizer=load_tokenizer(str(encoder_dir)))
        for i, split in enumerate(("validation", "test")):
            texts = TEXTS if split == "validation" else TEXTS[::-1]
            logits = predictor.predict_logits(texts)
            save_predictions(path, split, logits, random_targets(task, len(texts), seed + i))
    return path
