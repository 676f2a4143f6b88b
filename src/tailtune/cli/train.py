"""``tailtune train`` and ``tailtune demo``: parse, call :mod:`tailtune.training`, print."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from tailtune.cli.tables import breakdown_tables
from tailtune.errors import RecipeError

console = Console(emoji=False)


def _print_findings(findings) -> None:
    """Print the recipe lint's warnings and errors (``tailtune.diagnostics.lint``) before training; the
    pipeline lints with the training data's counts, so the checks that cite the data run too."""
    for finding in findings:
        if finding.severity not in ("warning", "error"):
            continue
        colour = "red" if finding.severity == "error" else "yellow"
        text = " ".join(x for x in (finding.verdict, finding.action) if x)
        console.print(f"[{colour}]{finding.severity}[/] ({finding.rule}): {escape(text)}", highlight=False, soft_wrap=True)


def _print_notes(notes) -> None:
    """Print what the data loader decided on the user's behalf (``LoadedData.notes``: the delimiter
    it detected, text it NFC-normalised, rows it dropped) before training, as ``tailtune analyze`` does."""
    for note in notes:
        # notes quote file names and cells: escaped, so "[/b]" is text, not markup
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False, soft_wrap=True)


def _print_report(result) -> None:
    """Where ``report.html`` is, or why it was not written (training succeeded either way)."""
    if result.report is not None:
        console.print(f"report: [bold]{escape(str(result.report))}[/]", highlight=False)
    elif result.report_error:
        console.print(f"[yellow]warning[/] {escape(result.report_error)}", highlight=False, soft_wrap=True)


def _summary(result) -> None:
    """The closing tables (test split when present, else validation): per class, per aspect (aspect
    tasks), per label group (``task.groups``), the headline figures and the run dir."""
    split = "test" if "test" in result.eval else "validation"
    report = result.eval.get(split) or {}
    for table in breakdown_tables(split, report):
        console.print(table)
    figures = [f"{k} {report[k]:.4f}" for k in ("macro_f1", "micro_f1", "accuracy") if isinstance(report.get(k), float)]
    figures += [f"{k} {v:.4f}" for k, v in report.items() if "@" in k and isinstance(v, float)]
    if figures:
        console.print(f"{split}: " + "  ".join(figures), highlight=False)
    last = result.history[-1] if result.history else {}
    if last.get("stopped"):
        console.print(f"stopped after epoch {last.get('epoch')}: {last['stopped']}", highlight=False)
    console.print(f"run directory: [bold]{escape(str(result.run_dir))}[/]", highlight=False)


