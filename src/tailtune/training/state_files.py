"""Resume never unpickles code: the checkpoint's pickle-based state files are checked first.

A Trainer checkpoint holds the weights as safetensors (``model.safetensors``) and the optimiser,
scheduler, gradient-scaler and random-number states as ``torch.save`` pickles (``optimizer.pt``,
``scheduler.pt``, ``scaler.pt``, ``rng_state*.pth``). transformers loads those with
``torch.load(..., weights_only=True)``: an object that would run code is refused, but as an
``UnpicklingError`` traceback that even suggests switching the check off. :func:`check_state_files`
runs the same restricted unpickler (the same allow-list, transformers' ``safe_globals``) over every
pickle-based file of the checkpoint *before* the Trainer sees it, memory-mapped so tensor data is not
read, and turns a refusal into a :class:`~tailtune.errors.RunDirError` naming the file and the fix.

``training_args.bin`` (a pickled ``TrainingArguments`` the Trainer writes but never reads back) is
not a state file and is left alone: it is never loaded.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

from tailtune.errors import RunDirError

__all__ = ["PICKLE_SUFFIXES", "NEVER_READ", "check_state_files", "state_files"]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")
#: written by the Trainer, never read back by it or by tailtune
NEVER_READ = ("training_args.bin",)
_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def state_files(checkpoint: str | os.PathLike) -> list[Path]:
    """The pickle-based files of a checkpoint folder that a resume may ``torch.load``."""
    folder = Path(checkpoint)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix in PICKLE_SUFFIXES and p.name not in NEVER_READ)


def _weights_only_load(path: Path) -> None:
    import torch
    from transformers.trainer_pt_utils import safe_globals

    with safe_globals():
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # a legacy (non-zip) file cannot be mapped: read it in full
                raise
            torch.load(path, map_location="cpu", weights_only=True)


def check_state_files(checkpoint: str | os.PathLike, *, run_dir: str | os.PathLike) -> None:
    """Raise :class:`RunDirError` if a state file of ``checkpoint`` is not a plain tensor/number pickle.

    Nothing in the files is executed: the restricted unpickler stops at the first global outside
    the allow-list. A file that is corrupt in another way is left to the Trainer's own error.
    """
    checkpoint = Path(checkpoint)
    for path in state_files(checkpoint):
        try:
            _weights_only_load(path)
        except pickle.UnpicklingError as exc:
            found = _GLOBAL.search(str(exc))
            detail = f"it references {found.group(1)}" if found else "not only tensors, numbers and containers"
            raise RunDirError(
                f"--resume {run_dir}: {path} holds Python objects that tailtune will not unpickle ({detail}); "
                f"loading it could run code, and nothing was run. Fix: use only checkpoints you wrote "
                f"yourself; delete {checkpoint} (resume then continues from an earlier checkpoint or from "
                "the start) or train again into a new --output"
            ) from None
