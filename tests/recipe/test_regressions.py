"""Two wrong results the recipe layer fixed, reproduced through the public entry points.

1. A binary recipe with ``weighting.overrides: {ham: 2.0}`` (the NEGATIVE class) trained with
   ``pos_weight`` 2.0 on the positive class while the weight diagnostics reported spam at its
   automatic ratio. Binary cross-entropy's class weights are one ratio, so the override now divides
   the positive class's ratio: training, the run directory and the diagnostics all say 3.0 / 2.0.
2. A multi-label recipe whose override names no label silently overwrote label 0 on the ``screen``
   path; it is now refused there as in training.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from tailtune.errors import RecipeError
from tailtune.utils import rundir

N_HAM, N_SPAM = 12, 4  # inverse pos_weight of spam: 12 / 4 = 3.0


def _write_binary(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = {"train": ["ham"] * N_HAM + ["spam"] * N_SPAM, "validation": ["ham", "spam"] * 3, "test": ["ham", "spam"] * 3}
    for split, labels in rows.items():
        with open(root / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for i, lab in enumerate(labels):
                words = "win cash prize now" if lab == "spam" else "see you at lunch"
                fh.write(json.dumps({"text": f"{words} {i}", "labels": lab}) + "\n")
    return root


def test_binary_override_on_the_negative_class_trains_what_the_diagnostics_report(tmp_path, tiny_encoder_dir):
    from tailtune.diagnostics import load_run
    from tailtune.recipe import recipe_from_dict
    from tailtune.training import train

    data = _write_binary(tmp_path / "data")
    run = tmp_path / "run"
    recipe = recipe_from_dict({
        "task": {"kind": "binary"},
        "data": {"path": str(data), "max_length": 16},
        "model": {"name": str(tiny_encoder_dir), "dropout": 0.0},
        "loss": {"ce": {}},
        "weighting": {"scheme": "inverse", "overrides": {"ham": 2.0}},
        "train": {"epochs": 1, "batch_size": 8},
        "early_stopping": {"patience": 0},
        "output": str(run),
    })
    train(recipe)
    (ckpt,) = sorted((run / rundir.CHECKPOINTS_DIR).glob("checkpoint-*"))
    state = load_file(str(ckpt / "model.safetensors"))
    trained = [v.tolist() for k, v in state.items() if k.endswith("pos_weight")]
    assert trained == [[pytest.approx(1.5)]]  # (12 / 4) / 2.0: the ham override scales the ratio down
    assert load_run(run).class_weights == {"spam": pytest.approx(1.5)}


def test_multilabel_unknown_override_is_refused_on_the_screen_path(tmp_path, tiny_encoder_dir):
    from tailtune.experiments.screen import HeadConfig, screen

    root = tmp_path / "ml"
    root.mkdir()
    for split, n in (("train", 24), ("validation", 12), ("test", 12)):
        with open(root / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(n):
                labs = (["a"] if i % 2 == 0 else []) + (["b"] if i % 3 == 0 else [])
                fh.write(json.dumps({"text": " ".join(labs) + f" text {i}", "labels": labs}) + "\n")
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("loss: {ce: {}}\nweighting: {scheme: inverse, overrides: {bb: 5.0}}\n")
    # the only recipe (so the baseline) cannot be screened: refused before any embedding, naming the typo
    with pytest.raises(RecipeError) as err:
        screen(root, recipes=[str(recipe)], seeds=1, model=str(tiny_encoder_dir), max_length=16,
               head=HeadConfig(hidden=0, max_epochs=2, patience=1), cache_dir=tmp_path / "cache",
               n_resamples=10, show_progress=False)
    assert "weighting.overrides.bb" in str(err.value) and "did you mean 'b'" in str(err.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_two_class_weighted_parts_get_their_own_tensors(tmp_path):
    """Two parts that both take the class weights got ONE shared tensor, and the Trainer's safetensors
    checkpoint refused the state ('Some tensors share memory'); each part now gets its own copy."""
    import numpy as np
    from safetensors.torch import save_file

    from tailtune.data import TaskSpec
    from tailtune.recipe import recipe_from_dict
    from tailtune.recipe.build import build_loss
    from tailtune.recipe.counts import ClassCounts
    from tailtune.recipe.resolve import resolve

    task = TaskSpec("aspects", ["food", "staff"], polarities=["positive", "negative"])
    labels = np.array([[0, 2], [1, 2], [2, 0], [0, 1], [2, 2]])
    recipe = recipe_from_dict({"loss": {"ce": {}, "label_smoothing": {"weight": 0.5}},
                               "weighting": {"scheme": "inverse", "apply_to": "weight"}})
    loss = build_loss(resolve(recipe, task, ClassCounts.from_targets(task, labels)))
    a, b = loss.losses["ce"].weight, loss.losses["label_smoothing"].weight
    assert a.tolist() == b.tolist() and a.data_ptr() != b.data_ptr()
    save_file(dict(loss.state_dict()), str(tmp_path / "loss.safetensors"))  # raised before
