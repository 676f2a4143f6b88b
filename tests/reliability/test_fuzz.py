"""Property tests (hypothesis, bounded): the loaders and the recipe parser fail only with documented errors.

- ``tailtune.data.load_dataset`` on random bytes and on random near-valid CSV/TSV/JSONL/JSON text,
  for every task kind (and inferred): it loads, or raises a :class:`tailtune.errors.TailtuneError`.
- ``recipe_from_dict`` on random mappings built from the real section/field/loss names with wrong
  types and values, ``apply_overrides`` with random ``--set a.b=value`` strings, and ``load_recipe``
  on random YAML text: a valid :class:`Recipe`, or a :class:`tailtune.errors.RecipeError`. A recipe
  that validates round-trips through ``resolved_recipe_dict``.

Every example runs in its own temporary folder; ``max_examples`` keeps the module well under a minute
on the 2-core development machine.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailtune.errors import RecipeError, TailtuneError

KINDS = (None, "binary", "multiclass", "multilabel", "aspects")
FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
                database=None)


@pytest.fixture(scope="module", autouse=True)
def _quiet_private_datasets(tmp_path_factory):
    """A private ``datasets`` cache for this module and no progress bars."""
    import datasets

    old_cache = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = str(tmp_path_factory.mktemp("hf-datasets-cache-fuzz"))
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    yield
    datasets.config.HF_DATASETS_CACHE = old_cache
    if not was_disabled:
        datasets.enable_progress_bars()


def _load(files: dict[str, bytes], kind, **kwargs) -> None:
    """Write ``files`` into a fresh folder and load it; only TailtuneError may escape."""
    from tailtune.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, content in files.items():
            (root / name).write_bytes(content)
        source = root / next(iter(files)) if len(files) == 1 else root
        try:
            loaded = load_dataset(source, task=kind, **kwargs)
        except TailtuneError:
            return
        # a successful load honours the contract: text + encoded labels, targets aligned with splits
        for split, ds in loaded.splits.items():
            assert ds.column_names == ["text", "labels"], split
            assert len(ds) == len(loaded.targets[split]) > 0
            assert all(isinstance(t, str) and t.strip() for t in ds["text"][:50])


# ------------------------------------------------------------------------------------------ data
# Files are valid data of one kind (so some examples load and the deep paths run) with a few hostile
# mutations: a cell replaced by a wrong-typed/empty/NaN/markup value, a renamed column, a torn line,
# CRLF line ends, a byte-order mark.

HOSTILE_CELLS = st.sampled_from([
    "ham", "spam", "0", "1", "2", "-1", "1.5", "nan", "NaN", "", " ", "null", "a|b", "food#positive",
    "food#", "#x", "staff#negative", "[/b]", "True", "1e3", "\uff19", "ham\r", '"quoted"', "caf\u00e9", "\ufeffbom",
])
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_CELLS, st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["food", "staff", "price", "absent", ""]), inner, max_size=3)),
    max_leaves=8,
)
NAMES = ["ham", "spam", "eggs"]
POLS = ["positive", "negative", "absent"]


def _valid_label(kind: str, i: int):
    """A valid label of ``kind`` for row ``i`` (every class occurs at least every few rows)."""
    if kind == "binary":
        return NAMES[i % 2]
    if kind == "multiclass":
        return NAMES[i % 3]
    if kind == "multilabel":
        return [NAMES[j] for j in range(3) if (i >> j) & 1] or [NAMES[i % 3]]
    return {"food": POLS[i % 3], "staff": POLS[(i // 3) % 2]}


@st.composite
def records(draw) -> tuple[str, list[dict]]:
    """(kind the rows were made for, rows) with up to 4 hostile mutations."""
    kind = draw(st.sampled_from(KINDS[1:]))
    n = draw(st.sampled_from([20, 30, 12, 20, 30, 3, 1, 0]))  # hypothesis favours the first entries
    label_key = "aspects" if kind == "aspects" else "labels"
    rows = [{"text": f"text number {i} {NAMES[i % 3]}", label_key: _valid_label(kind, i)} for i in range(n)]
    for _ in range(draw(st.sampled_from([0, 1, 0, 2, 0, 1, 4])) if rows else 0):
        row = rows[draw(st.integers(0, len(rows) - 1))]
        what = draw(st.sampled_from(["text", label_key, "drop", "rename", "extra"]))
        if what == "drop":
            row.pop(draw(st.sampled_from(["text", label_key])), None)
        elif what == "rename":
            key = draw(st.sampled_from(["text", label_key]))
            if key in row:
                row[draw(st.sampled_from(["label", "sentence", "Text", "id"]))] = row.pop(key)
        elif what == "extra":
            row[draw(st.sampled_from(["id", "extra"]))] = draw(JSON_VALUES)
        elif what == "text":
            row[what] = draw(st.one_of(HOSTILE_CELLS, st.text(max_size=12), st.text(max_size=12), JSON_VALUES))
        else:
            row[what] = draw(JSON_VALUES)
    return kind, rows


def _cell(value, sep: str) -> str:
    if isinstance(value, list):
        text = "|".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = "|".join(f"{k}#{v}" for k, v in value.items() if v != "absent")
    else:
        text = "" if value is None else str(value)
    if any(c in text for c in (sep, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


@st.composite
def csv_files(draw) -> tuple[str, bytes, str]:
    """(file name, bytes, kind made for) of a CSV/TSV version of :func:`records` (lists joined by ``|``)."""
    kind, rows = draw(records())
    sep = draw(st.sampled_from([",", "\t"]))
    header = list(dict.fromkeys(k for r in rows for k in r)) or draw(st.lists(st.sampled_from(["text", "labels"]), max_size=2))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    body = sep.join(_cell(c, sep) for c in header) + newline
    body += "".join(sep.join(_cell(r.get(c), sep) for c in header) + newline for r in rows)
    data = body.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return ("train.tsv" if sep == "\t" else "train.csv"), data, kind


def _dumps(value) -> str:
    # allow_nan: Python writes NaN/Infinity, which real-world "JSON" files contain
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


@st.composite
def json_files(draw) -> tuple[str, bytes, str]:
    kind, rows = draw(records())
    if draw(st.booleans()):
        lines = [_dumps(r) for r in rows]
        if lines and not draw(st.integers(0, 4)):  # a torn or foreign line
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from([lines[i][: len(lines[i]) // 2], "[1, 2]", '"just a string"', "{}", ""]))
        newline = draw(st.sampled_from(["\n", "\r\n"]))
        end = newline if draw(st.booleans()) else ""
        return "train.jsonl", (newline.join(lines) + end).encode("utf-8"), kind
    return "train.json", _dumps(rows).encode("utf-8"), kind


def _task(draw_kind: str, made_for: str):
    return made_for if draw_kind == "same" else draw_kind


TASKS = st.sampled_from(["same", "same", None, "binary", "multiclass", "multilabel", "aspects"])


@settings(FUZZ, max_examples=30)
@given(data=st.binary(max_size=300), suffix=st.sampled_from(["csv", "tsv", "jsonl", "json"]), kind=st.sampled_from(KINDS))
def test_load_dataset_on_random_bytes(data, suffix, kind):
    _load({f"train.{suffix}": data}, kind)


@settings(FUZZ, max_examples=50)
@given(file=csv_files(), task=TASKS)
def test_load_dataset_on_near_valid_csv(file, task):
    name, data, kind = file
    sep = "|" if kind in ("multilabel", "aspects") else None
    _load({name: data}, _task(task, kind), label_sep=sep)


@settings(FUZZ, max_examples=50)
@given(file=json_files(), task=TASKS)
def test_load_dataset_on_near_valid_json(file, task):
    name, data, kind = file
    _load({name: data}, _task(task, kind))


@settings(FUZZ, max_examples=25)
@given(train=json_files(), validation=json_files(), task=TASKS,
       labels_txt=st.one_of(st.none(), st.lists(st.sampled_from([*NAMES, "ham", "", "[/b]", "0"]), max_size=4)))
def test_load_dataset_on_near_valid_split_folders(train, validation, task, labels_txt):
    files = {"train.jsonl": train[1], "validation.jsonl": validation[1]}
    if labels_txt is not None:
        files["labels.txt"] = "\n".join(labels_txt).encode("utf-8")
    _load(files, _task(task, train[2]))


# ------------------------------------------------------------------------------------------ recipes


def _recipe_fields() -> dict[str, list[str]]:
    from tailtune.recipe import Recipe

    out = {}
    for name, field in Recipe.model_fields.items():
        model = getattr(field.annotation, "model_fields", None)
        out[name] = sorted(model) if model else []
    return out


def _loss_names_and_params() -> tuple[list[str], list[str]]:
    import inspect

    from tailtune.losses import registry

    names = list(registry.available())
    params: set[str] = {"weight", "type", "gamma"}
    for name in names:
        for kind in ("binary", "multiclass", "multilabel", "aspects"):
            try:
                spec = registry.spec(name, kind=kind)
            except (KeyError, ValueError):
                continue
            params.update(p for p in inspect.signature(spec.factory).parameters if p != "self")
    return names, sorted(params)


FIELDS = _recipe_fields()
LOSS_NAMES, LOSS_PARAMS = _loss_names_and_params()

HOSTILE = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-10, 10), st.integers(min_value=2**62, max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10),
        st.sampled_from(["", "yes", "1e-5", "bf16", "macro_f1", "effective_number", "auto", "mean", "focal",
                         "multilabel", "linear", "step", "../data", "[/b]"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
GAMMA = st.one_of(HOSTILE, st.fixed_dictionaries({}, optional={
    "schedule": st.sampled_from(["constant", "linear", "cosine", "step", "exp"]),
    "start": HOSTILE, "end": HOSTILE, "values": HOSTILE, "milestones": HOSTILE,
    "bogus": HOSTILE,
}))


def _key(options: list[str]) -> st.SearchStrategy[str]:
    """Mostly real names, sometimes a typo (a letter dropped or doubled)."""
    real = st.sampled_from(options)
    typo = real.flatmap(lambda k: st.sampled_from([k[:-1] or "x", k + k[-1:], k.upper()]))
    return st.one_of(real, real, real, typo)


@st.composite
def loss_sections(draw):
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return draw(st.one_of(st.sampled_from(LOSS_NAMES), HOSTILE))
    if shape == 1:
        return draw(st.lists(st.sampled_from(LOSS_NAMES), max_size=3))
    parts = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(_key(LOSS_NAMES))
        params = {}
        for param in draw(st.lists(_key(LOSS_PARAMS), max_size=3)):
            params[param] = draw(GAMMA if param == "gamma" else HOSTILE)
        if draw(st.booleans()):
            params["weight"] = draw(st.one_of(st.floats(-1, 2), HOSTILE))
        parts[name] = params if draw(st.integers(0, 8)) else draw(HOSTILE)
    return parts


@st.composite
def recipe_dicts(draw) -> dict:
    recipe: dict = {}
    for section in draw(st.lists(_key(list(FIELDS)), max_size=6, unique=True)):
        fields = FIELDS.get(section, [])
        if section == "loss":
            recipe[section] = draw(loss_sections())
        elif fields and draw(st.integers(0, 6)):
            recipe[section] = {f: draw(HOSTILE) for f in draw(st.lists(_key(fields), max_size=4, unique=True))}
        else:
            recipe[section] = draw(HOSTILE)
    return recipe


BASES = [
    {"task": {"kind": "multiclass"}, "data": {"path": "data/", "max_length": 64},
     "loss": {"focal": {"weight": 1.0, "gamma": 2.0}}, "weighting": {"scheme": "effective_number", "cap": 3.0},
     "optim": {"lr": 3.0e-5}, "train": {"epochs": 2, "batch_size": 8}, "early_stopping": {"metric": "macro_f1"}},
    {"task": {"kind": "multilabel", "hierarchy": {"wheat": "grain"}},
     "loss": {"bce": {}, "supcon": {"weight": 0.3, "temperature": 0.1}}, "model": {"projection_dim": 64}},
    {"task": "binary", "loss": {"asl": {"gamma_neg": 4.0, "gamma_pos": 0.0}}, "weighting": {"scheme": "inverse"}},
    {"task": {"kind": "aspects"}, "loss": {"focal": {"gamma": {"schedule": "linear", "start": 3.0, "end": 1.0}}}},
    {"loss": "focal", "sampler": "class_balanced"},
    {"loss": ["ce", "supcon"], "loss_balance": "uncertainty"},
    {"loss": {"main": {"type": "logit_adjusted", "tau": 1.0}, "smooth": {"type": "label_smoothing", "weight": 0.5}}},
]


@st.composite
def mutated_recipes(draw) -> dict:
    """A valid recipe with up to 4 fields set to hostile values, deleted or misspelt."""
    import copy

    recipe = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 4]))):
        section = draw(st.one_of(st.sampled_from(list(FIELDS)), _key(list(FIELDS))))
        action = draw(st.sampled_from(["set", "set", "set", "delete", "whole"]))
        if action == "whole":
            recipe[section] = draw(HOSTILE)
            continue
        if section == "loss":
            parts = recipe.get("loss")
            if not isinstance(parts, dict) or not parts:
                recipe["loss"] = draw(loss_sections())
                continue
            part = draw(st.sampled_from(sorted(parts)))
            if not isinstance(parts[part], dict):
                parts[part] = {}
            param = draw(st.one_of(st.sampled_from(LOSS_PARAMS), _key(LOSS_PARAMS)))
            if action == "delete":
                parts[part].pop(param, None)
            else:
                parts[part][param] = draw(GAMMA if param == "gamma" else HOSTILE)
            continue
        fields = FIELDS.get(section)
        if not fields:  # a scalar section (name, sampler, output, ...)
            recipe[section] = draw(HOSTILE)
            continue
        node = recipe.get(section)
        if not isinstance(node, dict):
            node = recipe[section] = {}
        field = draw(st.one_of(st.sampled_from(fields), _key(fields)))
        if action == "delete":
            node.pop(field, None)
        else:
            node[field] = draw(HOSTILE)
    return recipe


def _check_recipe(raw) -> None:
    from tailtune.recipe import recipe_from_dict, resolved_recipe_dict

    try:
        recipe = recipe_from_dict(raw, source="fuzz.yaml")
    except RecipeError:
        return
    again = recipe_from_dict(resolved_recipe_dict(recipe), source="round-trip")
    assert again.model_dump(exclude={"tailtune_version"}) == recipe.model_dump(exclude={"tailtune_version"})


@settings(FUZZ, max_examples=250)
@given(raw=st.one_of(mutated_recipes(), mutated_recipes(), recipe_dicts()))
def test_recipe_from_dict_on_hostile_mappings(raw):
    _check_recipe(raw)


def _path_strategy() -> st.SearchStrategy[str]:
    section = _key(list(FIELDS))
    return st.one_of(
        section,
        st.tuples(section, st.one_of(_key(sorted({f for fs in FIELDS.values() for f in fs})), _key(LOSS_NAMES)))
        .map(".".join),
        st.tuples(st.just("loss"), _key(LOSS_NAMES), _key(LOSS_PARAMS)).map(".".join),
        st.text(max_size=12),
    )


OVERRIDE_VALUES = st.one_of(
    st.sampled_from(["1.0", "-1", "1e-5", "yes", "null", "[a, b]", "{x: 1}", ".nan", ".inf", "bf16", "", "'quoted",
                     "[unclosed", "{a: [1, 2}", "!!python/object:os.system", "&a [*a]", "~", "0x1F", "1_000"]),
    st.text(max_size=12),
)


@settings(FUZZ, max_examples=150)
@given(base=st.one_of(st.sampled_from(BASES), mutated_recipes(), recipe_dicts()),
       overrides=st.lists(st.one_of(
           st.tuples(_path_strategy(), OVERRIDE_VALUES).map(lambda pv: f"{pv[0]}={pv[1]}"),
           _path_strategy().map(lambda p: f"~{p}"),
           st.text(max_size=15),
       ), max_size=4))
def test_overrides_on_hostile_paths_and_values(base, overrides):
    from tailtune.recipe.overrides import apply_overrides

    try:
        raw = apply_overrides(base, overrides)
    except RecipeError:
        return
    _check_recipe(raw)


YAML_TEXT = st.one_of(
    st.text(max_size=80),
    st.lists(st.tuples(_path_strategy(), OVERRIDE_VALUES), max_size=6).map(
        lambda kvs: "".join(f"{k.split('.')[0]}: {v}\n" if "." not in k else f"{k.split('.')[0]}: {{{k.split('.', 1)[1]}: {v}}}\n"
                            for k, v in kvs)),
)


@settings(FUZZ, max_examples=100)
@given(text=YAML_TEXT, encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_load_recipe_on_random_yaml_files(text, encoding):
    from tailtune.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_bytes(text.encode(encoding, errors="replace"))
        try:
            load_recipe(path)
        except RecipeError:
            pass


GRID_VALUES = [None, True, -1, float("nan"), float("inf"), "x", [], [1, "a"], {"a": 1}, 2**70]
GRID_TASKS = {
    "binary": {"kind": "binary", "labels": ["neg", "pos"]},
    "multiclass": {"kind": "multiclass", "labels": ["a", "b", "c"]},
    "multilabel": {"kind": "multilabel", "labels": ["a", "b", "c"], "hierarchy": {"b": "a"}},
    "aspects": {"kind": "aspects", "labels": ["food", "staff"], "polarities": ["positive", "negative"]},
}


@pytest.mark.parametrize("kind", list(GRID_TASKS))
def test_every_loss_parameter_with_hostile_values(kind):
    """Exhaustive complement to the fuzzing: each parameter of each loss available for ``kind``, set to
    each hostile value, is validated against the task (the loss is built once): RecipeError or fine.
    (Found ``ignore_index: .inf`` escaping as OverflowError.)"""
    import inspect

    from tailtune.data import TaskSpec
    from tailtune.losses import registry
    from tailtune.recipe import recipe_from_dict, validate_against_task

    task = TaskSpec.from_dict(GRID_TASKS[kind])
    for name in registry.available(kind=kind):
        spec = registry.spec(name, kind=kind)
        for param in (p for p in inspect.signature(spec.factory).parameters if p != "self"):
            for value in GRID_VALUES:
                try:
                    recipe = recipe_from_dict({"task": {"kind": kind}, "loss": {name: {param: value}}})
                    validate_against_task(recipe, task)
                except RecipeError:
                    pass
