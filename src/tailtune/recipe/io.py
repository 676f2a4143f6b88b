"""Recipe file I/O: read a YAML file safely, validate a mapping, write the fully resolved recipe.

Relations:
    :func:`load_recipe` = :func:`read_recipe_file` + :func:`~tailtune.recipe.overrides.apply_overrides`
    + :func:`recipe_from_dict`; :func:`resolved_recipe_dict` is what a run writes to ``recipe.yaml``
    (loading that file again gives an equal recipe).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tailtune import __version__
from tailtune.errors import RecipeError
from tailtune.recipe.messages import raise_validation
from tailtune.recipe.overrides import Override, apply_overrides, yaml_load
from tailtune.recipe.schema import Recipe
from tailtune.recipe.validation import check_losses

__all__ = ["as_recipe", "dump_recipe_yaml", "load_recipe", "read_recipe_file", "recipe_from_dict",
           "resolved_recipe_dict"]


def recipe_from_dict(data: Mapping[str, Any] | None, *, source: str = "recipe", check_registry: bool = True) -> Recipe:
    """Validate a recipe mapping; raise one :class:`RecipeError` listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RecipeError(
            f"{source}: the recipe must be a mapping of sections (task:, data:, model:, ...), "
            f"got {type(data).__name__}"
        )
    try:
        recipe = Recipe.model_validate(dict(data))
    except ValidationError as exc:
        raise_validation(exc, source)
    if check_registry:
        check_losses(recipe, source=source)
    return recipe


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: ``line L, column C: not valid YAML (problem)`` (PyYAML's own
    text spans lines and quotes the source with a caret)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}not valid YAML ({problem})"


def read_recipe_file(path: str | os.PathLike) -> dict[str, Any]:
    """Safely load a recipe file (``yaml.SafeLoader`` + YAML 1.2 floats such as ``1e-5``); missing files and YAML syntax errors become RecipeError."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found. Fix: check the path (or use a packaged preset: tailtune train --preset NAME)")
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        raise RecipeError(f"{path}: {yaml_error_text(exc)}. Fix: correct the syntax there") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}). Fix: save the recipe as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({exc}). Fix: correct the syntax") from None
    except OSError as exc:  # unreadable: permissions, a vanished network file
        raise RecipeError(f"{path}: cannot read the recipe ({exc.strerror or exc}). Fix: check the file's "
                          "permissions") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise RecipeError(f"{path}: the recipe must be a mapping of sections (task:, data:, ...), not a {type(data).__name__}")
    return dict(data)


def load_recipe(path: str | os.PathLike, overrides: Iterable[Override] = ()) -> Recipe:
    """Read, override and validate a recipe file.

    ``overrides`` are ``"dotted.path=value"`` strings (YAML-typed values), ``"~dotted.path"`` deletions
    or ``(path, value)`` tuples, applied in order before validation (see
    :mod:`tailtune.recipe.overrides`). Relative ``data.path``/``output`` are kept as written and
    resolved against the working directory by the trainer.

    Raises:
        RecipeError: unreadable file, bad YAML, or any invalid field (all listed, each with its
            dotted path, the value and the fix).
    """
    data = read_recipe_file(path)
    data = apply_overrides(data, overrides)
    return recipe_from_dict(data, source=str(path))


def resolved_recipe_dict(recipe: Recipe) -> dict[str, Any]:
    """The fully resolved recipe (every default filled in, plus ``tailtune_version``), JSON/YAML-safe.

    A run writes ``yaml.safe_dump(resolved_recipe_dict(recipe), sort_keys=False)`` to ``recipe.yaml``;
    loading it back gives an equal :class:`Recipe`.
    """
    out = recipe.model_dump(mode="json")
    for part in out["loss"].values():
        if part.get("type") is None:
            part.pop("type", None)
    out["tailtune_version"] = __version__
    return out


def dump_recipe_yaml(recipe: Recipe) -> str:
    """``resolved_recipe_dict`` as YAML text (sections in the documented order)."""
    return yaml.safe_dump(resolved_recipe_dict(recipe), sort_keys=False, allow_unicode=True)




def as_recipe(recipe: Recipe | Mapping[str, Any], *, source: str = "recipe") -> Recipe:
    """A :class:`Recipe` from a Recipe (returned as is) or a plain mapping (validated)."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        return recipe_from_dict(recipe, source=source)
    raise TypeError(f"recipe must be a tailtune Recipe or a mapping, got {type(recipe).__name__}")
