"""``fit.json``: the state of a fit and its decision record, rewritten atomically after every unit.

Format (``"format": "tailtune-fit/1"``)::

    {"format": "tailtune-fit/1", "tailtune_version": "0.1.0", "status": "running" | "done",
     "fingerprint": {"data": "<sha256 of the loaded texts and labels>", "options": {...}},
     "options": {...},                      # FitOptions.to_dict()
     "spent_s": 812.4,                      # seconds of the finished units, over all sessions
     "units": {"<unit>": {"status": "done", "seconds": 3.2, "finished": "<UTC ISO time>",
                          "result": {...}}, ...},
     "order": ["analyze", "candidates", ...]}   # units in the order they finished

A unit is one step whose result is recorded when it is complete (``analyze``, ``candidates``,
``probe``, ``screen``, ``plan``, ``train/<candidate>/seed-<s>``, ``replan``, ``decide``,
``ensemble``, ``final``, ``report``). A fit that is killed at any moment restarts at the first unit
that is not recorded; a unit's own folder is then resumed or redone by that unit.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path
from typing import Any

from tailtune import __version__
from tailtune.errors import RunDirError
from tailtune.utils.io import atomic_write_json
from tailtune.utils.runlock import LOCK_NAME

__all__ = ["FORMAT", "STATE_FILE", "FitState", "open_state", "remove_leftovers"]

STATE_FILE = "fit.json"
FORMAT = "tailtune-fit/1"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: the budget may change until this unit is recorded (a fit stopped because the budget was too small
#: continues with a larger one); the units before it measure the data and the model, not the budget
BUDGET_FIXED_BY = "plan"
#: recorded units before :data:`BUDGET_FIXED_BY` that sized themselves by the budget: redone after a change
BUDGET_SIZED = ("screen",)


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    if old.get("data") != new.get("data"):
        out.append("the data (texts or labels)")
    o, n = old.get("options") or {}, new.get("options") or {}
    out += [f"{k} ({o.get(k)!r} -> {n.get(k)!r})" for k in sorted(set(o) | set(n)) if o.get(k) != n.get(k)]
    return out


def _budget_only(old: dict, new: dict) -> bool:
    """Whether ``new`` differs from ``old`` in the budget alone."""
    o, n = dict(old.get("options") or {}), dict(new.get("options") or {})
    return old.get("data") == new.get("data") and o.pop("budget_s", None) != n.pop("budget_s", None) and o == n


class FitState:
    """The loaded ``fit.json`` of one output folder; every change is written at once."""

    def __init__(self, folder: Path, data: dict[str, Any]):
        self.folder = Path(folder)
        self.data = data

    @property
    def path(self) -> Path:
        return self.folder / STATE_FILE

    @property
    def spent_s(self) -> float:
        return float(self.data.get("spent_s") or 0.0)

    def done(self, unit: str) -> bool:
        return (self.data["units"].get(unit) or {}).get("status") == "done"

    def result(self, unit: str) -> dict[str, Any]:
        return (self.data["units"].get(unit) or {}).get("result") or {}

    def units(self, prefix: str = "") -> dict[str, dict]:
        return {k: v for k, v in self.data["units"].items() if k.startswith(prefix)}

    def record(self, unit: str, result: dict[str, Any], seconds: float) -> None:
        """Mark ``unit`` done with its result and duration, and write the file."""
        self.data["units"][unit] = {"status": "done", "seconds": round(float(seconds), 3), "finished": _now(),
                                    "result": result}
        self.data["order"] = [u for u in self.data["order"] if u != unit] + [unit]
        self.data["spent_s"] = round(self.spent_s + float(seconds), 3)
        self.write()

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.write()

    def write(self) -> None:
        atomic_write_json(self.path, self.data)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: unreadable ({exc}). Fix: pass --restart to start this fit over") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("units"), dict):
        raise RunDirError(f"{path}: not a {FORMAT} state file. Fix: pass --restart to start this fit over")
    return data


def _entries(folder: Path) -> list[Path]:
    """What ``folder`` holds, the run-directory lock file aside (the fit holds it while it runs)."""
    return [child for child in folder.iterdir() if child.name != LOCK_NAME]


def _clear(folder: Path) -> None:
    """Remove everything of an earlier fit from ``folder`` (only called on a folder holding fit.json)."""
    for child in _entries(folder):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete what a killed fit can leave outside its training runs' own folders: hidden temporary
    files of atomic writes (``.<name>.<random>.tmp``) and half-copied model folders (``.model.tmp``).
    Training run folders are cleaned by ``train(resume=...)`` itself."""
    removed = []
    for path in sorted(folder.rglob(".*.tmp"), reverse=True):
        if "checkpoints" in path.relative_to(folder).parts:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed


def _change_budget(data: dict, fingerprint: dict, options: dict) -> None:
    """Take the new budget into a fit that has not planned yet; forget the units sized by the old one."""
    data["fingerprint"] = fingerprint
    data["options"] = options
    for unit in BUDGET_SIZED:
        data["units"].pop(unit, None)
    data["order"] = [u for u in data["order"] if u in data["units"]]


def open_state(folder: Path, fingerprint: dict, options: dict, *, restart: bool = False) -> FitState:
    """Open (continue) or create the state of a fit in ``folder``.

    A fit of the same data and options continues; so does one that differs in the budget alone while
    its plan is not made (:data:`BUDGET_FIXED_BY`: a fit stopped by a budget too small is rerun with a
    larger one), after forgetting the units sized by the old budget (:data:`BUDGET_SIZED`).

    Raises:
        RunDirError: ``folder`` holds something that is not a fit, or a fit of other data/options
            (``restart=True`` clears a folder that holds a fit and starts over).
    """
    folder = Path(folder)
    path = folder / STATE_FILE
    if folder.exists() and not folder.is_dir():
        raise RunDirError(f"-o {folder}: is a file, not a folder. Fix: choose a folder for the fit")
    if folder.is_dir() and _entries(folder) and not path.is_file():
        raise RunDirError(f"-o {folder}: holds files that are not a tailtune fit (no {STATE_FILE}); refusing to "
                          "write into it. Fix: choose a new or empty output folder")
    if path.is_file():
        if restart:
            _clear(folder)
        else:
            data = _read(path)
            old = data.get("fingerprint") or {}
            changed = _budget_only(old, fingerprint) and not FitState(folder, data).done(BUDGET_FIXED_BY)
            if changed:
                _change_budget(data, fingerprint, options)
            diff = _differences(data.get("fingerprint") or {}, fingerprint)
            if diff:
                planned = " (the budget can change only until the plan is made)" if _budget_only(old, fingerprint) else ""
                raise RunDirError(
                    f"-o {folder}: holds a fit of other data or options (different: {'; '.join(diff)}){planned}. "
                    "Fix: rerun with the same data and options to continue it, choose another -o, or pass "
                    "--restart to delete it and start over")
            remove_leftovers(folder)
            state = FitState(folder, data)
            if changed:
                state.write()
            return state
    folder.mkdir(parents=True, exist_ok=True)
    state = FitState(folder, {"format": FORMAT, "tailtune_version": __version__, "status": "running",
                              "fingerprint": fingerprint, "options": options, "spent_s": 0.0, "units": {},
                              "order": []})
    state.write()
    return state
