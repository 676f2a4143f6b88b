"""``tailtune evaluate | tune | ensemble | predict``: parse, call :mod:`tailtune.evaluation`, print."""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tailtune.cli.tables import breakdown_tables
from tailtune.errors import DataError, RunDirError, TailtuneError

console = Console(emoji=False)
err = Console(stderr=True, emoji=False)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def _report_table(title: str, reports: dict) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for name in reports:
        table.add_column(name, justify="right")
    keys = (
        "macro_f1",
        "micro_f1",
        "weighted_f1",
        "accuracy",
        "balanced_accuracy",
        "mcc",
        "macro_pr_auc",
        "ece",
        "brier",
    )
    groups = [k for r in reports.values() for k in r if k.startswith("macro_f1@")]  # task.groups headlines
    for k in (*keys, *dict.fromkeys(groups)):
        if any(isinstance(r.get(k), (int, float)) for r in reports.values()):
            table.add_row(
                k, *(_fmt(r.get(k)) if isinstance(r.get(k), (int, float)) else "-" for r in reports.values())
            )
    console.print(table)


def _parse_weights(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise RunDirError(
            f"--weights {text!r}: not comma-separated numbers. Fix: give one number per run, e.g. --weights 0.6,0.4"
        ) from None


@contextmanager
def _user_errors(command: str):
    """Turn a library ValueError about an option value into one CLI message (exit 2)."""
    try:
        yield
    except TailtuneError:
        raise
    except (ValueError, TypeError) as exc:
        raise RunDirError(f"tailtune {command}: {exc}") from None


def _print_warnings(postprocess: dict) -> None:
    """The tuning's warnings (too little validation evidence, a one-class temperature), on stderr."""
    for note in postprocess.get("warnings") or []:
        err.print(f"[yellow]warning[/] {escape(str(note))}", highlight=False, soft_wrap=True)


@contextmanager
def _writing(run: Path, command: str, *, create: bool = False):
    """Hold ``run``'s lock while a command writes into it (a second writer exits 2 naming the holder);
    a folder it cannot write is one message before any work."""
    from tailtune.utils.paths import check_writable
    from tailtune.utils.runlock import run_dir_lock

    if create or run.is_dir():
        check_writable(run, option="--out" if create else "RUN")
    with run_dir_lock(run, create=create, command=f"tailtune {command} {run}"):
        yield


def _run_text_column(run: Path) -> str | None:
    """The text column the run was trained on (``task.json``), or ``None`` when unreadable (loading the
    run reports that)."""
    from tailtune.data import TaskSpec
    from tailtune.utils import rundir

    try:
        return TaskSpec.from_json(Path(run) / rundir.TASK).text_column
    except (TailtuneError, OSError, ValueError):
        return None


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``tune``, ``ensemble`` and ``predict`` to ``app``."""
    _add_evaluate(app)
    _add_tune(app)
    _add_ensemble(app)
    _add_predict(app)


def _add_evaluate(app: typer.Typer) -> None:
    """``tailtune evaluate``."""

    @app.command("evaluate")
    def evaluate_cmd(
        run: Path = typer.Argument(..., help="Run (or ensemble) directory."),
        split: str = typer.Option("test", "--split", help="Split to score (predictions/<split>.npz)."),
        recompute: bool = typer.Option(False, "--recompute", help="Predict the split with the model first."),
        data: Path | None = typer.Option(
            None, "--data", help="Data folder for --recompute (default: recipe's)."
        ),
        trust_remote_code: bool = typer.Option(
            False, "--trust-remote-code",
            help="With --recompute: run the encoder's own Python code (auto_map); only for a model you trust.",
        ),
        text_column: str | None = typer.Option(
            None, "--text-column", help="With --recompute: the text column of that data (default: the recipe's)."
        ),
        label_column: str | None = typer.Option(
            None, "--label-column", help="With --recompute: the label column(s) of that data (default: the recipe's)."
        ),
    ):
        """Score a split with the default and the tuned decision rule; update eval.json."""
        from tailtune.evaluation import evaluate_run

        with _user_errors("evaluate"), _writing(run, "evaluate"):
            entries = evaluate_run(
                run, split=split, recompute=recompute, data=data, trust_remote_code=trust_remote_code,
                text_column=text_column, label_column=label_column,
            )
        tuned = f"{split}_tuned" in entries
        for table in breakdown_tables(f"{split} ({'tuned' if tuned else 'default'} rule)",
                                      entries[f"{split}_tuned" if tuned else split]):
            console.print(table)
        _report_table(
            f"{run} · {split}",
            {
                "default": entries[split],
                **({"tuned": entries[f"{split}_tuned"]} if tuned else {}),
            },
        )
        console.print(f"wrote {run / 'eval.json'}", highlight=False)


def _add_tune(app: typer.Typer) -> None:
    """``tailtune tune``."""

    @app.command("tune")
    def tune_cmd(
        run: Path = typer.Argument(..., help="Run (or ensemble) directory."),
        split: str = typer.Option("validation", "--split", help="Split to tune on (never test)."),
        temperature: str = typer.Option("scalar", "--temperature", help="scalar | per_label | none"),
        min_support: int = typer.Option(
            5,
            "--min-support",
            help="Labels/classes with fewer validation positives keep the global/zero rule.",
        ),
        hierarchy_mode: str | None = typer.Option(
            None, "--hierarchy-mode", help="add_parent | drop_child (multilabel)."
        ),
        binary_metric: str = typer.Option(
            "macro_f1", "--binary-metric", help="macro_f1 | f1 (binary tasks)."
        ),
        bootstrap: int = typer.Option(
            100,
            "--bootstrap",
            help="Resamples for the bagged rule and its out-of-bag check; 0 = one exact fit on validation.",
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
        margin: float = typer.Option(
            0.5, "--margin", help="Keep a tuned part when its out-of-bag gain exceeds this many sds (0 = any gain)."
        ),
    ):
        """Fit temperature and thresholds/biases on validation; write postprocess.json."""
        from tailtune.evaluation import tune_run

        with _user_errors("tune"), _writing(run, "tune"):
            s = tune_run(
                run,
                split=split,
                temperature=temperature,
                min_support=min_support,
                hierarchy_mode=hierarchy_mode,
                binary_metric=binary_metric,
                bootstrap=bootstrap,
                seed=seed,
                margin=margin,
            )
        _print_warnings(s["postprocess"])
        boot = s["postprocess"].get("bootstrap") or {}
        if boot.get("resamples"):
            lo, hi = boot["oob_gain_ci"]
            console.print(
                f"out-of-bag gain of a tuned rule over the default ({boot['resamples']} resamples): "
                f"{boot['oob_gain']:+.4f} [{lo:+.4f}, {hi:+.4f}]; kept {len(boot['kept'])} of "
                f"{len(boot['kept']) + len(boot['reverted'])} parts"
                + (f", reverted to the default: {', '.join(boot['reverted'][:8])}" if boot["reverted"] else "")
                + ("..." if len(boot["reverted"]) > 8 else ""),
                highlight=False,
            )
        console.print(
            f"{split} macro-F1: default {_fmt(s['validation_default'])} -> tuned {_fmt(s['validation_tuned'])} "
            f"(gain {s['gain']:+.4f})",
            highlight=False,
        )
        if s["test_default"] is not None:
            console.print(
                f"test macro-F1: default {_fmt(s['test_default'])} -> tuned {_fmt(s['test_tuned'])}",
                highlight=False,
            )
        cal = s["postprocess"].get("calibration")
        if cal:
            console.print(
                f"temperature {cal['temperature']}: ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f}",
                highlight=False,
            )
        console.print(f"wrote {run / 'postprocess.json'}", highlight=False)


def _add_ensemble(app: typer.Typer) -> None:
    """``tailtune ensemble``."""

    @app.command("ensemble")
    def ensemble_cmd(
        runs: list[Path] = typer.Argument(..., help="Two or more run directories of the same task and data."),
        out: Path = typer.Option(..., "--out", "-o", help="Ensemble directory to write."),
        weights: str | None = typer.Option(None, "--weights", help="Comma-separated weights, one per run."),
        temperature: str = typer.Option("scalar", "--temperature", help="scalar | per_label | none"),
        min_support: int = typer.Option(5, "--min-support"),
        hierarchy_mode: str | None = typer.Option(None, "--hierarchy-mode"),
    ):
        """Average the runs' probabilities, re-tune on validation, write a run-like directory."""
        from tailtune.evaluation import build_ensemble

        with _user_errors("ensemble"), _writing(out, "ensemble", create=True):
            w = _parse_weights(weights)
            s = build_ensemble(
                [str(r) for r in runs],
                out,
                weights=w,
                temperature=temperature,
                min_support=min_support,
                hierarchy_mode=hierarchy_mode,
            )
        _print_warnings(s.get("postprocess") or {})
        if s.get("members_test_macro_f1"):
            console.print(
                "members' test macro-F1: " + ", ".join(_fmt(x) for x in s["members_test_macro_f1"]),
                highlight=False,
            )
        console.print(
            f"ensemble validation macro-F1 {_fmt(s['validation_tuned'])}; test default {_fmt(s['test_default'])} "
            f"-> tuned {_fmt(s['test_tuned'])}",
            highlight=False,
        )
        console.print(f"wrote {out}", highlight=False)


def _add_predict(app: typer.Typer) -> None:
    """``tailtune predict``."""

    @app.command("predict")
    def predict_cmd(
        run: Path = typer.Argument(..., help="Run (or ensemble) directory."),
        input: Path | None = typer.Option(
            None, "--input", "-i", help="Text file (one text a line), or CSV/TSV/JSONL with a text column."
        ),
        text_column: str | None = typer.Option(
            None, "--text-column", help="Column (field) of a CSV/TSV/JSONL --input holding the texts "
            "(default: the run's text column, else text)."
        ),
        text: list[str] = typer.Option([], "--text", "-t", help="A text to classify (repeatable)."),
        output: Path | None = typer.Option(None, "--output", "-o", help="JSONL file (default: stdout)."),
        batch_size: int = typer.Option(64, "--batch-size"),
        device: str = typer.Option("cpu", "--device"),
        max_length: int | None = typer.Option(None, "--max-length", help="Truncate at this many tokens."),
        trust_remote_code: bool = typer.Option(
            False, "--trust-remote-code",
            help="Run the encoder's own Python code (auto_map); only for a model you trust.",
        ),
    ):
        """Predict labels and probabilities (JSONL) with the run's tuned decision rule."""
        from tailtune.evaluation.inputs import InputTexts, read_texts, write_jsonl
        from tailtune.evaluation.predictor import Predictor
        from tailtune.utils.io import dumps_json

        if (input is None) == (not text):
            raise DataError('pass exactly one of --input FILE or --text "..." (repeatable)')
        if text_column is not None and input is None:
            raise DataError("--text-column names the column of an --input file; drop it with --text")
        if output is not None:
            from tailtune.utils.paths import check_writable

            check_writable(output, option="--output", kind="file")
        if input is not None:
            items = read_texts(input, text_column=text_column, default_column=_run_text_column(run))
        else:
            empty = [i + 1 for i, t in enumerate(text) if not t.strip()]
            if len(empty) == len(text):
                raise DataError("--text is empty; pass the text to classify")
            items = InputTexts(
                texts=[t for t in text if t.strip()],
                lines=[i + 1 for i, t in enumerate(text) if t.strip()],
                skipped=empty,
            )
        with _user_errors("predict"):
            predictor = Predictor.from_run_dir(
                run, device=device, batch_size=batch_size, max_length=max_length, trust_remote_code=trust_remote_code
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported below, once
            rows = predictor.predict(items.texts)
        for note in items.notes:
            err.print(f"note: {note}", highlight=False)
        key = "line" if input is not None else "index"
        rows = [{key: n, **r} for n, r in zip(items.lines, rows, strict=True)]
        if items.skipped:
            what = "empty line(s)" if input is not None else "empty --text value(s)"
            err.print(f"note: skipped {len(items.skipped)} {what}: {items.skipped[:10]}", highlight=False)
        if predictor.last_truncated:
            err.print(
                f"note: {predictor.last_truncated} text(s) longer than {predictor.max_length} tokens were truncated",
                highlight=False,
            )
        if output is not None:
            write_jsonl(output, rows)
            err.print(f"wrote {len(rows)} predictions to {output}", highlight=False)
        else:
            for r in rows:
                sys.stdout.write(dumps_json(r, indent=None) + "\n")

