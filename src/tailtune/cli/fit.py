"""``tailtune fit DATA -o DIR``: parse, call :func:`tailtune.fit.fit`, print the outcome."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from tailtune.errors import DataError

console = Console()
err_console = Console(stderr=True)
DEMO_BUDGET = "10m"


def _num(x, pts: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:+.1f}" if pts else f"{x:.4f}"


def _ci(ci) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "–"
    return f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _arm_line(arm: str, summary: dict, comparison: dict | None, width: int, winner: str) -> str:
    """One arm: seeds, mean tuned and default validation macro-F1, and (a challenger) the comparison."""
    seeds = len(summary["seeds"])
    line = (f"  {'*' if arm == winner else ' '} {escape(arm):<{width}}  {seeds} seed{'s' if seeds != 1 else ' '}  "
            f"tuned {_num(summary['tuned']['mean'])}  default {_num(summary['default']['mean'])}")
    if comparison is None:
        return line
    t = comparison.get("tuned") or {}
    if not t:  # too few common seeds to compare (fit.json's note says why)
        common = len(comparison.get("seeds") or [])
        return f"{line}  vs baseline: {common} common seed{'s' if common != 1 else ''}, too few to compare"
    return (f"{line}  vs baseline {_num(t.get('diff'), pts=True)} points, items {_ci(t.get('item_ci'))}, "
            f"seeds {_ci(t.get('seed_ci'))}: {comparison.get('verdict', '')}")


def print_outcome(result) -> None:
    """The arms' validation scores and verdicts, the decision, the test score and where things are.

    One line per arm (not a table: a table squeezed into an 80-column terminal or a log truncates the
    names and verdicts); a long line wraps as a whole."""
    d = result.decision
    summaries, comparisons = d.get("summaries") or {}, d.get("comparisons") or {}
    console.print("fine-tuned candidates (validation macro-F1, seed means; tuned rule cross-fitted; differences "
                  "in points; * shipped):", highlight=False, soft_wrap=True)
    width = max((len(a) for a in summaries), default=0)
    for arm, s in summaries.items():
        console.print(_arm_line(arm, s, comparisons.get(arm), width, result.winner), highlight=False, soft_wrap=True)
    console.print(f"[bold]decision:[/] {escape(d.get('reason', ''))}", highlight=False, soft_wrap=True)
    test = result.scores.get("test")
    what = "ensemble of the winner's seeds" if result.ensemble else "one model"
    if test:
        console.print(f"test (scored once): macro-F1 {test['default']:.4f} with the default rule, "
                      f"[bold]{test['tuned']:.4f}[/] with the shipped rule ({what})", highlight=False, soft_wrap=True)
    console.print(f"fit folder: [bold]{escape(str(result.output))}[/] (report.html, decision-log.md, fit.json; "
                  f"`tailtune predict {escape(str(result.output))} --text ...`)", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``fit`` to ``app``."""

    @app.command("fit")
    def fit_cmd(
        data: str | None = typer.Argument(None, help="Data folder/file (train/validation/test files), as `analyze` reads."),
        output: Path | None = typer.Option(None, "--output", "-o", help="The fit folder (rerun to continue a killed fit)."),
        model: str | None = typer.Option(None, "--model", help="Encoder folder or hub id (default all-MiniLM-L6-v2)."),
        budget: str | None = typer.Option(None, "--budget", help="Time budget: 30m (default), 1h, 90s, 600."),
        seeds: int = typer.Option(3, "--seeds", help="Seeds per fine-tuned candidate."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        task: str | None = typer.Option(None, "--task", help="Task kind or a task.json (e.g. with a label hierarchy)."),
        text_column: str | None = typer.Option(None, "--text-column", help="Text column."),
        label_column: str | None = typer.Option(None, "--label-column", help="Label column (or comma-separated 0/1 columns)."),
        label_sep: str | None = typer.Option(None, "--label-sep", help="Split string labels on this separator."),
        drop_empty_text: bool = typer.Option(False, "--drop-empty-text", help="Drop rows with empty text."),
        drop_unused_labels: bool = typer.Option(
            False, "--drop-unused-labels", help="Leave out declared labels without training examples (no renumbering)."),
        seed: int = typer.Option(13, "--seed", help="First training seed and the seed of carved splits."),
        finalists: int = typer.Option(2, "--finalists", help="Screened challengers fine-tuned besides the baseline."),
        max_epochs: int | None = typer.Option(None, "--max-epochs", help="Cap the epochs the rules choose."),
        restart: bool = typer.Option(False, "--restart", help="Delete an earlier fit in the folder and start over."),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embeddings cache of the screening stage."),
        demo: bool = typer.Option(False, "--demo", help="Fit the embedded Rotten Tomatoes demo data (budget 10m)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress line."),
    ):
        """From a labelled data set to the best defensible model, within a time budget."""
        from tailtune.fit import fit

        if demo:
            if data is not None:
                raise DataError("--demo fits the embedded demo data; drop DATA (or drop --demo)")
            from tailtune.training.demo import prepare_demo_data
            from tailtune.utils.paths import check_writable

            output = output or Path("runs/demo-fit")
            check_writable(output.absolute().parent, option="-o/--output")  # the demo data goes beside it
            data = str(prepare_demo_data(output))
            budget = budget or DEMO_BUDGET
            console.print("demo: Rotten Tomatoes fresh/rotten/plot (plot is the 7.9% minority), all-MiniLM-L6-v2, "
                          f"budget {budget}", highlight=False)
        if data is None or output is None:
            raise DataError("give the data and the fit folder: tailtune fit DATA -o DIR (or tailtune fit --demo)")
        try:
            result = fit(data, output, model=model, budget=budget or "30m", seeds=seeds, device=device, task=task,
                         text_column=text_column, label_column=label_column, label_sep=label_sep,
                         empty_text="drop" if drop_empty_text else "error",
                         unused_labels="drop" if drop_unused_labels else "error", seed=seed, finalists=finalists,
                         max_epochs=max_epochs, restart=restart, cache_dir=cache_dir, show_progress=not quiet)
        except KeyboardInterrupt:
            # cli.main owns the exit code (130) and prints "interrupted"; this says how to go on
            err_console.print(f"the fit in {escape(str(output))} keeps every finished unit; rerun the same "
                              "command to continue", highlight=False, soft_wrap=True)
            raise
        print_outcome(result)
