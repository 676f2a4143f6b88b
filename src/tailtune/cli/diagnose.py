"""``tailtune lint``, ``diagnose``, ``postmortem`` and ``report``: parse, call tailtune.diagnostics /
tailtune.reports, print.

Exit codes: 0 success (``lint``: warnings allowed), 1 ``lint`` found an error-level problem,
2 a user error (bad recipe, missing run directory).

``lint --run RUN`` adds the check of class weights stacked with RUN's tuned decision rule
(:mod:`tailtune.diagnostics.stacking`); ``diagnose --baseline BASE`` adds the comparison of
:mod:`tailtune.diagnostics.baseline` (metrics; loss values only against their own start).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from tailtune.errors import TailtuneError

console = Console(highlight=False, soft_wrap=True, emoji=False)

_STYLE = {"ok": "green", "info": "blue", "warning": "yellow", "error": "bold red"}


class LintFailed(TailtuneError):
    """``tailtune lint`` found an error-level problem: exit code 1 (user errors keep 2)."""

    exit_code = 1


def _print_findings(findings, *, empty: str) -> None:
    if not findings:
        console.print(f"[green]{empty}[/]")
        return
    for f in findings:
        # verdicts quote label names and paths: escaped, so a label "[/b]" prints as text, not markup
        console.print(f"[{_STYLE[f.severity]}]{f.severity:>7}[/] [bold]{f.rule}[/]: {escape(f.verdict)}")
        if f.action:
            console.print(f"          [dim]->[/] {escape(f.action)}")


def _stacking(recipe, trained, counts, n, task=None) -> list:
    """``weights_with_thresholds`` of the recipe's class weights (as :func:`tailtune.recipe.resolve`
    makes them; ``task``: the data's, when ``--data`` loaded it) against the run's tuned decision rule."""
    from tailtune.diagnostics.stacking import stacked_corrections
    from tailtune.diagnostics.weights import recipe_class_weights

    weights = recipe_class_weights(recipe, trained.kind, counts, labels=trained.labels, num_examples=n, task=task)
    f = stacked_corrections(weights, trained.postprocess, kind=trained.kind, labels=trained.labels)
    return [f] if f is not None else []


def register(app: typer.Typer) -> None:
    """Add ``lint``, ``diagnose``, ``postmortem`` and ``report`` to ``app``."""
    _add_lint(app)
    _add_diagnose(app)
    _add_postmortem(app)
    _add_report(app)


def _lint_evidence(rec, *, data: bool, data_path: str | None, run: Path | None):
    """``(task, class counts, number of examples, trained run)`` that ``lint`` checks the recipe with:
    the counts of the recipe's data (``--data``/``--data-path``), else those the ``--run`` recorded."""
    from tailtune.diagnostics.lint import recipe_counts

    task = counts = n = None
    if data:
        task, data_counts = recipe_counts(rec, data_path=data_path)
        counts, n = data_counts, data_counts.num_examples  # a ClassCounts: per-aspect counts too
    trained = None
    if run is not None:
        from tailtune.diagnostics import load_run

        trained = load_run(run)
        if counts is None:
            counts, n = trained.class_counts, trained.extra.get("n_train")
    return task, counts, n, trained


