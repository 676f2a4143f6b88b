"""Run ``tailtune train`` in forked children with faults injected: SIGKILL at a chosen point, or a
simulated full disk. Used by ``test_kill_resume.py``.

A *zygote* process (``python faultrun.py serve``) imports torch, transformers and tailtune once and
then forks one child per request, so each killed run does not pay the imports again. It reads one
JSON request per line on stdin and answers one JSON line per request on stdout::

    {"argv": ["train", "recipe.yaml", "-q"], "out": "child.out", "err": "child.err",
     "trace": "events.jsonl" | null, "fault": null | {"mode": "kill" | "enospc", "kind": "step", "n": 3},
     "datasets_cache": "...", "report": true, "timeout": 600}
    -> {"exitcode": 0 | 2 | -9, "timed_out": false}

Fault points are *events*, counted per kind in the order the run meets them (deterministic on CPU
with a fixed seed, so an uninterrupted run's trace lists every point a later run can be stopped at):

- ``step``: after optimiser step k (``on_step_end``);
- ``atomic``: the start of a tailtune atomic write (temporary file opened, nothing written yet);
- ``replace``: a tailtune atomic write whose temporary file is complete, just before its rename;
- ``tok_move``: moving a tokenizer file from ``model/.tok-*`` into ``model/``;
- ``safetensors`` / ``torch_save`` / ``trainer_state``: a Trainer checkpoint file being written in
  place (kill: half of its bytes are on disk, then SIGKILL, i.e. a torn file);
- ``rmtree``: a folder being deleted (checkpoint rotation, scratch folders; kill: half its files gone).

``mode: "enospc"`` makes the chosen event fail as a full disk does (measured on a full tmpfs):
safetensors raises ``SafetensorError("... No space left on device (os error 28)")``, torch.save a
``RuntimeError`` without errno, a Python write ``OSError(ENOSPC)``, each after writing part of the
data; from then on ``shutil.disk_usage`` reports 0 bytes free and every hooked write fails.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import zygote
from zygote import serve as serve_requests

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# inside a child: the fault injector
class Injector:
    """Counts events, appends them to ``trace`` and fires the one fault of the request."""

    def __init__(self, fault: dict | None, trace: str | None):
        self.fault = fault or {}
        self.trace = open(trace, "a", encoding="utf-8") if trace else None  # noqa: SIM115 - lives with the child
        self.counts: Counter = Counter()
        self.phase = "setup"
        self.step = 0
        self.checkpoints = 0  # trainer_state.json files written in full so far
        self.disk_full = False

    def hit(self, kind: str, detail: str = "") -> bool:
        """Record one event; True when it is the fault point (or the simulated disk is full)."""
        self.counts[kind] += 1
        n = self.counts[kind]
        if self.trace is not None:
            row = {"kind": kind, "n": n, "phase": self.phase, "step": self.step, "ckpts": self.checkpoints}
            self.trace.write(json.dumps({**row, "detail": detail}) + "\n")
            self.trace.flush()
        target = self.fault.get("kind") == kind and self.fault.get("n") == n
        if target and self.fault.get("mode") == "enospc":
            self.disk_full = True
        return target or self.disk_full

    @property
    def enospc(self) -> bool:
        return self.fault.get("mode") == "enospc"

    @staticmethod
    def die() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def install(inj: Injector) -> None:
    """Wrap the writers and Trainer hooks of this (child) process so they report to ``inj``."""
    import shutil

    import safetensors.torch
    import torch
    from safetensors import SafetensorError
    from transformers.trainer_callback import CallbackHandler, TrainerState

    handler_step, handler_begin, handler_end = (
        CallbackHandler.on_step_end,
        CallbackHandler.on_train_begin,
        CallbackHandler.on_train_end,
    )

    def on_train_begin(self, args, state, control, **kwargs):
        inj.phase = "train"
        return handler_begin(self, args, state, control, **kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        inj.step = state.global_step
        if inj.hit("step", str(state.global_step)) and not inj.enospc:
            inj.die()
        return handler_step(self, args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        inj.phase = "final"
        return handler_end(self, args, state, control, **kwargs)

    CallbackHandler.on_train_begin = on_train_begin
    CallbackHandler.on_step_end = on_step_end
    CallbackHandler.on_train_end = on_train_end

    # Trainer checkpoint files (written in place)
    st_save_file = safetensors.torch.save_file

    def save_file(tensors, filename, metadata=None):
        if inj.hit("safetensors", Path(filename).name):
            data = safetensors.torch.save(tensors, metadata=metadata)
            Path(filename).write_bytes(data[: len(data) // 2])
            if inj.enospc:
                raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
            inj.die()
        return st_save_file(tensors, filename, metadata=metadata)

    safetensors.torch.save_file = save_file

    t_save = torch.save

    def torch_save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and inj.hit("torch_save", Path(f).name):
            buf = io.BytesIO()
            t_save(obj, buf, *args, **kwargs)
            Path(f).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
            if inj.enospc:  # what torch's C++ zip writer raises on a full disk: no errno
                try:
                    raise RuntimeError("basic_ios::clear: iostream error")
                except RuntimeError:
                    raise RuntimeError(  # noqa: B904 - torch chains it as context, not cause
                        "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"
                    )
            inj.die()
        return t_save(obj, f, *args, **kwargs)

    torch.save = torch_save

    state_save = TrainerState.save_to_json

    def save_to_json(self, json_path):
        if inj.hit("trainer_state", Path(json_path).parent.name):
            state_save(self, json_path)
            text = Path(json_path).read_bytes()
            Path(json_path).write_bytes(text[: len(text) // 2])
            if inj.enospc:
                raise _enospc()
            inj.die()
        state_save(self, json_path)
        inj.checkpoints += 1

    TrainerState.save_to_json = save_to_json

    rmtree = shutil.rmtree

    def rmtree_hook(path, *args, **kwargs):
        if inj.hit("rmtree", Path(path).name) and not inj.enospc:
            files = sorted(p for p in Path(path).rglob("*") if p.is_file())
            for p in files[: max(len(files) // 2, 1)]:
                p.unlink()
            inj.die()
        return rmtree(path, *args, **kwargs)

    shutil.rmtree = rmtree_hook

    # tailtune's atomic writes: os.fdopen of the temporary file, then os.replace onto the target
    fdopen, replace = os.fdopen, os.replace

    def fdopen_hook(fd, *args, **kwargs):
        caller = sys._getframe(1)
        if caller.f_globals.get("__name__") != "tailtune.utils.io":
            return fdopen(fd, *args, **kwargs)
        target = Path(caller.f_locals.get("path", "?"))
        if not inj.hit("atomic", _rel(target)):
            return fdopen(fd, *args, **kwargs)
        if not inj.enospc:
            inj.die()
        return _FullDiskFile(fdopen(fd, *args, **kwargs))

    def replace_hook(src, dst, *args, **kwargs):
        name = Path(src).name
        if name.startswith(".") and name.endswith(".tmp"):
            if inj.hit("replace", _rel(Path(dst))) and not inj.enospc:
                inj.die()
        elif Path(src).parent.name.startswith(".tok-"):
            if inj.hit("tok_move", Path(dst).name) and not inj.enospc:
                inj.die()
        return replace(src, dst, *args, **kwargs)

    os.fdopen, os.replace = fdopen_hook, replace_hook

    usage = shutil.disk_usage

    def disk_usage(path):
        real = usage(path)
        return type(real)(real.total, real.total, 0) if inj.disk_full else real

    shutil.disk_usage = disk_usage


def _rel(path: Path) -> str:
    """``history.jsonl``, ``model/config.json``...: the path below the run directory (best effort)."""
    parts = path.parts
    for anchor in ("model", "predictions", "checkpoints"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) :])
    return path.name


class _FullDiskFile:
    """A file whose first write stores half of the data and raises ENOSPC, as a full disk does."""

    def __init__(self, fh):
        self._fh = fh

    def write(self, data):
        self._fh.write(data[: len(data) // 2])
        self._fh.flush()
        raise _enospc()

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False


def _child(req: dict) -> int:
    """Body of a forked child: redirect output, install the injector, run the CLI, return its code."""
    out = os.open(req["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    import datasets
    import torch

    torch.set_num_threads(1)
    datasets.config.HF_DATASETS_CACHE = req["datasets_cache"]
    datasets.disable_progress_bars()
    install(Injector(req.get("fault"), req.get("trace")))
    if not req.get("report", True):  # report.html (rendered after training) costs seconds per run
        import tailtune.training.pipeline

        tailtune.training.pipeline.write_report = lambda *args, **kwargs: None
    from tailtune.cli.main import main

    return main(list(req["argv"]))


# ---------------------------------------------------------------------------------------------
# the zygote
def serve() -> None:
    """Import once, then fork one child per request line (see the module docstring)."""
    import datasets  # noqa: F401
    import safetensors.torch  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import tailtune.cli.main  # noqa: F401
    import tailtune.metrics  # noqa: F401
    import tailtune.training.run  # noqa: F401
    import tailtune.training.trainer  # noqa: F401

    serve_requests(_child, ready={"threads": len(os.listdir("/proc/self/task"))})


class Zygote(zygote.Zygote):
    """The test side: start ``serve()`` in a subprocess, send requests, stop it."""

    def __init__(self, log: Path, env: dict | None = None, start_timeout: float = 600):
        super().__init__(Path(__file__).resolve(), log, paths=[HERE], env=env, start_timeout=start_timeout)


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    else:
        sys.exit("usage: faultrun.py serve")
