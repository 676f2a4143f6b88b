"""The ``tailtune`` console script.

Each command group lives in its own module exposing ``register(app)``; this module only assembles
them and turns :class:`tailtune.errors.TailtuneError` into one message and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from tailtune import __version__
from tailtune.errors import TailtuneError

# command modules, each with register(app); kept in one list so `tailtune --help` shows them all
COMMAND_MODULES = ("analyze", "train", "evaluate", "diagnose", "experiments", "fit")

err_console = Console(stderr=True)


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


def main(argv: list[str] | None = None) -> int:
    app = build_app()
    try:
        app(args=argv, standalone_mode=False)
    except TailtuneError as exc:
        # escape: a message quoting user data (a label "[/b]", a path with brackets) is not markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
