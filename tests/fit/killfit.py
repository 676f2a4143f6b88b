"""Run ``tailtune fit`` in forked children and SIGKILL them at a chosen point (``test_fit_kill.py``).

A zygote process (``python killfit.py serve``) imports torch, transformers and tailtune once, then
forks one child per request line ``{"argv": [...], "kill": "<point>" | null, "out": path, "err": path}``
and answers ``{"exitcode": int, "timed_out": bool}`` (``tests/zygote.py``; ``-9``: the child was killed where asked). Kill points:

- ``replace:<file name>:<n>``: the n-th rename of an atomic write (or a model copy) onto that name,
  just before it happens (the complete temporary file is left behind);
- ``call:<module>:<function>:<n>``: the n-th call of that function, before it runs;
- ``step:<n>``: after the n-th optimiser step of this child (any training unit);
- ``int:<point>``: at that point raise ``KeyboardInterrupt`` instead (Ctrl-C: the fit exits 130).

Children run with one torch thread (deterministic CPU results) and the tiny-fit statistics settings
of ``conftest.FAST_STATS``.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path

import zygote
from zygote import serve as serve_requests

HERE = Path(__file__).resolve().parent


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _interrupt() -> None:
    raise KeyboardInterrupt


def _install(point: str) -> None:
    global _die
    if point.startswith("int:"):
        _die, point = _interrupt, point[4:]
    kind, _, rest = point.partition(":")
    if kind == "replace":
        name, n = rest.rsplit(":", 1)
        real, seen = os.replace, [0]

        def replace(src, dst, *a, **k):
            if Path(dst).name == name:
                seen[0] += 1
                if seen[0] == int(n):
                    _die()
            return real(src, dst, *a, **k)

        os.replace = replace
    elif kind == "call":
        module_name, func, n = rest.split(":")
        module = importlib.import_module(module_name)
        real, seen = getattr(module, func), [0]

        def wrapper(*a, **k):
            seen[0] += 1
            if seen[0] == int(n):
                _die()
            return real(*a, **k)

        setattr(module, func, wrapper)
    elif kind == "step":
        from transformers.trainer_callback import CallbackHandler

        real, seen = CallbackHandler.on_step_end, [0]

        def on_step_end(self, args, state, control, **k):
            seen[0] += 1
            if seen[0] == int(rest):
                _die()
            return real(self, args, state, control, **k)

        CallbackHandler.on_step_end = on_step_end
    else:
        raise ValueError(f"unknown kill point {point!r}")


def _child(req: dict) -> int:
    for fd, path in ((1, req["out"]), (2, req["err"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    import datasets
    import torch
    from fit_settings import FAST_STATS

    torch.set_num_threads(1)
    datasets.config.HF_DATASETS_CACHE = req["datasets_cache"]
    os.environ["TAILTUNE_CACHE"] = req["tailtune_cache"]
    for target, value in FAST_STATS.items():
        module, attr = target.rsplit(".", 1)
        setattr(importlib.import_module(module), attr, value)
    if req.get("kill"):
        _install(req["kill"])
    from tailtune.cli.main import main

    return main(list(req["argv"]))


def serve() -> None:
    import datasets  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import tailtune.cli.main  # noqa: F401
    import tailtune.experiments.screen  # noqa: F401
    import tailtune.fit.stages_finish  # noqa: F401
    import tailtune.training.run  # noqa: F401
    import tailtune.training.trainer  # noqa: F401

    serve_requests(_child)


class Zygote(zygote.Zygote):
    """The test side: start ``serve()``, send requests (answered with the child's exit code), stop it."""

    def __init__(self, log: Path):
        super().__init__(Path(__file__).resolve(), log, paths=[HERE, HERE.parent / "training"])

    def run(self, req: dict) -> int:
        return super().run(req)["exitcode"]


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        sys.exit("usage: killfit.py serve")
