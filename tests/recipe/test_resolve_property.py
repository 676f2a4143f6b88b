"""Property: for random recipes x task kinds x class counts x overrides, every consumer of a recipe sees
the same class weights and loss arguments.

One resolution (``tailtune.recipe.resolve``) is built into losses by training (``build_loss``, what
``prepare_run`` does) and by screening (``prepare_recipe``); it is what the run directory records
(``resolved.json``), what the weight diagnostics report (from the recipe alone, and from the record),
what the lint cites (``weights_over_50x`` and the focal checks), what the report's "what actually trained"
table shows and what ``analyze`` lists per scheme; aspect tasks draw pooled and per-cell weights
(``weighting.per_aspect``, override keys ``aspect#class``, ``aspect``, ``class``).
The end-to-end link (a real run's ``resolved.json`` and checkpoint) is tested in
``tests/training/test_resolved_run.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tailtune.data import TaskSpec
from tailtune.diagnostics.analysis import training_weights
from tailtune.diagnostics.lint import MAX_WEIGHT_RATIO, lint_recipe
from tailtune.diagnostics.weights import recipe_class_weights, weights_from_resolved
from tailtune.errors import RecipeError
from tailtune.experiments.screen import RecipeSpec, prepare_recipe
from tailtune.recipe import recipe_from_dict, resolved_recipe_dict, validate_against_task
from tailtune.recipe.build import build_loss
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import resolve
from tailtune.reports.html import trained_table
from tailtune.weighting import SCHEMES

SOFTMAX_LOSSES = ["ce", "focal", "label_smoothing", "sentiment_focal", "logit_adjusted", "ldam", "supcon", "tversky", "dice"]
SIGMOID_LOSSES = ["ce", "focal", "label_smoothing", "sentiment_focal", "asl", "supcon", "tversky", "dice"]


@st.composite
def task_and_labels(draw):
    """A task and encoded training labels with the drawn class counts (every class present)."""
    kind = draw(st.sampled_from(["binary", "multiclass", "multilabel", "aspects"]))
    if kind == "binary":
        neg, pos = draw(st.integers(1, 400)), draw(st.integers(1, 400))
        return TaskSpec("binary", ["ham", "spam"]), np.array([0] * neg + [1] * pos)
    if kind == "multiclass":
        counts = draw(st.lists(st.integers(1, 400), min_size=2, max_size=5))
        labels = [f"c{i}" for i in range(len(counts))]
        return TaskSpec("multiclass", labels), np.repeat(np.arange(len(counts)), counts)
    if kind == "multilabel":
        n = draw(st.integers(4, 300))
        pos = draw(st.lists(st.integers(1, n - 1), min_size=2, max_size=4))
        y = np.zeros((n, len(pos)), dtype=np.float32)
        for j, p in enumerate(pos):
            y[:p, j] = 1.0
        hierarchy = {"l1": "l0"} if draw(st.booleans()) else None
        return TaskSpec("multilabel", [f"l{j}" for j in range(len(pos))], hierarchy=hierarchy), y
    polarities = ["positive", "negative", "neutral"][: draw(st.integers(2, 3))]
    aspects = ["food", "menu", "price"][: draw(st.integers(1, 3))]
    k = len(polarities) + 1
    n = draw(st.integers(k, 300))
    y = np.full((n, len(aspects)), k - 1)
    for a in range(len(aspects)):  # every cell may be empty but in the first aspect (pooled: every class present)
        counts = draw(st.lists(st.integers(0, n), min_size=k, max_size=k))
        column = np.repeat(np.arange(k), counts)[:n]
        y[: len(column), a] = column
    y[:k, 0] = np.arange(k)
    return TaskSpec("aspects", aspects, polarities=polarities), y


@st.composite
def recipes(draw, task: TaskSpec):
    info = task.kind_info
    classes = info.weight_classes(task)
    names = draw(st.lists(st.sampled_from(SIGMOID_LOSSES if info.sigmoid else SOFTMAX_LOSSES), min_size=1,
                          max_size=2, unique=True))
    loss = {}
    for name in names:
        part: dict = {"weight": 0.3 if name == "supcon" else 1.0}
        if name in ("focal", "sentiment_focal") and draw(st.booleans()):
            part["gamma"] = draw(st.sampled_from([0.0, 0.5, 2.0, 3.0, {"start": 3.0, "end": 1.0}]))
        loss[name] = part
    if "supcon" in loss and len(loss) == 1:
        loss["ce"] = {}
    keys = list(classes)
    if info.per_aspect:  # cells and whole aspects too (refused, by training and screening alike, when pooled)
        keys += [*task.labels, f"{task.labels[-1]}#{classes[0]}", f"{task.labels[0]}#absent"]
    overrides = draw(st.dictionaries(st.sampled_from(keys), st.sampled_from([0.5, 2.0, 3.0]), max_size=2))
    weighting = {
        "scheme": draw(st.sampled_from(SCHEMES)),
        "beta": draw(st.sampled_from([0.9, 0.99, 0.999])),
        "cap": draw(st.sampled_from([None, 2.0, 10.0])),
        "normalize": draw(st.booleans()),
        "apply_to": draw(st.sampled_from(["auto", "none", *info.class_weight_args])),
        "overrides": overrides,
    }
    if info.per_aspect:
        weighting["per_aspect"] = draw(st.booleans())
    return {
        "task": {"kind": task.kind},
        "loss": loss,
        "weighting": weighting,
        "sample_weighting": {"length": draw(st.booleans()), "confidence": draw(st.booleans())},
        "sampler": draw(st.sampled_from(["none", "class_balanced"])),
    }


def _module_args(module, part) -> None:
    """The built loss module holds exactly the recorded class weights and gamma."""
    if part.class_weight_arg is not None:
        built = getattr(module, part.class_weight_arg)
        assert built.dtype == torch.float32
        recorded = np.asarray(part.args[part.class_weight_arg], dtype=np.float64)  # (C,) or per aspect (A, C)
        assert tuple(built.shape) == recorded.shape
        assert built.reshape(-1).tolist() == pytest.approx(recorded.reshape(-1).tolist(), rel=1e-6)
    if "gamma" in part.args and hasattr(module, "gamma"):
        gamma = part.args["gamma"]
        expected = gamma if isinstance(gamma, float) else None
        if expected is not None:
            assert float(module.gamma) == expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_consumer_sees_the_same_weights_and_loss_arguments(data):
    task, labels = data.draw(task_and_labels())
    raw = data.draw(recipes(task))
    counts = ClassCounts.from_targets(task, labels)
    try:  # what prepare_run does: the recipe (with the registry check), the task, resolve, build
        recipe = recipe_from_dict(raw)
        validate_against_task(recipe, task)
        resolved = resolve(recipe, task, counts)
        loss = build_loss(resolved)
    except RecipeError as exc:
        # refused for training, so refused by screening too (the same first message: the same checks
        # in the same order; a drawn aspects recipe with a pooled 'food' override and apply_to 'weight'
        # on focal got the apply_to message from training and the override message from screening)
        with pytest.raises(RecipeError) as screened:
            prepare_recipe(RecipeSpec("drawn", raw, "drawn"), task, labels)
        assert str(exc).split(": ", 1)[-1] in str(screened.value)
        return
    cw = resolved.class_weights
    effective = None if cw is None else cw.effective

    # training: each part's module holds what was resolved (prepare_run = resolve + build_loss)
    for name, part in resolved.loss.items():
        _module_args(loss.losses[name], part)
        if part.class_weight_arg is not None:
            assert cw is not None and part.args[part.class_weight_arg] == cw.tensor_values()

    # the run directory's record (resolved.json) round-trips and gives the same weights
    record = json.loads(json.dumps(resolved.to_dict()))
    assert record["loss"] == {n: p.to_dict() for n, p in resolved.loss.items()}
    assert weights_from_resolved(record) == (None if effective is None else pytest.approx(effective))

    # per-cell weights (weighting.per_aspect): one row per aspect, keyed aspect#class, in the record too
    if cw is not None and cw.per_aspect:
        assert record["class_weights"]["per_cell"] == {
            a: {c: pytest.approx(effective[f"{a}#{c}"]) for c in cw.classes} for a in task.labels}
        assert np.asarray(record["class_weights"]["values"]).shape == (len(task.labels), len(cw.classes))
        assert record["counts"]["per_cell"] == {
            a: dict(zip(cw.classes, map(float, np.bincount(labels[:, i], minlength=len(cw.classes)))))
            for i, a in enumerate(task.labels)}
    # the report's "what actually trained" table reads the record
    table = trained_table(record)
    shown = {c["label"]: c["weight"] for c in table["classes"]}
    assert shown == (dict(record["class_weights"]["per_class"]) if cw is not None else {})

    # the weight diagnostics, from the recipe.yaml a run writes, without and with the task (with the
    # training ClassCounts: per-aspect counts; with the pooled per-class dict a run's history gives:
    # pooled weights only)
    yaml_form = resolved_recipe_dict(recipe)
    for given_task in (None, task):
        got = recipe_class_weights(yaml_form, task.kind, counts, task=given_task)
        assert got == (None if effective is None else pytest.approx(effective))
        pooled = recipe_class_weights(yaml_form, task.kind, counts.as_dict(), num_examples=counts.num_examples,
                                      task=given_task)
        per_cell = cw is not None and cw.per_aspect
        assert pooled == (None if effective is None or per_cell else pytest.approx(effective))

    # screening builds the same resolution (and the same tensors)
    prepared = prepare_recipe(RecipeSpec("drawn", raw, "drawn"), task, labels)
    assert prepared.resolved.to_dict() == resolved.to_dict()
    screened = prepared.build_loss()
    for name, part in resolved.loss.items():
        _module_args(screened.losses[name], part)

    # the lint cites these weights and these gammas
    findings = lint_recipe(recipe, class_counts=counts, num_examples=counts.num_examples, task=task)
    extreme = [f for f in findings if f.rule == "weights_over_50x" and "weights" in f.figures]
    if effective:
        vals = {k: v for k, v in effective.items() if v > 0}
        ratio = (max(vals.values()) if task.kind_info.sigmoid else max(vals.values()) / min(vals.values())) if vals else 0
        assert bool(extreme) == (ratio > MAX_WEIGHT_RATIO)
        for f in extreme:
            assert f.figures["weights"] == {k: round(v, 4) for k, v in effective.items()}
    else:
        assert not extreme
    for f in findings:
        if f.rule in ("reversed_focal", "gamma_weights_mild") and "gamma" in f.figures:
            gamma = resolved.loss[f.figures["part"]].args["gamma"]
            values = [gamma] if isinstance(gamma, float) else [v for k, v in gamma.items() if k in ("start", "end")]
            assert f.figures["gamma"] in values


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_analyze_lists_what_each_scheme_trains_with(data):
    task, labels = data.draw(task_and_labels())
    assume(len(set(np.asarray(labels).reshape(-1).tolist())) > 1 or task.kind == "multilabel")
    counts = ClassCounts.from_targets(task, labels)
    table = training_weights(task, counts)
    for scheme in SCHEMES:
        if scheme == "uniform":
            assert scheme not in table
            continue
        try:
            cw = resolve({"loss": {"ce": {}}, "weighting": {"scheme": scheme}}, task, counts).class_weights
        except RecipeError as exc:
            assert table[scheme]["error"] == str(exc)
            continue
        assert table[scheme]["per_class"] == cw.per_class and table[scheme]["pos_weight"] == cw.pos_weight
        if task.kind_info.per_aspect:  # and what weighting.per_aspect: true trains each cell with
            cells = resolve({"loss": {"ce": {}}, "weighting": {"scheme": scheme, "per_aspect": True}}, task, counts)
            assert table[scheme]["per_cell"] == cells.class_weights.per_class


# ------------------------------------------------------------------- bad input at the boundary
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def counts_like(draw, task: TaskSpec, labels):
    """Counts a caller may pass: good, a mapping, a class missing, bad values, no ``num_examples``, or
    something else entirely."""
    good = ClassCounts.from_targets(task, labels)
    names = list(good.names)
    shape = draw(st.sampled_from(["good", "mapping", "missing", "bad_value", "no_n", "bad_n", "other"]))
    if shape == "good":
        return good
    if shape == "mapping":
        return good.as_dict()
    if shape == "missing":
        keep = draw(st.lists(st.sampled_from(names), max_size=len(names) - 1, unique=True))
        return ClassCounts(tuple(keep), tuple(good.as_dict()[k] for k in keep), good.num_examples)
    if shape == "bad_value":
        values = list(good.values)
        values[draw(st.integers(0, len(values) - 1))] = draw(st.sampled_from([-1.0, float("nan"), float("inf")]))
        return ClassCounts(good.names, tuple(values), good.num_examples)
    if shape == "no_n":
        return ClassCounts(good.names, good.values, None)
    if shape == "bad_n":
        return ClassCounts(good.names, good.values, draw(st.sampled_from([-5, 2.5, "10", True])))
    return draw(st.sampled_from([[1, 2], "counts", 3, object()]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_resolve_refuses_bad_counts_with_a_recipe_error(data):
    """Whatever counts a caller passes, resolve either resolves or raises RecipeError naming ``counts``."""
    task, labels = data.draw(task_and_labels())
    raw = data.draw(recipes(task))
    if data.draw(st.booleans()):
        raw["loss"] = {"db": {}} if task.kind == "multilabel" else {"ldam": {}} if task.kind_info.softmax else raw["loss"]
    counts = data.draw(counts_like(task, labels))
    try:
        recipe = recipe_from_dict(raw)
    except RecipeError:
        return
    try:
        resolve(recipe, task, counts)
    except RecipeError as exc:
        assert "counts" in str(exc) or "weighting" in str(exc) or "loss." in str(exc), str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_resolve_of_a_mangled_recipe_raises_only_recipe_errors(data):
    """A recipe mapping with any JSON value in a weighting/loss/sampler field: RecipeError or a result,
    never a raw TypeError/KeyError from inside the recipe layer."""
    task, labels = data.draw(task_and_labels())
    raw = data.draw(recipes(task))
    section = data.draw(st.sampled_from(["weighting", "loss", "sample_weighting", "top"]))
    key = data.draw(st.sampled_from(["scheme", "beta", "cap", "normalize", "apply_to", "overrides", "gamma",
                                     "weight", "alpha", "type", "length", "min_weight", "sampler", "loss_balance"]))
    value = data.draw(_JSON)
    if section == "top":
        raw[key] = value
    elif section == "loss":
        part = next(iter(raw["loss"]))
        raw["loss"][part] = {**raw["loss"][part], key: value}
    else:
        raw[section] = {**raw[section], key: value}
    try:
        resolved = resolve(raw, task, ClassCounts.from_targets(task, labels))
        build_loss(resolved)
    except RecipeError:
        pass
