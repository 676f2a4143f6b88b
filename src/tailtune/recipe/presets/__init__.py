"""Packaged preset recipes (the YAML files beside this module) and how to load them.

A preset is a partial recipe: the loss, weighting and model settings of one remedy. The data, and
usually the task, come from the command line (``tailtune train --preset focal --set data.path=DIR``)
or from screening. ``demo.yaml`` is the embedded demo's recipe. ``NAME:VALUE`` sets the preset's one
knob (:data:`PRESET_KNOBS`): ``focal:1`` is the focal preset with ``loss.focal.gamma = 1``.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

import yaml

from tailtune.errors import RecipeError, did_you_mean
from tailtune.recipe.io import recipe_from_dict
from tailtune.recipe.overrides import Override, apply_overrides, yaml_load
from tailtune.recipe.schema import Recipe

__all__ = ["PRESET_KNOBS", "available_presets", "load_preset", "preset_dict"]

#: The one knob ``NAME:VALUE`` sets for each preset (``focal:1`` -> ``loss.focal.gamma=1``).
PRESET_KNOBS: dict[str, str] = {
    "focal": "loss.focal.gamma",
    "weighted-ce": "weighting.cap",
    "class-balanced": "weighting.beta",
    "label-smoothing": "loss.label_smoothing.label_smoothing",
    "supcon": "loss.supcon.weight",
    "logit-adjust": "loss.logit_adjusted.tau",
    "asl": "loss.asl.gamma_neg",
}


def _preset_dir():
    return resources.files(__name__)


def available_presets() -> list[str]:
    """Names of the packaged preset recipes (``ce``, ``focal``, ``weighted-ce``, ..., ``demo``)."""
    return sorted(p.name[: -len(".yaml")] for p in _preset_dir().iterdir() if p.name.endswith(".yaml"))


def preset_dict(name: str) -> dict[str, Any]:
    """The raw mapping of a preset; ``NAME:VALUE`` also sets the preset's knob (see PRESET_KNOBS)."""
    base, _, knob_value = str(name).partition(":")
    names = available_presets()
    if base not in names:
        raise RecipeError(
            f"preset {name!r}: no such preset{did_you_mean(base, names)}. "
            f"Fix: use one of {', '.join(names)}, or pass a recipe file path"
        )
    text = (_preset_dir() / f"{base}.yaml").read_text(encoding="utf-8")
    data = dict(yaml_load(text) or {})
    if knob_value:
        if base not in PRESET_KNOBS:
            raise RecipeError(
                f"preset {name!r}: preset {base!r} has no ':VALUE' knob. "
                f"Fix: use {base!r}, or one of {', '.join(f'{k}:VALUE' for k in sorted(PRESET_KNOBS))}"
            )
        try:
            value = yaml_load(knob_value)
        except yaml.YAMLError as exc:
            raise RecipeError(f"preset {name!r}: {knob_value!r} is not a value ({exc}). Fix: write NAME:NUMBER, e.g. focal:1") from None
        data = apply_overrides(data, [(PRESET_KNOBS[base], value)])
        data["name"] = str(name)
    return data


def load_preset(name: str, overrides: Iterable[Override] = ()) -> Recipe:
    """Load a packaged preset (``"focal"``, ``"focal:1"``, ``"weighted-ce"``, ``"demo"``, ...).

    ``overrides`` are applied on top (e.g. ``["data.path=../shared/data/sms_spam",
    "task.kind=binary"]``). The preset's loss names are checked against the registry like a file's.

    Example:
        >>> load_preset("focal:1").loss["focal"].params["gamma"]  # doctest: +SKIP
        1
    """
    data = apply_overrides(preset_dict(name), overrides)
    return recipe_from_dict(data, source=f"preset {name!r}")

