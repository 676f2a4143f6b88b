"""Recipe schema: defaults, validation errors (field path, value, fix, did-you-mean), presets.

The recipes in ``examples/`` are tested in ``test_examples.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tailtune.data import TaskSpec
from tailtune.errors import RecipeError
from tailtune.recipe import (
    Recipe,
    available_presets,
    dump_recipe_yaml,
    load_preset,
    load_recipe,
    recipe_from_dict,
    resolved_recipe_dict,
    validate_against_task,
)

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_defaults_are_sensible():
    r = Recipe()
    assert list(r.loss) == ["ce"] and r.loss["ce"].weight == 1.0
    assert r.model.pooling == "mean" and r.model.trust_remote_code is False
    assert 0 < r.optim.lr <= 1e-4 and r.optim.warmup == 0.06
    assert r.train.precision == "fp32" and r.train.seed == 13
    assert r.train.eval_batch_size == 2 * r.train.batch_size
    assert r.early_stopping.metric == "macro_f1" and r.early_stopping.greater_is_better
    assert r.weighting.scheme == "uniform" and r.sampler == "none"


def test_design_sketch_loads(tmp_path):
    path = _write(
        tmp_path,
        """
task: {kind: multilabel, hierarchy: {praising violence: violent content}}
data: {path: ../shared/data/reuters21578_modapte, text: text, labels: labels}
model: {name: all-MiniLM-L6-v2, pooling: mean, dropout: 0.1, freeze_layers: 0, projection_dim: 128}
loss:
  focal:  {weight: 0.7, gamma: 1.0}
  supcon: {weight: 0.3, temperature: 0.1}
weighting: {scheme: effective_number, cap: 3.0, overrides: {earn: 1.0}}
sampler: none
optim: {lr: 3.0e-5, weight_decay: 0.01, warmup: 0.06, schedule: linear}
train: {epochs: 10, batch_size: 16, grad_accum: 2, precision: bf16, seed: 13}
early_stopping: {metric: macro_f1, patience: 3}
output: runs/reuters-focal-supcon
""",
    )
    r = load_recipe(path)
    assert r.task.hierarchy == {"praising violence": "violent content"}
    assert r.loss["focal"].params == {"gamma": 1.0} and r.loss["supcon"].weight == 0.3
    assert r.train.effective_batch_size == 32
    assert r.output == "runs/reuters-focal-supcon"


@pytest.mark.parametrize("given, canonical", [
    ({"start": 3}, {"schedule": "constant", "start": 3.0}),
    ({"start": 3, "end": 1}, {"schedule": "linear", "start": 3.0, "end": 1.0}),
    ({"end": 1}, {"schedule": "linear", "start": 2.0, "end": 1.0}),  # start: the loss's default gamma
    ({"values": [3, 1], "milestones": [0.5]}, {"schedule": "step", "values": [3.0, 1.0], "milestones": [0.5]}),
    ({"schedule": "cosine", "start": 3, "end": 1}, {"schedule": "cosine", "start": 3.0, "end": 1.0}),
])
def test_gamma_schedule_has_one_type_and_one_default(given, canonical):
    """The recipe keeps the canonical mapping of the losses' GammaSchedule (no schedule type of its own)."""
    from tailtune.losses.focal import GammaSchedule

    stored = recipe_from_dict({"loss": {"focal": {"gamma": given}}}).loss["focal"].params["gamma"]
    assert stored == canonical
    assert GammaSchedule.from_spec(stored) == GammaSchedule.from_spec(given)


def test_resolved_dict_round_trips_through_yaml(tmp_path):
    r = recipe_from_dict({"task": {"kind": "multiclass"}, "loss": {"focal": {"gamma": {"start": 3, "end": 1.5}}}})
    resolved = resolved_recipe_dict(r)
    import tailtune

    assert resolved["tailtune_version"] == tailtune.__version__
    assert resolved["train"]["eval_batch_size"] == 64
    path = _write(tmp_path, dump_recipe_yaml(r))
    again = load_recipe(path)
    assert resolved_recipe_dict(again) == resolved
    step = recipe_from_dict({"loss": {"focal": {"gamma": {"schedule": "step", "values": [3, 1], "milestones": [0.5]}}}})
    assert step.loss["focal"].params["gamma"] == {"schedule": "step", "values": [3.0, 1.0], "milestones": [0.5]}
    assert yaml.safe_load(path.read_text())["loss"]["focal"]["gamma"] == {"schedule": "linear", "start": 3.0, "end": 1.5}


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    # PyYAML reads 3e-5 (no dot) as a string; the recipe still takes it as the number
    assert load_recipe(_write(tmp_path, "optim: {lr: 3e-5}")).optim.lr == pytest.approx(3e-5)


