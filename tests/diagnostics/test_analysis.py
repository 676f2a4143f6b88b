"""``analyze`` lists, per scheme, the class weights training would use (from the recipe layer)."""

from __future__ import annotations

import json

import pytest

from tailtune.diagnostics.analysis import analyze
from tailtune.recipe import recipe_from_dict
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import resolve


def test_analyze_weights_are_what_each_scheme_trains_with(tmp_path):
    for split, (n_ham, n_spam) in {"train": (30, 6), "validation": (5, 2)}.items():
        with open(tmp_path / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for i, lab in enumerate(["ham"] * n_ham + ["spam"] * n_spam):
                fh.write(json.dumps({"text": f"text {lab} {i}", "labels": lab}) + "\n")
    data, stats = analyze(tmp_path)
    table = stats["weights"]["training"]
    assert table["inverse"] == {"apply_to": "pos_weight", "per_class": {"ham": 1.0, "spam": 5.0},
                                "pos_weight": {"spam": 5.0}}
    counts = ClassCounts.from_targets(data.task, data.targets["train"])
    for scheme in ("sqrt_inverse", "effective_number"):
        cw = resolve(recipe_from_dict({"weighting": {"scheme": scheme}}), data.task, counts).class_weights
        assert table[scheme]["pos_weight"] == pytest.approx(cw.pos_weight)


@pytest.mark.parametrize("path", ["/no/such/tokenizer", "./missing-model", "models/a/b"])
def test_a_missing_tokenizer_folder_is_named_as_such(tmp_path, path):
    """Before: "could not load tokenizer '/no/such/tokenizer': Repo id must use alphanumeric chars ..."
    (the hub client's complaint about a path it took for a hub id)."""
    from tailtune.errors import DataError

    with open(tmp_path / "train.jsonl", "w", encoding="utf-8") as fh:
        fh.write("".join(json.dumps({"text": f"t {i}", "labels": "ab"[i % 2]}) + "\n" for i in range(20)))
    with pytest.raises(DataError, match=rf"--tokenizer {path}: no such folder; give a local model folder"):
        analyze(tmp_path, tokenizer=path)
