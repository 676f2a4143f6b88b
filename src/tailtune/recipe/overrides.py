"""Command-line overrides of recipe fields: ``--set loss.focal.gamma=1.0`` and the common flags.

An override is ``dotted.path=value`` where ``value`` is parsed as YAML (``1.0`` is a float, ``true``
a bool, ``null`` None, ``[a, b]`` a list, ``{wheat: grain}`` a mapping, anything else a string), or
``~dotted.path`` to delete a key (``~loss.ce`` removes a loss part). Missing intermediate mappings are
created. Overrides are applied to the raw recipe mapping *before* validation, so every override is
validated exactly like a value written in the file.

Example:
    >>> apply_overrides({"optim": {"lr": 3e-5}}, ["optim.lr=1e-5", "train.epochs=2"])
    {'optim': {'lr': 1e-05}, 'train': {'epochs': 2}}
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from tailtune.errors import RecipeError

#: The common command-line flags and the recipe field each one sets.
COMMON_FLAGS: dict[str, str] = {
    "--learning-rate": "optim.lr",
    "--epochs": "train.epochs",
    "--batch-size": "train.batch_size",
    "--seed": "train.seed",
    "--bf16": "train.precision",  # sets "bf16"
    "--focal-gamma": "loss.<every focal part>.gamma",
    "--output": "output",
}

Override = str | tuple[str, Any]


class RecipeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-5``/``3E+2`` (no dot) as floats, as YAML 1.2 does.

    PyYAML follows YAML 1.1, where ``lr: 1e-5`` is the *string* ``"1e-5"``; a recipe means the number.
    Construction is otherwise exactly SafeLoader's (no Python objects).
    """


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text safely with :class:`RecipeLoader`."""
    return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 - RecipeLoader is a SafeLoader


def normalise_loss(value: Any) -> Any:
    """``loss: focal`` or ``loss: [focal, supcon]`` -> ``{focal: {}, ...}`` (weights default to 1)."""
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: {} for v in value}
    if isinstance(value, Mapping):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


_NULLS = ("null", "Null", "NULL", "~", "''", '""')


def _literal_if_swallowed(raw: str, value: Any) -> Any:
    """The raw text when YAML read an ordinary command-line value as syntax: a lone block-scalar or
    list indicator (``label_sep=|`` was ``''``, ``=-`` was ``[None]``) or a comment (``label_sep=#``
    was ``None``, ``name=run #3`` was ``'run'``); otherwise YAML's value."""
    text = raw.strip()
    if value in (None, "", [None]) and text not in _NULLS:
        return text
    if isinstance(value, str) and "#" in text and value != text and not any(q in text for q in "'\""):
        return text
    return value


def parse_override(item: Override) -> tuple[list[str], Any, bool]:
    """Split one override into ``(path parts, value, delete)``.

    ``item`` is ``"a.b=value"`` (value parsed as YAML), ``"~a.b"`` (delete) or a ``(path, value)``
    tuple whose value is used as is.
    """
    if isinstance(item, tuple):
        if len(item) != 2 or not isinstance(item[0], str):
            raise RecipeError(f"override {item!r}: a tuple override is (dotted_path, value)")
        path, value, delete = item[0], item[1], False
    elif isinstance(item, str):
        text = item.strip()
        if text.startswith("~"):
            path, value, delete = text[1:], None, True
            if "=" in path:
                raise RecipeError(f"override {item!r}: '~path' deletes a key and takes no value")
        else:
            if "=" not in text:
                raise RecipeError(
                    f"override {item!r}: expected dotted.path=value, e.g. loss.focal.gamma=1.0 "
                    "(or ~dotted.path to delete a key)"
                )
            path, raw = text.split("=", 1)
            delete = False
            try:
                value = _literal_if_swallowed(raw, yaml_load(raw)) if raw.strip() else None
            except yaml.YAMLError as exc:
                raise RecipeError(f"override {item!r}: the value is not valid YAML ({exc}); quote it") from exc
    else:
        raise RecipeError(f"override {item!r}: expected a 'path=value' string, got {type(item).__name__}")
    parts = [p.strip() for p in path.strip().split(".")]
    if not parts or any(not p for p in parts):
        raise RecipeError(f"override {item!r}: the path {path!r} has an empty part; write e.g. optim.lr=1e-5")
    return parts, value, delete


def apply_overrides(recipe: Mapping[str, Any], overrides: Iterable[Override] = ()) -> dict[str, Any]:
    """Return a deep copy of ``recipe`` with each override applied in order.

    Raises:
        RecipeError: a malformed override, or a path that runs through a non-mapping value.
    """
    out: dict[str, Any] = copy.deepcopy(dict(recipe)) if recipe is not None else {}
    if "loss" in out:
        out["loss"] = normalise_loss(out["loss"])
    for item in overrides:
        parts, value, delete = parse_override(item)
        node: Any = out
        for depth, key in enumerate(parts[:-1]):
            if key == "loss" and depth == 0 and key in node:
                node[key] = normalise_loss(node[key])
            child = node.get(key)
            if child is None:
                if delete:
                    break
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise RecipeError(
                    f"override {item!r}: {where} is {child!r}, not a mapping, so it has no field "
                    f"{parts[depth + 1]!r}; set {where}=... as a whole instead"
                )
            node = child
        else:
            last = parts[-1]
            if delete:
                node.pop(last, None)
            else:
                node[last] = normalise_loss(value) if parts == ["loss"] else value
    return out


def _is_focal(key: str, part: Any) -> bool:
    kind = part.get("type") if isinstance(part, Mapping) else None
    return "focal" in str(kind or key).lower()


def flag_overrides(
    recipe: Mapping[str, Any] | None = None,
    *,
    learning_rate: float | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    bf16: bool = False,
    focal_gamma: float | None = None,
    output: str | None = None,
) -> list[tuple[str, Any]]:
    """Turn the common flags into ``(dotted_path, value)`` overrides (``None``/``False`` = not given).

    ``--focal-gamma`` sets ``gamma`` on every loss part whose name or ``type`` contains ``focal``, so
    ``recipe`` (the raw mapping) is needed for it; a recipe without a focal part is a RecipeError
    rather than a silently added loss.

    Example:
        >>> flag_overrides(learning_rate=1e-5, bf16=True)
        [('optim.lr', 1e-05), ('train.precision', 'bf16')]
    """
    out: list[tuple[str, Any]] = []
    if learning_rate is not None:
        out.append(("optim.lr", learning_rate))
    if epochs is not None:
        out.append(("train.epochs", epochs))
    if batch_size is not None:
        out.append(("train.batch_size", batch_size))
    if seed is not None:
        out.append(("train.seed", seed))
    if bf16:
        out.append(("train.precision", "bf16"))
    if focal_gamma is not None:
        loss = normalise_loss((recipe or {}).get("loss")) or {}
        names = [k for k, v in loss.items() if _is_focal(k, v)] if isinstance(loss, Mapping) else []
        if not names:
            raise RecipeError(
                "--focal-gamma: the recipe has no focal loss part (loss: "
                f"{sorted(loss) if isinstance(loss, Mapping) else loss!r}). Fix: add one, e.g. "
                "--set loss.focal.weight=1.0, or drop the flag"
            )
        out.extend((f"loss.{name}.gamma", focal_gamma) for name in names)
    if output is not None:
        out.append(("output", str(output)))
    return out
