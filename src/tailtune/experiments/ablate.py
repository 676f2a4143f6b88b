"""Multi-seed ablations with full fine-tunes (``ablate``) and their statistical comparison (``compare``).

``ablate(recipes, seeds=3, out_dir=...)`` writes one resolved recipe per recipe x seed under
``<out_dir>/recipes/`` and trains each with :func:`tailtune.training.train` into
``<out_dir>/<recipe label>/seed-<seed>/`` — one after another in this process, or with
``workers > 1`` as that many parallel ``tailtune train`` subprocesses (each a separate Python
process; on a multi-GPU machine give each its own ``CUDA_VISIBLE_DEVICES`` with ``gpus``). A run
directory that already holds ``eval.json`` is finished and skipped, so an interrupted ablation is
continued by running the same command again.

``compare(run_dirs)`` groups finished runs by recipe (the recipe ``name`` in ``recipe.yaml``, else a
hash of the recipe without seed and output), summarises each metric of ``eval.json``'s test split
per group (mean, sd, 95% t-interval over seeds, :func:`tailtune.experiments.stats.summarize`), and
tests every group against the baseline group on the SAME test items from
``predictions/test.npz`` (the targets must agree item for item): a paired bootstrap interval and a
paired permutation p-value of the macro-F1 difference over the stacked seeds, plus Welch's interval
over the seed-level scores. The verdict is an improvement or a regression only when both intervals
exclude zero and the permutation p-value is below ``alpha``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tailtune.errors import RecipeError, RunDirError, check_int
from tailtune.evaluation.runs import load_predictions, open_run
from tailtune.experiments import stats
from tailtune.metrics import decode
from tailtune.metrics._task import int_targets
from tailtune.recipe import load_recipe, recipe_from_dict
from tailtune.recipe.overrides import apply_overrides
from tailtune.utils import rundir
from tailtune.utils.io import atomic_write_text
from tailtune.utils.runlock import remove_abandoned

__all__ = ["AblationJob", "AblationResult", "ablate", "compare", "plan_ablation", "recipe_label", "COMPARE_METRICS"]

COMPARE_METRICS = ("macro_f1", "micro_f1", "accuracy", "balanced_accuracy", "mcc")


def recipe_label(spec: str) -> str:
    """A folder-safe label for a recipe spec (``focal:1`` -> ``focal-1``, ``a/b.yaml`` -> ``b``)."""
    base = Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-") or "recipe"


@dataclass
class AblationJob:
    label: str
    seed: int
    recipe_path: Path
    run_dir: Path
    status: str = "pending"  # pending | done | skipped | failed
    seconds: float | None = None
    error: str | None = None


@dataclass
class AblationResult:
    out_dir: Path
    jobs: list[AblationJob] = field(default_factory=list)

    @property
    def run_dirs(self) -> list[Path]:
        return [j.run_dir for j in self.jobs if j.status in ("done", "skipped")]


def plan_ablation(
    recipes: str | Sequence[str],
    *,
    seeds: int = 3,
    seed: int = 13,
    out_dir: str | os.PathLike,
    overrides: Iterable[str] = (),
) -> list[AblationJob]:
    """Resolve every recipe x seed, validate it and write it to ``<out_dir>/recipes/<label>-seed<seed>.yaml``.

    ``overrides`` (``"data.path=..."``) apply to every recipe before ``train.seed`` and ``output``.
    Raises :class:`RecipeError` before anything is written when any recipe is invalid.
    """
    from tailtune.experiments.screen import parse_recipe_specs  # loads torch: only when planning

    check_int("seeds", seeds, example=3)
    specs = parse_recipe_specs(recipes)
    out = Path(out_dir)
    overrides = list(overrides)
    jobs, texts = [], []
    for spec in specs:
        label = recipe_label(spec.spec)
        for s in range(seed, seed + seeds):
            run_dir = out / label / f"seed-{s}"
            raw = apply_overrides(spec.raw, [*overrides, ("train.seed", s), ("output", str(run_dir))])
            raw.setdefault("name", spec.spec)
            recipe_from_dict(raw, source=spec.source)  # every error before any training starts
            path = out / "recipes" / f"{label}-seed{s}.yaml"
            jobs.append(AblationJob(label, s, path, run_dir))
            texts.append(yaml.safe_dump(raw, sort_keys=False))
    for job, text in zip(jobs, texts):
        atomic_write_text(job.recipe_path, text)
    return jobs


def _finished(run_dir: Path) -> bool:
    return (run_dir / rundir.EVAL).is_file() and (run_dir / rundir.PREDICTIONS_DIR / "test.npz").is_file()


def ablate(
    recipes: str | Sequence[str],
    *,
    seeds: int = 3,
    seed: int = 13,
    out_dir: str | os.PathLike,
    overrides: Iterable[str] = (),
    workers: int = 1,
    gpus: Sequence[str] | None = None,
    callbacks: Sequence = (),
    log=None,
) -> AblationResult:
    """Train every recipe x seed (see the module docstring); return the jobs and their run dirs.

    Args:
        recipes: specs as for ``tailtune screen`` (presets ``name[:value]`` or recipe files).
        seeds: seeds per recipe (``seed, seed + 1, ...``).
        out_dir: the ablation folder.
        overrides: ``--set`` strings applied to every recipe (e.g. ``data.path=...``).
        workers: 1 = in this process, one after another; N > 1 = N parallel subprocesses.
        gpus: with workers, ``CUDA_VISIBLE_DEVICES`` values handed out round-robin.
        callbacks: Trainer callbacks for in-process runs.
        log: ``callable(str)`` for one line per finished job.
    """
    check_int("workers", workers)
    jobs = plan_ablation(recipes, seeds=seeds, seed=seed, out_dir=out_dir, overrides=overrides)
    say = log or (lambda _msg: None)
    todo = []
    for job in jobs:
        if _finished(job.run_dir):
            job.status = "skipped"
            say(f"{job.label} seed {job.seed}: already finished in {job.run_dir}")
        else:
            todo.append(job)
    if workers == 1:
        from tailtune.training import train  # torch + transformers: only for in-process runs

        for job in todo:
            start = time.perf_counter()
            train(load_recipe(job.recipe_path), callbacks=callbacks)
            job.status, job.seconds = "done", round(time.perf_counter() - start, 3)
            say(f"{job.label} seed {job.seed}: done in {job.seconds:.1f} s -> {job.run_dir}")
        return AblationResult(Path(out_dir), jobs)

    _run_workers(todo, workers=workers, gpus=gpus, say=say)
    return AblationResult(Path(out_dir), jobs)


#: seconds an interrupted worker gets to stop (it saves nothing half-written) before it is killed
WORKER_STOP_TIMEOUT = 30.0


def _start_worker(job: AblationJob, env: dict) -> tuple[subprocess.Popen, Any]:
    job.run_dir.parent.mkdir(parents=True, exist_ok=True)
    logf = open(job.run_dir.parent / f"seed-{job.seed}.log", "w", encoding="utf-8")  # noqa: SIM115
    cmd = [sys.executable, "-m", "tailtune.cli.main", "train", str(job.recipe_path), "--quiet"]
    return subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env), logf


def _finish_worker(job: AblationJob, proc: subprocess.Popen, start: float, logf, say) -> None:
    """Record a worker's outcome: done only with exit 0 AND a finished run directory."""
    logf.close()
    job.seconds = round(time.perf_counter() - start, 3)
    if proc.returncode == 0 and _finished(job.run_dir):
        job.status = "done"
        say(f"{job.label} seed {job.seed}: done in {job.seconds:.1f} s -> {job.run_dir}")
        return
    job.status = "failed"
    tail = Path(logf.name).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    what = "interrupted" if proc.returncode in (130, -2) else f"exit {proc.returncode}"
    job.error = f"{what}: " + " | ".join(tail)
    say(f"{job.label} seed {job.seed}: FAILED ({job.error}); log {logf.name}")