def _train(recipe, *, run_dir, callbacks: list, resume=None) -> None:
    """The pipeline (lint, train, report) with the findings and the data's notes printed before
    training and the closing summary after; the CLI's one way to run.

    The output is checked writable before any work; the progress bars stop even when it fails; an
    interrupt names the resume command. A resumed run that had already finished is left untouched
    (its ``eval.json`` keeps any tuned entries): it is said so and nothing is written.
    """
    from tailtune.training.pipeline import train
    from tailtune.utils.paths import check_writable

    if run_dir is not None and (resume is None or Path(run_dir).is_dir()):
        check_writable(run_dir, option="--resume" if resume is not None else "--output")
    try:
        result = train(recipe, resume=resume, callbacks=callbacks, on_findings=_print_findings,
                       on_notes=_print_notes)
    except KeyboardInterrupt:
        if run_dir is not None:
            console.print(f"interrupted; continue with: tailtune train --resume {escape(str(run_dir))}", highlight=False)
        raise
    finally:
        for callback in callbacks:
            getattr(callback, "close", lambda: None)()
    if getattr(result, "already_finished", False):
        console.print(f"{escape(str(result.run_dir))}: the run is finished (history, eval.json and model/ are "
                      "complete); nothing to resume, nothing written. To train more, start a new run with "
                      "another --output", highlight=False, soft_wrap=True)
        return
    _summary(result)
    _print_report(result)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``demo`` to ``app``."""

    @app.command("train")
    def train_cmd(
        recipe: Path | None = typer.Argument(None, help="Recipe YAML file (or use --preset / --resume)."),
        preset: str | None = typer.Option(None, "--preset", help="A packaged recipe: ce, focal, focal:1, ..."),
        set_: list[str] = typer.Option([], "--set", help="Override a field: --set loss.focal.gamma=1.0 (repeatable)."),
        learning_rate: float | None = typer.Option(None, "--learning-rate", help="optim.lr"),
        epochs: int | None = typer.Option(None, "--epochs", help="train.epochs"),
        batch_size: int | None = typer.Option(None, "--batch-size", help="train.batch_size"),
        seed: int | None = typer.Option(None, "--seed", help="train.seed"),
        bf16: bool = typer.Option(False, "--bf16", help="train.precision=bf16"),
        focal_gamma: float | None = typer.Option(None, "--focal-gamma", help="gamma of every focal part"),
        output: str | None = typer.Option(None, "--output", "-o", help="Run directory (output)."),
        resume: Path | None = typer.Option(None, "--resume", help="Continue a killed run from its last checkpoint."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ):
        """Train a classifier as RECIPE says and write its run directory."""
        from tailtune.recipe import (
            apply_overrides,
            flag_overrides,
            preset_dict,
            read_recipe_file,
            recipe_from_dict,
        )
        from tailtune.training.callbacks import RichProgressCallback

        callbacks = [] if quiet else [RichProgressCallback(console=console)]
        flags_given = set_ or any(
            v is not None for v in (learning_rate, epochs, batch_size, seed, focal_gamma, output)
        ) or bf16
        if resume is not None:
            if recipe is not None or preset is not None or flags_given:
                raise RecipeError(
                    "--resume continues a run with its own recipe.yaml; drop RECIPE, --preset and overrides"
                )
            _train(None, run_dir=resume, resume=resume, callbacks=callbacks)
            return
        if (recipe is None) == (preset is None):
            raise RecipeError("give a RECIPE file or --preset NAME (one of them), or --resume RUN_DIR")
        raw = read_recipe_file(recipe) if recipe is not None else preset_dict(preset)
        source = str(recipe) if recipe is not None else f"preset {preset}"
        raw = apply_overrides(raw, set_)  # --focal-gamma also finds a focal part added by --set
        flags = flag_overrides(
            raw,
            learning_rate=learning_rate,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            bf16=bf16,
            focal_gamma=focal_gamma,
            output=output,
        )
        parsed = recipe_from_dict(apply_overrides(raw, flags), source=source)
        _train(parsed, run_dir=parsed.output, callbacks=callbacks)

    @app.command("demo")
    def demo_cmd(
        epochs: int | None = typer.Option(None, "--epochs", help="Epochs (the demo recipe says 2)."),
        output: str = typer.Option("runs/demo", "--output", "-o", help="Run directory."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ):
        """Train MiniLM on Rotten Tomatoes (fresh/rotten/plot) with a focal recipe on CPU (< 10 min)."""
        from tailtune.training.callbacks import RichProgressCallback
        from tailtune.training.demo import DEMO_SIZES, prepare_demo
        from tailtune.utils.paths import check_writable

        check_writable(output, option="--output")  # the demo's data goes beside it, its run into it
        recipe = prepare_demo(output, epochs=epochs)
        console.print(
            f"demo: all-MiniLM-L6-v2, Rotten Tomatoes fresh/rotten/plot (plot is the 7.9% minority), "
            f"{DEMO_SIZES['train']} train / {DEMO_SIZES['validation']} validation / {DEMO_SIZES['test']} "
            f"test texts, focal loss, {recipe.train.epochs} epochs on CPU",
            highlight=False,
        )
        _train(recipe, run_dir=recipe.output, callbacks=[] if quiet else [RichProgressCallback(console=console)])