def test_loss_shorthands():
    assert recipe_from_dict({"task": "aspects"}).task.kind == "aspects"
    assert list(recipe_from_dict({"loss": "focal"}).loss) == ["focal"]
    assert list(recipe_from_dict({"loss": ["ce", "supcon"]}).loss) == ["ce", "supcon"]
    assert recipe_from_dict({"loss": {"ce": None}}).loss["ce"].weight == 1.0
    named = recipe_from_dict({"loss": {"main": {"type": "focal", "gamma": 0.5}}}).loss["main"]
    assert named.loss_type("main") == "focal" and named.params == {"gamma": 0.5}


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"optim": {"lr": -1e-5}}, r"optim\.lr = -1e-05: Input should be greater than 0\. Fix: use a value > 0"),
        ({"optim": {"lr": 0}}, r"optim\.lr = 0: .*greater than 0"),
        ({"optim": {"lr": float("nan")}}, r"optim\.lr = nan: .*finite"),
        ({"optim": {"lrr": 1e-5}}, r"optim\.lrr: unknown key \(did you mean 'lr'\?\)\. Fix: remove or rename it"),
        ({"optimizer": {"lr": 1e-5}}, r"optimizer: unknown key \(did you mean 'optim'\?\)"),
        ({"weighting": {"overides": {}}}, r"weighting\.overides: unknown key \(did you mean 'overrides'\?\)"),
        ({"train": {"precision": "bf61"}}, r"train\.precision = 'bf61': not allowed \(did you mean 'bf16'\?\)\. "
         r"Fix: use one of 'fp32', 'bf16' or 'fp16'"),
        ({"train": {"batch_size": 0}}, r"train\.batch_size = 0: .*Fix: use a value > 0"),
        ({"train": {"eval_batch_size": -2}}, r"train\.eval_batch_size = -2"),
        ({"train": {"grad_accum": 0}}, r"train\.grad_accum = 0"),
        ({"train": {"epochs": 2.5}}, r"train\.epochs = 2\.5: .*integer\. Fix: use a whole number"),
        ({"train": {"epochs": True}}, r"train\.epochs = True: expected a number, got a boolean"),
        ({"early_stopping": {"patience": -1}}, r"early_stopping\.patience = -1: .*Fix: use a value >= 0"),
        ({"early_stopping": {"metric": "macro-f1"}}, r"early_stopping\.metric = 'macro-f1': not allowed "
         r"\(did you mean 'macro_f1'\?\)"),
        ({"loss": {"focal": {"gamma": "two"}}}, r"loss\.focal: gamma = 'two': must be a number .* or a schedule"),
        ({"loss": {"focal": {"gamma": [1, 2]}}}, r"gamma = \[1, 2\]: must be a number"),
        ({"loss": {"focal": {"gamma": True}}}, r"gamma = True: must be a number"),
        # the schedule's rules are tailtune.losses.focal.GammaSchedule's (the one schedule type)
        ({"loss": {"focal": {"gamma": {"schedule": "linear", "start": 3.0}}}},
         r"gamma: a linear gamma schedule needs end= .*; a gamma schedule is"),
        ({"loss": {"focal": {"gamma": {"schedule": "exp", "start": 3.0}}}}, r"gamma: kind='exp' is not one of"),
        ({"loss": {"focal": {"gamma": {"schedule": "step", "values": [3, 1], "milestones": [0.5, 0.7]}}}},
         r"gamma: a step gamma schedule needs len\(values\) == len\(milestones\) \+ 1, got 2 values"),
        ({"loss": {"focal": {"gamma": {"schedule": "step", "values": [3, 1], "milestones": [1.5]}}}},
         r"gamma\.milestones\.0: Input should be less than 1"),
        ({"loss": {"focal": {"gamma": {"schedule": "linear", "start": 3, "end": 1, "ends": 2}}}},
         r"gamma\.ends: unknown key \(did you mean 'end'\?\)"),
        ({"loss": {"focal": {"weight": 0}, "supcon": {"weight": 0}}}, r"loss: the loss weights sum to 0; "
         r"give at least one part a positive weight \(weights: focal=0, supcon=0\)"),
        ({"loss": {"focal": {"weight": -0.5}}}, r"loss\.focal\.weight = -0\.5"),
        ({"loss": {}}, r"the loss has no parts"),
        ({"model": {"pooling": "max"}}, r"model\.pooling = 'max': not allowed\. Fix: use one of 'cls' or 'mean'"),
        ({"model": {"dropout": 1.0}}, r"model\.dropout = 1\.0: .*Fix: use a value < 1"),
        ({"model": {"freeze_layers": -1}}, r"model\.freeze_layers = -1"),
        ({"weighting": {"scheme": "effective"}}, r"weighting\.scheme = 'effective': not allowed "
         r"\(did you mean 'effective_number'\?\)"),
        ({"weighting": {"cap": 0.5}}, r"weighting\.cap = 0\.5: .*>= 1"),
        ({"weighting": {"overrides": {"earn": -1}}}, r"weighting\.overrides\.earn = -1"),
        ({"task": {"kind": "multi-label"}}, r"task\.kind = 'multi-label': not allowed \(did you mean 'multilabel'\?\)"),
        ({"task": {"kind": "binary", "hierarchy": {"a": "b"}}}, r"task: hierarchy is for kind 'multilabel' only"),
        ({"task": {"kind": "multiclass"}, "weighting": {"apply_to": "pos_weight"}},
         r"weighting\.apply_to 'pos_weight' is for binary/multilabel"),
        ({"sampler": "balanced"}, r"sampler = 'balanced': not allowed \(did you mean 'class_balanced'\?\)"),
        ({"data": {"val_fraction": 1.5}}, r"data\.val_fraction = 1\.5: .*< 1"),
    ],
)
def test_validation_errors_name_field_value_and_fix(data, pattern):
    with pytest.raises(RecipeError, match=pattern):
        recipe_from_dict(data, source="r.yaml")


