"""Candidate -> recipe: a packaged preset, the shared settings and the candidate's own overrides.

The only module of ``tailtune.fit`` that talks to the recipe layer (presets, overrides, validation,
lint), so a change of that layer's import paths is one edit here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tailtune.data.kinds import task_kind
from tailtune.diagnostics.lint import lint_recipe
from tailtune.fit.candidates import Candidate, Setting
from tailtune.recipe import (
    apply_overrides,
    preset_dict,
    read_recipe_file,
    recipe_from_dict,
    resolved_recipe_dict,
)
from tailtune.utils.io import atomic_write_text

__all__ = ["candidate_recipe", "lint_candidate", "read_template", "run_recipe", "write_template"]


def _task_section(task) -> dict[str, Any]:
    d = {"kind": task.kind, "labels": list(task.labels)}
    if task_kind(task).per_aspect:
        d["polarities"] = list(task.polarities)
    if task.hierarchy:
        d["hierarchy"] = dict(task.hierarchy)
    return d


def candidate_recipe(cand: Candidate, shared: list[Setting], task, data_dir: Path) -> dict[str, Any]:
    """The candidate's recipe mapping (validated by the schema; no seed, no output yet).

    Raises:
        RecipeError: a rule produced an invalid recipe (a bug in the rules, never the user's data).
    """
    raw = preset_dict(cand.preset)
    raw.pop("output", None)
    overrides: list[tuple[str, Any]] = [(s.path, s.value) for s in shared]
    overrides += list(cand.overrides)
    overrides += [("name", cand.name), ("task", _task_section(task)),
                  ("data.path", str(data_dir)), ("data.text", "text"), ("data.labels", "labels")]
    raw = apply_overrides(raw, overrides)
    recipe = recipe_from_dict(raw, source=f"fit candidate {cand.name!r}")
    out = resolved_recipe_dict(recipe)
    out.pop("output", None)
    out.pop("tailtune_version", None)
    return out


def run_recipe(template: dict[str, Any], *, seed: int, output: Path, epochs: int, data_dir: Path):
    """The recipe of one training unit: the template with its seed, output, epochs and data folder."""
    raw = apply_overrides(template, [("train.seed", int(seed)), ("output", str(output)),
                                     ("train.epochs", int(epochs)), ("data.path", str(data_dir))])
    return recipe_from_dict(raw, source=f"fit unit {output}")


def read_template(path: Path) -> dict[str, Any]:
    """A candidate's recipe template as :func:`write_template` wrote it."""
    return read_recipe_file(path)


def write_template(template: dict[str, Any], path: Path) -> Path:
    """Write a candidate's recipe template as YAML (what ``screen`` reads and a user can re-run)."""
    return atomic_write_text(path, yaml.safe_dump(template, sort_keys=False, allow_unicode=True))


def lint_candidate(template: dict[str, Any], counts: dict[str, float], n_train: int, *, task=None) -> list[dict]:
    """The recipe lint's warnings and errors for a candidate (:func:`tailtune.diagnostics.lint.lint_recipe`
    with the training counts, as ``tailtune.training.train`` lints a run)."""
    findings = lint_recipe(template, class_counts=counts, num_examples=n_train, task=task)
    return [f.to_dict() for f in findings if f.is_problem]
