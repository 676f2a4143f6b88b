"""tailtune.training: recipe -> Hugging Face Trainer -> run directory.

Public API: :func:`train` and :class:`RunResult` (``tailtune.training.run``), :func:`run_demo`
(``tailtune.training.demo``), the callbacks in ``tailtune.training.callbacks``; the recipe schema
lives in ``tailtune.recipe``. Heavy imports (torch, transformers) happen on first use, so
``import tailtune.recipe`` stays light.
"""

from __future__ import annotations

__all__ = ["RunResult", "train", "find_checkpoint", "run_demo", "prepare_demo"]

_LAZY = {
    "RunResult": "tailtune.training.run",
    "train": "tailtune.training.run",
    "find_checkpoint": "tailtune.training.run",
    "run_demo": "tailtune.training.demo",
    "prepare_demo": "tailtune.training.demo",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tailtune.training' has no attribute {name!r}")
