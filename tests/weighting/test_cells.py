"""Override keys of per-cell (aspect x class) weights: a cell, an aspect, a class; the most specific wins."""

from __future__ import annotations

import pytest

from tailtune.weighting.cells import cell_key, cell_keys, cell_overrides, parse_cell_key

ASPECTS = ["food", "menu", "FOOD#QUALITY"]
CLASSES = ["positive", "negative", "absent"]


def test_cell_names_are_aspect_major():
    assert cell_key("food", "negative") == "food#negative"
    assert cell_keys(["a", "b"], ["x", "absent"]) == ["a#x", "a#absent", "b#x", "b#absent"]


@pytest.mark.parametrize(("key", "expected"), [
    ("food#negative", (0, 1)),
    ("menu", (1, None)),
    ("absent", (None, 2)),
    ("FOOD#QUALITY", (2, None)),           # an aspect whose name holds '#' is read whole first
    ("FOOD#QUALITY#negative", (2, 1)),     # then split at the last '#'
])
def test_keys_are_read_as_aspect_or_class_first(key, expected):
    assert parse_cell_key(key, ASPECTS, CLASSES) == expected


def test_the_most_specific_key_wins_whatever_the_order():
    for order in (["menu#negative", "menu", "negative"], ["negative", "menu", "menu#negative"]):
        values = {"menu#negative": 4.0, "menu": 1.5, "negative": 2.0}
        got = cell_overrides({k: values[k] for k in order}, ASPECTS, CLASSES)
        assert got[(1, 1)] == 4.0  # the cell
        assert got[(1, 0)] == got[(1, 2)] == 1.5  # the rest of the aspect, absent included
        assert got[(0, 1)] == got[(2, 1)] == 2.0  # the class elsewhere
        assert (0, 0) not in got


@pytest.mark.parametrize(("overrides", "match"), [
    ({"menu#negtive": 1.0}, r"'menu#negtive' names no aspect, class or cell \(did you mean 'menu#negative'\?\); use a cell"),
    ({"drinks": 1.0}, r"names no aspect, class or cell.*an aspect \(food, menu, FOOD#QUALITY\)"),
    ({"menu": -1.0}, r"overrides\['menu'\]=-1.0 must be a finite number >= 0"),
    ({"menu": float("inf")}, "finite number"),
])
def test_bad_keys_and_values_are_refused_with_the_valid_forms(overrides, match):
    with pytest.raises(ValueError, match=match):
        cell_overrides(overrides, ASPECTS, CLASSES)


def test_a_bare_key_that_is_both_an_aspect_and_a_class_is_ambiguous():
    with pytest.raises(ValueError, match="both an aspect and a class; write 'neutral#positive'"):
        parse_cell_key("neutral", ["neutral", "food"], CLASSES + ["neutral"])
