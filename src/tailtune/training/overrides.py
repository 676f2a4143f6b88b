"""Moved: :mod:`tailtune.recipe.overrides` (re-exported here for code written against the old path)."""

from tailtune.recipe.overrides import *  # noqa: F401,F403
from tailtune.recipe.overrides import Override, RecipeLoader, normalise_loss, parse_override, yaml_load  # noqa: F401
