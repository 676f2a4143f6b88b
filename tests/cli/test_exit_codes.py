"""Exit codes of ``tailtune``: usage errors 2 (either click copy), a command's own code (``Exit(1)``)
kept, interrupts 130 — all without a traceback (cli/main.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from tailtune.cli import main as cli_main
from tailtune.cli.main import main

USAGE_ERRORS = [
    (["train", "--nonsense"], "No such option: --nonsense"),
    (["train", "--epochs", "many"], "Invalid value for '--epochs'"),
    (["no-such-command"], "No such command 'no-such-command'"),
    (["tune"], "Missing argument"),
    (["predict", "run", "--batch-size"], "requires an argument"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_exit_2_with_the_usage_line_and_no_traceback(argv, message, capfd):
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert message in err and "Traceback" not in err
    # click's parser raises a missing option value without a context: then the message alone
    assert err.startswith("Usage: tailtune") or err.startswith("Error: Option")


def test_the_console_script_exits_2_on_an_unknown_option():
    """The before-stop hook's check: ``tailtune train --no-such-option`` is exit 2, no traceback."""
    exe = os.path.join(os.path.dirname(sys.executable), "tailtune")
    if not os.path.exists(exe):
        pytest.skip("console script not installed")
    done = subprocess.run([exe, "train", "--no-such-option"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "No such option: --no-such-option" in done.stderr
    assert done.stderr.startswith("Usage: tailtune train")


def _app_raising(exc_factory):
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def boom():
        raise exc_factory()

    @app.command()
    def other():
        pass

    return app


def _click_copies():
    copies = []
    try:
        import typer._click.exceptions as bundled  # Typer >= 0.20 ships its own click
        copies.append(pytest.param(bundled, id="typer-bundled-click"))
    except ImportError:
        pass
    try:
        import click.exceptions as plain
        copies.append(pytest.param(plain, id="plain-click"))
    except ImportError:
        pass
    return copies


@pytest.mark.parametrize("exceptions", _click_copies())
def test_usage_errors_of_either_click_copy(exceptions, monkeypatch, capfd):
    """``is_usage_error`` goes by the class's MRO names, so the plain click a older Typer runs on and
    the copy a newer Typer bundles are both exit 2 with their message."""
    monkeypatch.setattr(cli_main, "build_app", lambda: _app_raising(lambda: exceptions.UsageError("bad use here")))
    assert main(["boom"]) == 2
    err = capfd.readouterr().err
    assert "bad use here" in err and "Traceback" not in err
    abort = getattr(exceptions, "Abort", None) or typer.Abort  # Typer's bundled copy keeps Abort in typer
    monkeypatch.setattr(cli_main, "build_app", lambda: _app_raising(abort))
    assert main(["boom"]) == 130  # older click turns Ctrl-C into Abort


def test_the_code_a_command_exits_with_is_kept(monkeypatch):
    """``raise typer.Exit(1)`` (ablate after failed runs) used to come back as 0."""
    monkeypatch.setattr(cli_main, "build_app", lambda: _app_raising(lambda: typer.Exit(1)))
    assert main(["boom"]) == 1
    monkeypatch.setattr(cli_main, "build_app", lambda: _app_raising(lambda: typer.Exit(0)))
    assert main(["boom"]) == 0


def test_an_interrupt_anywhere_exits_130(monkeypatch, capfd):
    monkeypatch.setattr(cli_main, "build_app", lambda: _app_raising(KeyboardInterrupt))
    assert main(["boom"]) == 130
    err = capfd.readouterr().err
    assert "interrupted" in err and "Traceback" not in err

    def slow_build():
        raise KeyboardInterrupt  # Ctrl-C while the commands are being imported

    monkeypatch.setattr(cli_main, "build_app", slow_build)
    assert main(["train"]) == 130


def test_permission_denied_anywhere_is_one_message(monkeypatch, capfd):
    def denied():
        raise PermissionError(13, "Permission denied", "/srv/runs/r1/eval.json")

    monkeypatch.setattr(cli_main, "build_app", lambda: _app_raising(denied))
    assert main(["boom"]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: /srv/runs/r1/eval.json: Permission denied. Fix: choose a folder you can write to")
    assert "Traceback" not in err

    def other_os_error():
        raise OSError(5, "Input/output error")  # not something the user can fix by choosing a path

    monkeypatch.setattr(cli_main, "build_app", lambda: _app_raising(other_os_error))
    with pytest.raises(OSError):
        main(["boom"])


def test_a_path_too_long_is_one_message(tmp_path, capfd):
    """A path the system cannot use as written (ENAMETOOLONG): exit 2 naming it, no traceback."""
    too_long = tmp_path / ("x" * 300)
    assert main(["fit", str(too_long / "data"), "-o", str(tmp_path / "fit")]) == 2
    err = capfd.readouterr().err
    assert "File name too long" in err and "Fix: give a shorter path" in err and "Traceback" not in err


def test_no_arguments_shows_the_help(capfd):
    code = main([])
    out = capfd.readouterr()
    assert code == 2 and "train" in out.out + out.err and "Traceback" not in out.err


def test_error_lines_print_colon_words_as_typed_not_as_emoji(capfd, tmp_path):
    """Before: `--preset focal:abc` printed "preset focal🔤 loss.focal: ..." (rich read ':abc:' as an
    emoji code): the message quoted something the user never typed."""
    code = main(["train", "--preset", "focal:abc:", "--set", f"data.path={tmp_path}", "--output", str(tmp_path / "o")])
    err = capfd.readouterr().err
    assert code == 2 and "focal:abc:" in err and "\N{INPUT SYMBOL FOR LATIN LETTERS}" not in err
