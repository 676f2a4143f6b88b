"""Moved: the recipe layer is :mod:`tailtune.recipe` (this module re-exports its public names for
code written against the old path; new code imports from ``tailtune.recipe``)."""

from tailtune.recipe import *  # noqa: F401,F403
from tailtune.recipe import __all__  # noqa: F401
from tailtune.recipe.schema import *  # noqa: F401,F403
