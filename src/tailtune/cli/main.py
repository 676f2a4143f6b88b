"""The ``tailtune`` console script.

Each command group lives in its own module exposing ``register(app)``; this module only assembles
them and owns the process's exit codes (docs/reliability.md, "Process and exit codes"):

- 0 success;
- 1 a command that ran but reports a failure (``lint`` found an error, ``ablate`` had failed runs);
- 2 a user error: :class:`tailtune.errors.TailtuneError` (one ``error:`` line naming the file, row or
  field and the fix), a command-line usage error (the usage line and the message, as click prints
  them) and a file or folder the process may not read or write, or a path it cannot use (name too long);
- 130 an interrupt (Ctrl-C / SIGINT), wherever it lands.

Usage errors are recognised by duck typing (a ``ClickException`` anywhere in the class's MRO with
``show()`` and ``exit_code``), so the check holds whether Typer runs on plain ``click`` or on the
copy it bundles (Typer >= 0.20 ships ``typer._click``, whose exceptions are not ``click``'s).
"""

from __future__ import annotations

import errno
import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from tailtune import __version__
from tailtune.errors import TailtuneError

# command modules, each with register(app); kept in one list so `tailtune --help` shows them all
COMMAND_MODULES = ("analyze", "train", "evaluate", "diagnose", "experiments", "fit")
#: exit code of an interrupted command (128 + SIGINT, as a shell reports it)
EXIT_INTERRUPTED = 130
EXIT_USER_ERROR = 2
#: errno values of a write or read the user can fix by choosing another path or changing permissions
_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
#: errno values of a path the user gave that the system cannot use as written (too long, a loop of links)
_PATH_ERRNOS = {errno.ENAMETOOLONG, errno.ELOOP}

err_console = Console(stderr=True, emoji=False)  # ":abc:" in a value is text, not an emoji code


def _version(value: bool):
    if value:
        typer.echo(f"tailtune {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="tailtune",
        help="Fine-tune transformer text classifiers on imbalanced data, with evidence.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    ):
        """tailtune command line."""

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tailtune.cli.{name}")
        module.register(app)
    return app


def is_usage_error(exc: BaseException) -> bool:
    """True for a click ``ClickException`` (usage error, bad parameter, ...) of ANY click copy: plain
    ``click`` or the one Typer bundles. Checked by class name in the MRO, not by ``isinstance``."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return "ClickException" in names and callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code")


def _is_exit(exc: BaseException) -> bool:
    """click's/Typer's ``Exit`` (any copy): carries the exit code a command asked for."""
    return type(exc).__name__ == "Exit" and isinstance(getattr(exc, "exit_code", None), int)


def _is_abort(exc: BaseException) -> bool:
    """click's/Typer's ``Abort``: older click versions turn Ctrl-C into it."""
    return type(exc).__name__ == "Abort"


def _error(message: str) -> None:
    # escape: a message quoting user data (a label "[/b]", a path with brackets) is not markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _access_message(exc: OSError) -> str:
    """One line for a file the process may not read or write (permission denied, read-only disk), or a
    path it cannot use as written (name too long, a loop of symbolic links)."""
    path = exc.filename or "a file"
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _PATH_ERRNOS:
        return f"{path}: {reason}. Fix: give a shorter path (or one without a loop of links)"
    return (
        f"{path}: {reason}. Fix: choose a folder you can write to (--output / --out), or change the "
        "permissions of that path"
    )


def _show_usage_error(exc: BaseException) -> int:
    message = getattr(exc, "message", None)
    # Typer's rich help already printed the help text while building NoArgsIsHelpError; plain click's
    # carries it as the message
    if not (type(exc).__name__ == "NoArgsIsHelpError" and not (message or "").strip()):
        exc.show()
    return int(exc.exit_code)


def _exit_code(result) -> int:
    """The exit code of a non-standalone click run: ``Exit(n)`` comes back as its code ``n``
    (Typer turns Ctrl-C into ``Exit(130)``); a command's own return value None means success."""
    if isinstance(result, bool) or not isinstance(result, int):
        return 0
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the process exit code (see the module docstring)."""
    try:
        app = build_app()
        result = app(args=argv, prog_name="tailtune", standalone_mode=False)
    except TailtuneError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno not in _ACCESS_ERRNOS | _PATH_ERRNOS:
            raise
        _error(_access_message(exc))
        return EXIT_USER_ERROR
    except Exception as exc:  # click's usage errors, Exit and Abort (either click copy)
        if is_usage_error(exc):
            return _show_usage_error(exc)
        if _is_exit(exc):
            return int(exc.exit_code)
        if _is_abort(exc):
            err_console.print("interrupted")
            return EXIT_INTERRUPTED
        raise
    code = _exit_code(result)
    if code == EXIT_INTERRUPTED:
        err_console.print("interrupted")
    return code


if __name__ == "__main__":
    sys.exit(main())
