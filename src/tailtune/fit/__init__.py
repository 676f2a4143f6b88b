"""tailtune.fit: one command from a labelled data set to the best defensible model.

``tailtune.fit(data, output=...)`` (this package is callable) or ``tailtune fit DATA -o DIR``:
analyse the data, propose candidate recipes by rules (:mod:`tailtune.fit.candidates`), screen them
on cached embeddings, fine-tune the best over seeds within a time budget (:mod:`tailtune.fit.planner`),
decide with paired tests on validation (:mod:`tailtune.fit.decide`), finish the winner (ensemble,
bagged decision rule, temperature; :mod:`tailtune.fit.finish`) and score the test split once.
Guide: docs/fit.md.
"""

from __future__ import annotations

import sys
import types

__all__ = ["FitResult", "fit"]


def fit(*args, **kwargs):
    """See :func:`tailtune.fit.api.fit`."""
    # lazy: ``tailtune.fit`` and its light modules (planner, candidates, state, result) load without torch
    from tailtune.fit.api import fit as _fit

    return _fit(*args, **kwargs)


def __getattr__(name):
    if name == "FitResult":
        from tailtune.fit.result import FitResult

        return FitResult
    raise AttributeError(f"module 'tailtune.fit' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """``tailtune.fit`` is both this package and the function: ``tailtune.fit(data, output=...)``."""

    def __call__(self, *args, **kwargs):
        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
