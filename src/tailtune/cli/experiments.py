"""``tailtune screen``, ``ablate``, ``compare`` and ``sweep``: parse, call :mod:`tailtune.experiments`, print."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(emoji=False)


def _ci(summary: dict | None) -> str:
    if not summary or summary.get("mean") is None:
        return "-"
    lo, hi = summary.get("ci_low"), summary.get("ci_high")
    if lo is None or hi is None:
        return f"{summary['mean']:.4f}"
    return f"{summary['mean']:.4f} [{lo:.3f}, {hi:.3f}]"


def _diff(entry: dict | None) -> str:
    if not entry:
        return "baseline"
    lo, hi = entry["bootstrap_ci"]
    p = entry.get("permutation_p")
    ptxt = f" p={p:.3f}" if p is not None else ""
    return f"{entry['diff']:+.4f} [{lo:+.3f}, {hi:+.3f}]{ptxt} {entry['verdict']}"


def _screen_table(result) -> Table:
    minority = result.minority[:4]
    table = Table(title=f"screen: {escape(str(result.data))} ({len(result.seeds)} seeds, test split, mean [95% CI])",
                  title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("recipe")
    table.add_column("macro-F1")
    table.add_column("tuned macro-F1")
    for name in minority:
        table.add_column(f"recall {escape(str(name))}")
    table.add_column(f"vs {result.baseline} (default rule)")
    for entry in result.recipes:
        if entry["status"] != "ok":
            table.add_row("-", escape(entry["spec"]), "skipped", escape(entry["reason"][:60]), *["" for _ in minority], "")
            continue
        table.add_row(
            str(entry["rank"]),
            escape(entry["spec"]),
            _ci(entry["default"].get("macro_f1")),
            _ci(entry["tuned"].get("macro_f1")),
            *(_ci(entry["default"].get(f"recall/{m}")) for m in minority),
            _diff((entry.get("vs_baseline") or {}).get("default")),
        )
    return table


def register(app: typer.Typer) -> None:
    """Add ``screen``, ``ablate``, ``compare`` and ``sweep`` to ``app``."""
    _add_screen(app)
    _add_ablate(app)
    _add_compare(app)
    _add_sweep(app)


def _add_screen(app: typer.Typer) -> None:
    """``tailtune screen``."""

    @app.command("screen")
    def screen_cmd(
        data: Path = typer.Argument(..., help="Data folder with train/validation/test files."),
        recipes: str = typer.Option(
            "ce,weighted-ce,focal:1,focal:2,class-balanced,label-smoothing,supcon,asl,logit-adjust",
            "--recipes", help="Comma-separated specs: preset[:value] or recipe.yaml."),
        seeds: int = typer.Option(5, "--seeds", help="Seeds per recipe."),
        seed: int = typer.Option(13, "--seed", help="First seed."),
        model: str | None = typer.Option(None, "--model", help="Encoder folder or hub id (default MiniLM)."),
        out: Path = typer.Option(Path("runs/screen"), "--out", "-o", help="Folder for screen.json."),
        max_length: int = typer.Option(128, "--max-length", help="Tokens per text for the encoder."),
        batch_size: int = typer.Option(64, "--batch-size", help="Texts per encoder batch."),
        precision: str = typer.Option("auto", "--precision", help="Encoder precision: auto, fp32, bf16."),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embedding cache folder."),
        hidden: int = typer.Option(256, "--hidden", help="Head hidden units (0 = linear head)."),
        baseline: str | None = typer.Option(None, "--baseline", help="Recipe compared against (default ce)."),
        rank_by: str = typer.Option("macro_f1", "--rank-by", help="macro_f1 or tuned_macro_f1."),
        threads: int | None = typer.Option(None, "--threads", help="Torch threads for the encoder."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ):
        """Rank recipes cheaply: frozen-encoder embeddings (cached) + a small head per recipe x seed."""
        from tailtune.experiments.screen import HeadConfig, screen
        from tailtune.utils.paths import check_writable

        check_writable(out, option="--out")
        result = screen(data, recipes=recipes, seeds=seeds, seed=seed, model=model, out=out,
                        max_length=max_length, batch_size=batch_size, precision=precision, cache_dir=cache_dir,
                        head=HeadConfig(hidden=hidden), baseline=baseline, rank_by=rank_by, threads=threads,
                        show_progress=not quiet, console=console)
        console.print(_screen_table(result))
        for entry in result.ranked():
            vs = (entry.get("vs_baseline") or {}).get("default")
            if vs is not None:
                console.print(f"{escape(entry['spec'])} vs {escape(result.baseline)}: macro-F1 {_diff(vs)}", highlight=False,
                              soft_wrap=True)
        t = result.timing
        hit = "cache hit" if result.embedding["cache_hit"] else "computed"
        console.print(f"embeddings {hit} in {t['embedding_s']:.1f} s, heads {t['heads_s']:.1f} s, total "
                      f"{t['total_s']:.1f} s; wrote {out / 'screen.json'}", highlight=False)


def _add_ablate(app: typer.Typer) -> None:
    """``tailtune ablate``."""

    @app.command("ablate")
    def ablate_cmd(
        recipes: list[str] = typer.Argument(..., help="Recipes: preset[:value] or recipe.yaml (several)."),
        seeds: int = typer.Option(3, "--seeds", help="Seeds per recipe."),
        seed: int = typer.Option(13, "--seed", help="First seed."),
        data: str | None = typer.Option(None, "--data", help="Sets data.path of every recipe."),
        set_: list[str] = typer.Option([], "--set", help="Override for every recipe (repeatable)."),
        out: Path = typer.Option(Path("runs/ablation"), "--out", "-o", help="Ablation folder."),
        workers: int = typer.Option(1, "--workers", help="Parallel training subprocesses (1 = in order)."),
        gpus: str | None = typer.Option(None, "--gpus", help="Comma list of CUDA_VISIBLE_DEVICES for workers."),
        compare_after: bool = typer.Option(True, "--compare/--no-compare", help="Compare the runs at the end."),
    ):
        """Full fine-tunes of several recipes over seeds (run dirs under --out), then compare them."""
        from tailtune.experiments.ablate import ablate, compare
        from tailtune.utils.io import atomic_write_json
        from tailtune.utils.paths import check_writable

        check_writable(out, option="--out")
        overrides = ([f"data.path={data}"] if data else []) + list(set_)
        specs = [r for item in recipes for r in item.split(",") if r]
        result = ablate(specs, seeds=seeds, seed=seed, out_dir=out, overrides=overrides, workers=workers,
                        gpus=gpus.split(",") if gpus else None,
                        log=lambda m: console.print(m, highlight=False))
        failed = [j for j in result.jobs if j.status == "failed"]
        if failed:
            console.print(f"[red]{len(failed)} run(s) failed[/]; see the seed-*.log files under {out}")
        if compare_after and result.run_dirs:
            summary = compare(result.run_dirs)
            atomic_write_json(out / "compare.json", summary)
            _print_compare(summary)
        if failed:
            raise typer.Exit(1)


def _add_compare(app: typer.Typer) -> None:
    """``tailtune compare``."""

    @app.command("compare")
    def compare_cmd(
        runs: list[Path] = typer.Argument(..., help="Run directories (grouped by recipe)."),
        baseline: str | None = typer.Option(None, "--baseline", help="Group compared against (default ce)."),
        resamples: int = typer.Option(2000, "--resamples", help="Bootstrap/permutation resamples."),
        alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the verdict."),
        output: Path | None = typer.Option(None, "--output", "-o", help="Write the comparison JSON here."),
    ):
        """Mean/sd/95% CI per metric and recipe; paired tests on the same test items; a verdict."""
        from tailtune.experiments.ablate import compare
        from tailtune.utils.io import atomic_write_json
        from tailtune.utils.paths import check_writable

        if output is not None:
            check_writable(output, option="--output", kind="file")
        summary = compare(runs, baseline=baseline, n_resamples=resamples, alpha=alpha)
        if output is not None:
            atomic_write_json(output, summary)
        _print_compare(summary)


def _add_sweep(app: typer.Typer) -> None:
    """``tailtune sweep``."""

    @app.command("sweep")
    def sweep_cmd(
        recipe: str = typer.Argument(..., help="Preset spec or recipe.yaml."),
        space: Path = typer.Option(..., "--space", help="SPACE.yaml: dotted path -> range."),
        trials: int = typer.Option(10, "--trials", help="Trials this worker runs."),
        storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL (default SQLite in --out)."),
        study: str | None = typer.Option(None, "--study", help="Study name (workers share it)."),
        out: Path = typer.Option(Path("runs/sweep"), "--out", "-o", help="Trial run dirs and the SQLite file."),
        data: str | None = typer.Option(None, "--data", help="Data path (sets data.path; needed for screen)."),
        objective: str = typer.Option("train", "--objective", help="train (fine-tunes) or screen (heads)."),
        metric: str = typer.Option("macro_f1", "--metric", help="Validation metric to optimise."),
        set_: list[str] = typer.Option([], "--set", help="Override applied before the sampled values."),
        model: str | None = typer.Option(None, "--model", help="Encoder for --objective screen."),
        cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embedding cache (screen)."),
        seed: int | None = typer.Option(None, "--seed", help="TPE sampler seed (one worker only)."),
    ):
        """Optuna TPE sweep with pruning from the per-epoch validation metric."""
        from tailtune.experiments.sweep import sweep
        from tailtune.utils.paths import check_writable

        check_writable(out, option="--out")
        result = sweep(recipe, space=space, trials=trials, out_dir=out, storage=storage, study_name=study,
                       metric=metric, objective=objective, data=data, overrides=set_, seed=seed, model=model,
                       cache_dir=cache_dir, log=lambda m: console.print(m, highlight=False))
        table = Table(title=f"study {result.study_name} ({result.storage.split('://')[0]})", title_justify="left")
        for col in ("trial", "state", metric, "params"):
            table.add_column(col)
        for row in result.trials:
            value = "-" if row["value"] is None else f"{row['value']:.4f}"
            table.add_row(str(row["number"]), row["state"], value, json.dumps(row["params"]))
        console.print(table)
        if result.best_value is not None:
            console.print(f"best {metric} {result.best_value:.4f} with {json.dumps(result.best_params)}",
                          highlight=False)


def _print_compare(summary: dict) -> None:
    metrics = list(next(iter(summary["groups"].values()))["metrics"])
    table = Table(title=f"test split, mean [95% CI] over seeds; baseline {escape(summary['baseline'])}", title_justify="left")
    table.add_column("recipe")
    table.add_column("runs", justify="right")
    for m in metrics:
        table.add_column(m)
    for name, group in summary["groups"].items():
        table.add_row(escape(name), str(len(group["runs"])), *(_ci(group["metrics"][m]) for m in metrics))
    console.print(table)
    for name, entry in summary["comparisons"].items():
        console.print(f"{escape(name)} vs {escape(summary['baseline'])}: macro-F1 {_diff(entry)} "
                      "(paired bootstrap 95% CI, permutation p)", highlight=False, soft_wrap=True)