def test_every_problem_is_listed_in_one_error():
    with pytest.raises(RecipeError, match=r"r\.yaml: 2 problems:\n  - optim\.lr = -1\.0.*\n  - train\.epochs = 0"):
        recipe_from_dict({"optim": {"lr": -1.0}, "train": {"epochs": 0}}, source="r.yaml")


def test_file_errors(tmp_path):
    with pytest.raises(RecipeError, match=r"nope\.yaml: recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match=r"recipe\.yaml: line 2, column \d+: not valid YAML"):
        load_recipe(_write(tmp_path, "optim:\n\tlr: 1\n"))
    with pytest.raises(RecipeError, match=r"must be a mapping of sections"):
        load_recipe(_write(tmp_path, "- a\n- b\n"))
    assert load_recipe(_write(tmp_path, "")).loss["ce"].weight == 1.0


def test_load_recipe_applies_overrides_before_validation(tmp_path):
    path = _write(tmp_path, "loss: {focal: {gamma: 2.0}}\noptim: {lr: 3.0e-5}\n")
    r = load_recipe(path, ["loss.focal.gamma=1.0", "optim.lr=1e-5", ("output", "runs/x"), "train.precision=bf16"])
    assert r.loss["focal"].params["gamma"] == 1.0 and r.optim.lr == 1e-5
    assert r.output == "runs/x" and r.train.precision == "bf16"
    with pytest.raises(RecipeError, match=r"optim\.lr = -2\.0"):
        load_recipe(path, ["optim.lr=-2.0"])
    with pytest.raises(RecipeError, match=r"expected dotted\.path=value"):
        load_recipe(path, ["optim.lr"])


# ------------------------------------------------------------------------------- task checks
TASKS = {
    "multiclass": TaskSpec(kind="multiclass", labels=["anger", "joy", "optimism", "sadness"]),
    "multilabel": TaskSpec(kind="multilabel", labels=["grain", "wheat", "earn"]),
    "aspects": TaskSpec(kind="aspects", labels=["food", "price"], polarities=["positive", "negative"]),
    "binary": TaskSpec(kind="binary", labels=["ham", "spam"]),
}


def test_validate_against_task_accepts_matching_recipe():
    r = recipe_from_dict(
        {"task": {"kind": "multilabel", "hierarchy": {"wheat": "grain"}}, "weighting": {"overrides": {"earn": 1.0}}},
        check_registry=False,
    )
    validate_against_task(r, TASKS["multilabel"])
    validate_against_task(recipe_from_dict({"weighting": {"overrides": {"absent": 0.5}}}), TASKS["aspects"])


@pytest.mark.parametrize(
    ("data", "task", "pattern"),
    [
        ({"weighting": {"overrides": {"optimsm": 2.0}}}, "multiclass",
         r"weighting\.overrides\.optimsm: 'optimsm' is not a label \(did you mean 'optimism'\?\)\. Fix: use one of anger"),
        ({"weighting": {"overrides": {"food": 2.0}}}, "aspects",
         r"'food' names aspect cells, but the class weights are pooled.*Fix: set weighting.per_aspect: true"),
        ({"weighting": {"overrides": {"fod": 2.0}}}, "aspects",
         r"'fod' is not a aspect class \(polarity or 'absent'\).*Fix: use one of positive, negative, absent"),
        ({"task": {"kind": "multiclass"}}, "binary", r"task\.kind = 'multiclass' but the data is a 'binary' task"),
        ({"task": {"labels": ["joy", "anger"]}}, "multiclass", r"task\.labels = .* differ from the data's labels"),
        ({"task": {"polarities": ["negative", "positive"]}}, "aspects", r"task\.polarities = .* differ from the data's"),
        ({"task": {"hierarchy": {"whaet": "grain"}}}, "multilabel",
         r"task\.hierarchy names 'whaet', which is not a label \(did you mean 'wheat'\?\)"),
        ({"task": {"hierarchy": {"wheat": "grain"}}}, "multiclass", r"task\.hierarchy is for multilabel tasks"),
        ({"weighting": {"apply_to": "pos_weight"}}, "aspects", r"apply_to = 'pos_weight' is for binary/multilabel"),
    ],
)
def test_validate_against_task_errors(data, task, pattern):
    r = recipe_from_dict(data, check_registry=False)
    with pytest.raises(RecipeError, match=pattern):
        validate_against_task(r, TASKS[task])


# ---------------------------------------------------------------------------- loss registry
def test_unknown_loss_name_is_an_error_with_suggestion():
    with pytest.raises(RecipeError, match=r"loss\.focl = 'focl': not a registered loss \(did you mean 'focal'\?\)"):
        recipe_from_dict({"loss": {"focl": {"weight": 1.0}}})
    with pytest.raises(RecipeError, match=r"loss\.main\.type = 'nope': not a registered loss"):
        recipe_from_dict({"loss": {"main": {"type": "nope"}}})


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"loss": {"focal": {"gamma": 1.0, "gamm": 2.0}}},
         r"loss\.focal\.gamm: softmax_focal has no parameter 'gamm' \(did you mean 'gamma'\?\)"),
        ({"loss": {"focal": {"gamma": -1.0, "label_smoothing": 2.0}}}, r"loss\.focal \(softmax_focal\) .*label_smoothing"),
        ({"loss": {"supcon": {"temperature": 0}}}, r"loss\.supcon \(supcon\) \{'temperature': 0\}: .*temperature"),
        ({"loss": {"dice": {"kind": "binary"}}}, r"loss\.dice\.kind: set by the trainer"),
        ({"loss": {"focal": {"reduction": "sum"}}}, r"loss\.focal\.reduction: set by the trainer"),
        ({"loss": {"ldam": {"counts": [1, 2]}}}, r"loss\.ldam\.counts: set by the trainer"),
        ({"loss": {"focal": {"alpha": [1, 2, 3, 4]}}, "weighting": {"scheme": "inverse"}},
         r"loss\.focal\.alpha is set and weighting .* also fills 'alpha': class weights would be applied twice"),
        ({"loss": {"ce": {"weight": 1.0}}, "weighting": {"scheme": "inverse", "apply_to": "weight"}}, None),
        ({"loss": {"asl": {}}}, r"loss\.asl = 'asl': not available for multiclass tasks"),
    ],
)
def test_bad_loss_parameters_fail_at_load(data, pattern):
    if pattern is None:  # a part's `weight` is its share of the loss, not a class weight
        recipe_from_dict({"task": {"kind": "multiclass"}, **data})
        return
    with pytest.raises(RecipeError, match=pattern):
        recipe_from_dict({"task": {"kind": "multiclass"}, **data})