def _stop_workers(running: list, say) -> None:
    """Ctrl-C in the parent: pass SIGINT on to every worker (each exits 130 with its files whole),
    wait for them, kill what does not stop in time; their jobs are marked interrupted."""
    grace = time.monotonic() + 2.0  # Ctrl-C at a terminal reaches the workers too: let them stop first
    while time.monotonic() < grace and any(proc.poll() is None for _, proc, _, _ in running):
        time.sleep(0.05)
    for _job, proc, _, _ in running:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + WORKER_STOP_TIMEOUT
    for job, proc, _, logf in running:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            remove_abandoned(job.run_dir)  # SIGKILL left the worker's lock file behind
        logf.close()
        job.status, job.error = "failed", f"interrupted (worker exit {proc.returncode})"
        say(f"{job.label} seed {job.seed}: interrupted; run the same command again to continue")


def _run_workers(todo: list[AblationJob], *, workers: int, gpus, say) -> None:
    """Train ``todo`` as up to ``workers`` parallel ``tailtune train`` subprocesses."""
    running: list[tuple[AblationJob, subprocess.Popen, float, Any]] = []
    queue = list(todo)
    slot = 0
    try:
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                env = dict(os.environ)
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = str(gpus[slot % len(gpus)])
                    slot += 1
                proc, logf = _start_worker(job, env)
                running.append((job, proc, time.perf_counter(), logf))
            time.sleep(0.2)
            for entry in list(running):
                job, proc, start, logf = entry
                if proc.poll() is None:
                    continue
                running.remove(entry)
                _finish_worker(job, proc, start, logf, say)
    except KeyboardInterrupt:
        _stop_workers(running, say)
        raise


# ------------------------------------------------------------------------------------- compare
def _group_key(recipe: dict) -> str:
    if recipe.get("name"):
        return str(recipe["name"])
    rest = {k: v for k, v in recipe.items() if k not in ("output", "tailtune_version")}
    rest["train"] = {k: v for k, v in (rest.get("train") or {}).items() if k != "seed"}
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"recipe-{digest}"


