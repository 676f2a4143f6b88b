"""tailtune.recipe: the recipe layer -- schema, validation, file I/O, overrides, presets.

Everything a recipe means is decided here:

* :mod:`~tailtune.recipe.schema` -- the pydantic :class:`Recipe` (every default, once);
* :mod:`~tailtune.recipe.io` -- :func:`load_recipe`, :func:`recipe_from_dict`,
  :func:`read_recipe_file`, :func:`resolved_recipe_dict`, :func:`dump_recipe_yaml`;
* :mod:`~tailtune.recipe.overrides` -- ``--set a.b=value`` and the common flags;
* :mod:`~tailtune.recipe.validation` -- :func:`check_losses`, :func:`validate_against_task`;
* :mod:`~tailtune.recipe.presets` -- :func:`load_preset`, :func:`available_presets`, :func:`preset_dict`.

Importing this package does not import torch.
"""

from __future__ import annotations

from tailtune.recipe.io import (
    as_recipe,
    dump_recipe_yaml,
    load_recipe,
    read_recipe_file,
    recipe_from_dict,
    resolved_recipe_dict,
)
from tailtune.recipe.overrides import COMMON_FLAGS, apply_overrides, flag_overrides
from tailtune.recipe.presets import PRESET_KNOBS, available_presets, load_preset, preset_dict
from tailtune.recipe.schema import Recipe
from tailtune.recipe.validation import check_losses, validate_against_task

__all__ = [
    "COMMON_FLAGS",
    "PRESET_KNOBS",
    "Recipe",
    "apply_overrides",
    "as_recipe",
    "available_presets",
    "check_losses",
    "dump_recipe_yaml",
    "flag_overrides",
    "load_preset",
    "load_recipe",
    "preset_dict",
    "read_recipe_file",
    "recipe_from_dict",
    "resolved_recipe_dict",
    "validate_against_task",
]
