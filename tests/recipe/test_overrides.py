"""--set overrides and the common flags."""

from __future__ import annotations

import pytest

from tailtune.errors import RecipeError
from tailtune.recipe import recipe_from_dict
from tailtune.recipe.overrides import COMMON_FLAGS, apply_overrides, flag_overrides, parse_override


def test_values_are_yaml_typed():
    out = apply_overrides(
        {},
        [
            "loss.focal.gamma=1.0",
            "train.epochs=3",
            "train.precision=bf16",
            "model.freeze_embeddings=true",
            "model.projection_dim=null",
            "task.hierarchy={wheat: grain}",
            "task.labels=[ham, spam]",
            "output=runs/a=b",
        ],
    )
    assert out["loss"]["focal"]["gamma"] == 1.0 and isinstance(out["train"]["epochs"], int)
    assert out["train"]["precision"] == "bf16" and out["model"]["freeze_embeddings"] is True
    assert out["model"]["projection_dim"] is None
    assert out["task"] == {"hierarchy": {"wheat": "grain"}, "labels": ["ham", "spam"]}
    assert out["output"] == "runs/a=b"  # only the first '=' splits


def test_input_is_not_mutated_and_order_matters():
    base = {"optim": {"lr": 3e-5}}
    out = apply_overrides(base, ["optim.lr=1e-4", "optim.lr=2e-4"])
    assert base == {"optim": {"lr": 3e-5}} and out["optim"]["lr"] == 2e-4


def test_delete_and_loss_shorthand():
    out = apply_overrides({"loss": "ce"}, ["loss.supcon.weight=0.3", "~loss.ce"])
    assert out["loss"] == {"supcon": {"weight": 0.3}}
    assert apply_overrides({}, ["~loss.ce"]) == {}
    assert apply_overrides({}, [("loss", "focal")])["loss"] == {"focal": {}}


@pytest.mark.parametrize(
    ("item", "pattern"),
    [
        ("optim.lr", r"expected dotted\.path=value"),
        ("optim..lr=1", r"has an empty part"),
        ("=1", r"has an empty part"),
        ("~optim.lr=1", r"'~path' deletes a key and takes no value"),
        ("optim.lr=[1", r"the value is not valid YAML"),
        (3, r"expected a 'path=value' string"),
        (("a", 1, 2), r"a tuple override is \(dotted_path, value\)"),
    ],
)
def test_malformed_overrides(item, pattern):
    with pytest.raises(RecipeError, match=pattern):
        parse_override(item)


def test_path_through_a_scalar_is_an_error():
    with pytest.raises(RecipeError, match=r"output is 'runs/x', not a mapping, so it has no field 'dir'"):
        apply_overrides({"output": "runs/x"}, ["output.dir=y"])


def test_common_flags():
    assert set(COMMON_FLAGS) >= {"--learning-rate", "--epochs", "--bf16", "--focal-gamma", "--batch-size",
                                  "--seed", "--output"}
    recipe = {"loss": {"focal": {"weight": 0.7}, "aux": {"type": "focal", "weight": 0.3}, "supcon": {}}}
    got = flag_overrides(recipe, learning_rate=1e-5, epochs=2, batch_size=8, seed=7, bf16=True,
                         focal_gamma=0.5, output="runs/o")
    assert got == [
        ("optim.lr", 1e-5),
        ("train.epochs", 2),
        ("train.batch_size", 8),
        ("train.seed", 7),
        ("train.precision", "bf16"),
        ("loss.focal.gamma", 0.5),
        ("loss.aux.gamma", 0.5),
        ("output", "runs/o"),
    ]
    r = recipe_from_dict(apply_overrides(recipe, got), check_registry=False)
    assert r.loss["aux"].params == {"gamma": 0.5} and r.train.precision == "bf16" and r.optim.lr == 1e-5
    assert flag_overrides(recipe) == []


def test_focal_gamma_flag_needs_a_focal_part():
    with pytest.raises(RecipeError, match=r"--focal-gamma: the recipe has no focal loss part"):
        flag_overrides({"loss": "ce"}, focal_gamma=1.0)
    with pytest.raises(RecipeError, match=r"--focal-gamma"):
        flag_overrides(None, focal_gamma=1.0)


@pytest.mark.parametrize("raw, value", [("|", "|"), ("#", "#"), ("-", "-"), (">", ">"), ("run #3", "run #3"),
                                        ("null", None), ("~", None), ('""', ""), ('"a" #c', "a"), ("[a, b]", ["a", "b"])])
def test_a_value_yaml_would_read_as_syntax_stays_the_text_typed(raw, value):
    """Before: `--set data.label_sep='|'` (the shell passes `|`) became '' (a YAML block scalar) and was
    refused as "label_sep must be a non-empty string (e.g. '|')"; `=#` became None (a comment), so
    the separator was silently unset."""
    assert parse_override(f"data.label_sep={raw}")[1] == value