def _add_lint(app: typer.Typer) -> None:
    @app.command("lint")
    def lint(
        recipe: Path = typer.Argument(..., help="Recipe YAML file."),
        data: bool = typer.Option(False, "--data", help="Load the recipe's data.path and cite class counts."),
        data_path: str = typer.Option(None, "--data-path", help="Count classes in this data instead of data.path (implies --data)."),
        baseline: Path = typer.Option(None, "--baseline", help="Baseline recipe (its lr and batch are the reference)."),
        overrides: list[str] = typer.Option([], "--set", help="Override a field, e.g. --set loss.focal.gamma=1.0."),
        run: Path = typer.Option(None, "--run", help="A trained run of this recipe: its class counts and its tuned "
                                 "decision rule (postprocess.json) are checked against the recipe's class weights."),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    ):
        """Check a recipe for remedies that cancel or compound each other. Exit 1 on errors, 0 otherwise."""
        from tailtune.diagnostics.lint import lint_recipe
        from tailtune.recipe import load_recipe

        rec = load_recipe(recipe, overrides)
        base = load_recipe(baseline) if baseline is not None else None
        task, counts, n, trained = _lint_evidence(rec, data=bool(data or data_path), data_path=data_path, run=run)
        findings = lint_recipe(rec, class_counts=counts, num_examples=n, baseline=base, task=task)
        if trained is not None:
            findings += _stacking(rec, trained, counts, n, task)
        if as_json:
            typer.echo(json.dumps([f.to_dict() for f in findings], indent=2))
        else:
            _print_findings(findings, empty=f"{recipe}: no problems found")
        errors = sum(f.severity == "error" for f in findings)
        if errors:
            raise LintFailed(f"{recipe}: {errors} error-level problem{'s' if errors > 1 else ''}; fix before training")


def _add_diagnose(app: typer.Typer) -> None:
    @app.command("diagnose")
    def diagnose(
        run: Path = typer.Argument(..., help="Run directory."),
        show_all: bool = typer.Option(False, "--all", help="Also show ok/info findings (best epoch, why training stopped)."),
        baseline: Path = typer.Option(None, "--baseline", help="A baseline run: compare metrics (never raw loss values "
                                      "of different losses) and each loss against its own start."),
        as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
    ):
        """Run the history rules on a run directory and print what they found."""
        from tailtune.diagnostics import load_run, run_rules

        data = load_run(run)
        findings = run_rules(data, min_severity="ok" if show_all else "warning")
        against = []
        if baseline is not None:
            from tailtune.diagnostics.baseline import compare_with_baseline

            against = compare_with_baseline(data, load_run(baseline))
        if as_json:
            typer.echo(json.dumps([f.to_dict() for f in findings + against], indent=2))
            return
        _print_findings(findings, empty=f"{run}: no problems found (use --all for the details)")
        if against:
            console.print(f"\n[bold]against the baseline {escape(str(baseline))}[/]")
            _print_findings(against, empty="")


def _add_postmortem(app: typer.Typer) -> None:
    @app.command("postmortem")
    def postmortem(
        runs: list[Path] = typer.Argument(..., help="Candidate run directories (several = several seeds)."),
        baseline: list[Path] = typer.Option(..., "--baseline", help="Baseline run directory; repeat for several seeds."),
        out: Path = typer.Option(None, "--out", help="Write the Markdown here instead of printing it."),
        split: str = typer.Option(None, "--split", help="test or validation (default: test when present)."),
    ):
        """Markdown post-mortem of RUN(s) against --baseline run(s): metrics, verdict, causes, next steps."""
        from tailtune.reports import postmortem as make
        from tailtune.reports import write_postmortem
        from tailtune.utils.paths import check_writable

        if out is not None:
            check_writable(out, option="--out", kind="file")
            path = write_postmortem(runs, baseline, out, split=split)
            console.print(f"wrote {path}")
        else:
            typer.echo(make(runs, baseline, split=split), nl=False)


def _add_report(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        run: Path = typer.Argument(..., help="Run directory."),
        baseline: Path = typer.Option(None, "--baseline", help="Baseline run directory to compare with."),
        out: Path = typer.Option(None, "--out", help="Destination (default: RUN/report.html)."),
    ):
        """Write the self-contained report.html of a run."""
        from tailtune.reports import write_report
        from tailtune.utils.paths import check_writable
        from tailtune.utils.runlock import run_dir_lock

        if out is not None:
            check_writable(out, option="--out", kind="file")
            path = write_report(run, baseline, out=out)
        else:  # into the run directory: its lock, like every other writer of it
            if run.is_dir():
                check_writable(run, option="RUN")
            with run_dir_lock(run, create=False, command=f"tailtune report {run}"):
                path = write_report(run, baseline)
        console.print(f"wrote {path}")