def test_sigmoid_alpha_minus_one_against_weighting_into_alpha_names_the_contradiction():
    # alpha = -1 is "no alpha weighting" (losses.focal.NO_ALPHA), not a second set of class weights
    data = {"task": {"kind": "multilabel"}, "loss": {"focal": {"alpha": -1}},
            "weighting": {"scheme": "inverse", "apply_to": "alpha"}}
    with pytest.raises(RecipeError, match=r"loss\.focal\.alpha = -1 switches the alpha weighting off.*"
                                          r"Fix: remove loss\.focal\.alpha"):
        recipe_from_dict(data)
    data["weighting"]["apply_to"] = "auto"  # pos_weight: no contradiction
    recipe_from_dict(data)


def test_explicit_loss_hyperparameters_that_share_a_class_weight_name():
    # tversky's alpha/beta trade FP against FN; a focal alpha without class weighting is the user's choice
    recipe_from_dict({"task": {"kind": "multiclass"}, "loss": {"tversky": {"alpha": 0.3, "beta": 0.7}}})
    recipe_from_dict({"task": {"kind": "multilabel"}, "loss": {"focal": {"alpha": 0.25}}})


def test_data_needing_losses_are_checked_against_the_task():
    r = recipe_from_dict({"loss": {"ce": {"weight": 1.0}, "hierarchy": {"weight": 0.1}}}, check_registry=False)
    with pytest.raises(RecipeError, match=r"loss\.hierarchy \(hierarchy\) needs a label hierarchy"):
        validate_against_task(r, TASKS["multilabel"])
    spec = TaskSpec(kind="multilabel", labels=["grain", "wheat", "earn"], hierarchy={"wheat": "grain"})
    validate_against_task(r, spec)
    ldam = recipe_from_dict({"loss": {"ldam": {"max_margin": 0.5}}})
    validate_against_task(ldam, TASKS["multiclass"])
    bad = recipe_from_dict({"loss": {"ldam": {"max_margin": -1.0}}})  # needs counts: checked with the task
    with pytest.raises(RecipeError, match=r"loss\.ldam \(ldam\) \{'max_margin': -1\.0\}: max_margin=-1\.0 must be"):
        validate_against_task(bad, TASKS["multiclass"])
    la = recipe_from_dict({"loss": {"la": {"tau": -1.0}}})
    with pytest.raises(RecipeError, match=r"loss\.la \(logit_adjusted\) .*tau"):
        validate_against_task(la, TASKS["aspects"])