def _load_run(path: Path) -> dict:
    run = open_run(path)
    recipe_path = path / rundir.RECIPE
    if not recipe_path.is_file():
        raise RunDirError(f"{path}: no {rundir.RECIPE}; compare needs finished training runs. Fix: pass run directories")
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8")) or {}
    eval_path = path / rundir.EVAL
    if not eval_path.is_file():
        raise RunDirError(f"{path}: no {rundir.EVAL}; the run did not finish. Fix: resume it or leave it out")
    evaluation = json.loads(eval_path.read_text(encoding="utf-8"))
    if "test" not in evaluation:
        raise RunDirError(f"{eval_path}: no 'test' split; compare scores runs on their test items. Fix: train "
                          "with a test split")
    logits, targets = load_predictions(run, "test")
    return {"path": path, "task": run.task, "recipe": recipe, "eval": evaluation["test"],
            "logits": logits, "targets": targets, "seed": (recipe.get("train") or {}).get("seed")}


def compare(
    run_dirs: Sequence[str | os.PathLike],
    *,
    baseline: str | None = None,
    metrics: Sequence[str] = COMPARE_METRICS,
    n_resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Group runs by recipe, summarise their test metrics and test each group against ``baseline``.

    Returns a JSON-ready dict: ``groups`` (name -> runs, per-metric summaries), ``baseline``,
    ``comparisons`` (name -> bootstrap/permutation/Welch figures and the verdict).

    Raises:
        RunDirError: a directory that is not a finished run, runs of different tasks, or runs whose
            test targets differ (not the same test items, so no paired test).
    """
    if not run_dirs:
        raise RunDirError("compare: no run directories given. Fix: pass RUN... (e.g. ablation/*/seed-*)")
    stats.check_resamples(n_resamples)  # checked even when there is nothing to test (one group)
    stats.check_alpha(alpha)
    runs = [_load_run(Path(p)) for p in run_dirs]
    task = runs[0]["task"]
    ref = np.asarray(runs[0]["targets"])
    for r in runs[1:]:
        if r["task"].to_dict() != task.to_dict():
            raise RunDirError(f"{r['path']}: its task differs from {runs[0]['path']}'s; compare runs of one task")
        if np.asarray(r["targets"]).shape != ref.shape or not np.array_equal(np.asarray(r["targets"]), ref):
            raise RunDirError(
                f"{r['path']}: its test targets differ from {runs[0]['path']}'s, so the runs were not scored on "
                "the same test items. Fix: compare runs trained on the same data"
            )
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(_group_key(r["recipe"]), []).append(r)
    names = list(groups)
    if baseline is None:
        baseline = "ce" if "ce" in groups else names[0]
    elif baseline not in groups:
        raise RecipeError(f"--baseline {baseline!r} is not one of the groups {names}")
    y = int_targets(ref, task)
    out_groups = {}
    preds = {}
    for name, members in groups.items():
        summary = {m: stats.summarize([r["eval"].get(m, float("nan")) if isinstance(r["eval"].get(m), (int, float))
                                       else float("nan") for r in members]).to_dict() for m in metrics}
        out_groups[name] = {"runs": [str(r["path"]) for r in members],
                            "seeds": [r["seed"] for r in members], "metrics": summary}
        preds[name] = [decode(r["logits"], task) for r in members]
    comparisons = {}
    for name in names:
        if name == baseline:
            continue
        a, b = preds[baseline], preds[name]
        boot = stats.paired_bootstrap(y, a, b, task=task, n_resamples=n_resamples, seed=seed)
        perm_p = None
        if len(a) == len(b):
            perm_p = stats.paired_permutation(y, a, b, task=task, n_resamples=n_resamples, seed=seed).p_value
        welch = stats.welch_interval([r["eval"]["macro_f1"] for r in groups[baseline]],
                                     [r["eval"]["macro_f1"] for r in groups[name]])
        v_items = stats.verdict(low=boot.ci_low, high=boot.ci_high, p_value=perm_p if perm_p is not None
                                else boot.p_value, alpha=alpha)
        verdicts = [v_items]
        v_seeds = None
        if not np.isnan(welch[1]):
            v_seeds = stats.verdict(low=welch[1], high=welch[2], alpha=alpha)
            verdicts.append(v_seeds)
        comparisons[name] = {
            "metric": "macro_f1",
            "baseline": baseline,
            "diff": boot.diff,
            "bootstrap_ci": [boot.ci_low, boot.ci_high],
            "bootstrap_p": boot.p_value,
            "permutation_p": perm_p,
            "seed_welch_ci": [None if np.isnan(welch[1]) else welch[1], None if np.isnan(welch[2]) else welch[2]],
            "n_items": boot.n_items,
            "n_resamples": n_resamples,
            "verdict_items": v_items,
            "verdict_seeds": v_seeds,
            "verdict": stats.combine_verdicts(verdicts),
        }
    return {"task": task.to_dict(), "baseline": baseline, "groups": out_groups, "comparisons": comparisons,
            "alpha": alpha}
