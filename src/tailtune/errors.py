"""User-facing errors.

Every error a user can cause or fix (bad data, bad recipe, bad run directory, a full disk) is a
:class:`TailtuneError`. The CLI prints its message and exits with code 2; library callers can catch
it. Messages name the file, the row or field, and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TailtuneError(Exception):
    """Base class for errors caused by user input; the CLI exits 2 with the message."""

    exit_code = 2


class DataError(TailtuneError, ValueError):
    """A data file or column is missing, malformed or inconsistent."""


class RecipeError(TailtuneError, ValueError):
    """A recipe value is invalid."""


class RunDirError(TailtuneError, ValueError):
    """A run directory is missing, incomplete or corrupt."""


class OptionError(TailtuneError, ValueError):
    """An argument of a command or a library call is outside its range or choices (``seeds=0``,
    ``rank_by='foo'``). A ``ValueError`` for library callers; the CLI exits 2 with the message."""


def check_int(name: str, value, *, low: int = 1, example: int | None = None) -> int:
    """``value`` when it is an int (a bool is not) of at least ``low``, else :class:`OptionError`
    naming the option: ``seeds=0 must be a positive int, e.g. 5``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        what = "a positive int" if low == 1 else f"an int >= {low}"
        hint = "" if example is None else f", e.g. {example}"
        raise OptionError(f"{name}={value!r} must be {what}{hint}")
    return value


class StorageError(TailtuneError, OSError):
    """Writing the run directory failed (disk full, quota, file too large, read-only).

    The message names what could not be written, the cause and the fix (free space, then
    ``tailtune train --resume RUN_DIR``); the run directory keeps its last complete checkpoint.
    """


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
