"""tailtune.training: a recipe and its data -> Hugging Face Trainer -> run directory.

Public API:

* :func:`train` (``tailtune.training.pipeline``): lint -> train -> report, a complete run directory;
* :func:`prepare_run` / :func:`train_model` / :class:`PreparedRun` / :class:`RunResult` /
  :func:`find_checkpoint` (``tailtune.training.run``): the training step on its own;
* :func:`run_demo`, :func:`prepare_demo` (``tailtune.training.demo``); the callbacks in
  ``tailtune.training.callbacks``.

The recipe itself is :mod:`tailtune.recipe`. torch and transformers load on first use (so that
``import tailtune.training`` and the CLI start fast).
"""

from __future__ import annotations

__all__ = ["PreparedRun", "RunResult", "find_checkpoint", "prepare_demo", "prepare_run", "run_demo", "train",
           "train_model"]

_LAZY = {
    "PreparedRun": "tailtune.training.run",
    "RunResult": "tailtune.training.run",
    "find_checkpoint": "tailtune.training.checkpoints",
    "prepare_run": "tailtune.training.run",
    "train_model": "tailtune.training.run",
    "train": "tailtune.training.pipeline",
    "run_demo": "tailtune.training.demo",
    "prepare_demo": "tailtune.training.demo",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tailtune.training' has no attribute {name!r}")