# ---------------------------------------------------------------------------------- presets
def test_presets_load_and_cover_screening_names():
    names = available_presets()
    for required in ("ce", "weighted-ce", "focal", "class-balanced", "label-smoothing", "supcon", "asl",
                     "logit-adjust", "demo"):
        assert required in names
    for name in names:
        assert isinstance(load_preset(name), Recipe)


def test_preset_knob_and_overrides():
    r = load_preset("focal:1", ["data.path=../shared/data/sms_spam", "task.kind=binary"])
    assert r.loss["focal"].params["gamma"] == 1.0 and r.name == "focal:1"
    assert r.data.path == "../shared/data/sms_spam" and r.task.kind == "binary"
    with pytest.raises(RecipeError, match=r"no such preset \(did you mean 'focal'\?\)"):
        load_preset("focla")
    with pytest.raises(RecipeError, match=r"preset 'ce' has no ':VALUE' knob"):
        load_preset("ce:2")


def test_demo_preset_is_cpu_friendly():
    r = load_preset("demo")
    assert r.task.kind == "multiclass" and "focal" in r.loss
    assert r.data.max_length <= 64 and r.train.epochs <= 2 and r.train.batch_size == 32
    assert r.train.precision == "fp32" and "MiniLM" in r.model.name


def test_python_yaml_tags_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = _write(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(RecipeError, match=r"not valid YAML"):
        load_recipe(path)
    assert not marker.exists()


def test_docs_cover_every_field():
    """docs/recipes.md documents every section and field of the schema (a new field needs a doc row)."""
    import re

    from pydantic import BaseModel

    text = (ROOT / "docs" / "recipes.md").read_text()
    sections = {m.group(1): m.start() for m in re.finditer(r"^### `(\w+)`", text, flags=re.M)}
    for name, field in Recipe.model_fields.items():
        assert name in sections, f"docs/recipes.md has no section for {name!r}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            start = sections[name]
            end = min([p for p in sections.values() if p > start], default=len(text))
            body = text[start:end]
            for sub in annotation.model_fields:
                assert f"| `{sub}` |" in body, f"docs/recipes.md: {name}.{sub} is not documented"
