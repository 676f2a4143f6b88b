"""``tailtune analyze DATA``: class distribution, weights per scheme, lengths, leakage; JSON + plots."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tailtune.data.kinds import task_kind

console = Console(emoji=False)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def _trained(weights: dict, scheme: str, name: str, key: str = "per_class") -> float | None:
    """The weight of ``name`` that ``weighting.scheme: <scheme>`` trains with (``weights.training``;
    ``key="per_cell"``: an aspect cell's under ``weighting.per_aspect: true``)."""
    per = (weights.get("training") or {}).get(scheme, {}).get(key) or {}
    return per.get(name)


def _class_table(stats: dict) -> Table:
    splits = list(stats["counts"])
    weights = stats["weights"]
    schemes = [s for s in weights["schemes"] if s != "uniform"]
    lengths = stats["lengths"]["splits"]["train"]["per_class"]
    train = stats["counts"]["train"]
    total = sum(train.values()) or 1
    table = Table(title=f"{stats['task']['kind']} - {len(stats['classes'])} classes", title_justify="left")
    short = {"validation": "val", "inverse": "w inv", "sqrt_inverse": "w sqrt", "effective_number": "w eff"}
    table.add_column("class", no_wrap=True)
    for s in splits:
        table.add_column(short.get(s, s), justify="right")
    table.add_column("train%", justify="right")
    for s in schemes:
        table.add_column(short.get(s, f"w {s}"), justify="right")
    per_aspect = task_kind(stats["task"]["kind"]).per_aspect
    if not per_aspect:
        table.add_column("len", justify="right")
    for name in sorted(stats["classes"], key=lambda n: -train[n]):
        row = [escape(name)] + [f"{stats['counts'][s][name]:,}" for s in splits] + [f"{100 * train[name] / total:.2f}"]
        if "per_scheme" in weights:
            row += [_fmt(_trained(weights, s, name)) if _trained(weights, s, name) is not None else "-" for s in schemes]
        else:  # aspect cells: what weighting.per_aspect: true trains each cell with
            row += [_fmt(w) if (w := _trained(weights, s, name, "per_cell")) is not None else "-" for s in schemes]
        if not per_aspect:
            row.append(f"{lengths[name]['mean']:.1f}" if lengths.get(name, {}).get("count") else "-")
        style = "red" if 0 < train[name] < 10 else None
        table.add_row(*row, style=style)
    return table


def _print(stats: dict, out: Path | None, written) -> None:
    task = stats["task"]
    # label names, paths and messages quote user data: escaped, so "[/b]" is text, not markup
    head = f"[bold]{escape(stats['source'])}[/]: {task['kind']}, " + ", ".join(f"{s} {n:,}" for s, n in stats["rows"].items())
    console.print(head, highlight=False)
    if task_kind(task["kind"]).per_aspect:
        console.print(escape(f"aspects: {', '.join(task['labels'])}; polarities: {', '.join(task['polarities'])} (+ absent)"))
    for note in stats["notes"]:
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False)
    console.print(_class_table(stats))
    imb = stats.get("imbalance")
    if imb:
        console.print(f"imbalance ratio (train): [bold]{imb['ratio']:.1f}:1[/] ({escape(str(imb['largest']))} "
                      f"{imb['largest_count']:,} / {escape(str(imb['smallest']))} {imb['smallest_count']:,})", highlight=False)
    if "multilabel" in stats:
        ml = stats["multilabel"]
        console.print("labels per row: " + ", ".join(f"{s} {v:.2f}" for s, v in ml["cardinality"].items())
                      + "; rows without a label: " + ", ".join(f"{s} {v}" for s, v in ml["rows_without_label"].items()))
    lens = stats["lengths"]
    overall = lens["splits"]["train"]["overall"]
    console.print(f"length ({lens['unit']}, train): mean {overall['mean']:.1f}, p50 {overall['p50']:.0f}, "
                  f"p95 {overall['p95']:.0f}, max {overall['max']}", highlight=False)
    within = stats["leakage"]["within"]
    console.print("duplicate texts within splits: " + ", ".join(f"{s} {n}" for s, n in within.items()))
    for w in stats["warnings"]:
        console.print(f"[bold yellow]warning[/] ({w['code']}): {escape(w['message'])}\n  [green]remedy:[/] {escape(w['remedy'])}",
                      highlight=False)
    if not stats["warnings"]:
        console.print("[green]no warnings[/]")
    info = task_kind(stats["task"]["kind"])
    if info.per_aspect:
        what = ("the per-cell class weight each scheme trains with under weighting.per_aspect: true (mean 1 over "
                "the cells, absent included; the default pools the polarities over the aspects)")
    elif info.sigmoid:
        what = "the pos_weight each scheme trains with (positives vs negatives; a binary task's negative class 1)"
    else:
        what = "the class weight each scheme trains with (mean 1)"
    console.print(f"[dim]w = {what}; len = mean train length; red = under 10 train examples[/]")
    if out is not None:
        console.print(escape(f"wrote {len(written)} files to {out}: " + ", ".join(p.name for p in written)), highlight=False)
    else:
        console.print("[dim]add --out DIR to write analysis.json and the plots[/]")


def register(app: typer.Typer) -> None:
    """Add ``analyze`` to ``app``."""

    @app.command("analyze")
    def analyze_command(
        data: str = typer.Argument(..., help="A folder of train/validation/test files, one file, a save_to_disk folder or a hub name."),
        task: str = typer.Option(None, "--task", help="Task kind (binary, multiclass, multilabel, aspects) or a task.json file."),
        text_column: str = typer.Option(None, "--text-column", help="Text column (default: text, sentence, content, ...)."),
        label_column: str = typer.Option(None, "--label-column", help="Label column, or several comma-separated 0/1 columns."),
        label_sep: str = typer.Option(None, "--label-sep", help="Split string labels on this separator (multi-label)."),
        out: Path = typer.Option(None, "--out", help="Folder for analysis.json and the PNG plots."),
        tokenizer: str = typer.Option(None, "--tokenizer", help="Measure lengths with this tokenizer (default: whitespace tokens)."),
        seed: int = typer.Option(13, "--seed", help="Seed of the validation split carved when there is none."),
        val_fraction: float = typer.Option(0.1, "--val-fraction", help="Fraction of train held out when there is no validation split."),
        drop_empty_text: bool = typer.Option(False, "--drop-empty-text", help="Drop rows whose text is empty instead of failing."),
        drop_unused_labels: bool = typer.Option(
            False, "--drop-unused-labels", help="Leave out declared labels without training examples (no renumbering)."
        ),
        no_plots: bool = typer.Option(False, "--no-plots", help="Write analysis.json only."),
    ):
        """Show how skewed a dataset is and what each class-weighting scheme would do about it."""
        from tailtune.diagnostics.analysis import analyze, write_analysis
        from tailtune.utils.paths import check_writable

        if out is not None:
            check_writable(out, option="--out")
        if tokenizer is not None:  # the packaged all-MiniLM-L6-v2 for its hub id, offline (as train does)
            from tailtune.models.classifier import resolve_encoder_name

            tokenizer = resolve_encoder_name(tokenizer)
        _, stats = analyze(
            data, task=task, text_column=text_column, label_column=label_column, label_sep=label_sep, seed=seed,
            val_fraction=val_fraction, empty_text="drop" if drop_empty_text else "error", tokenizer=tokenizer,
            unused_labels="drop" if drop_unused_labels else "error",
        )
        written = write_analysis(stats, out, plots=not no_plots) if out is not None else []
        _print(stats, out, written)
