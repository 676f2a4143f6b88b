"""Security (issue 9): nothing in a run directory, a recipe or a model folder runs code unless asked.

Three guarantees, each shown with a live payload (a test first proves the payload *does* run when
loaded the unsafe way, so a passing test means the code path refused it, not that the payload was
inert):

1. Weights and state are never unpickled. A pickle whose ``__reduce__`` creates a marker file is
   planted everywhere a run directory could be read as weights or state (``model/``, the Trainer's
   ``checkpoints/checkpoint-*/`` files that it writes with ``torch.save``, the run's root); ``tailtune
   evaluate|predict|report|tune|diagnose`` and ``train --resume`` run on it and the marker never
   appears. Resume is the one path that must read pickles (optimizer, scheduler, RNG state): it
   checks them with the restricted ``weights_only`` unpickler first and refuses a file holding code
   with a ``RunDirError`` naming it (``tailtune.training.state_files``); ``training_args.bin`` is never
   read. ``predictions/*.npz`` with object arrays are refused (``allow_pickle=False``).
2. YAML only through safe loading: ``!!python/object/apply:os.system`` in a recipe, a ``--set`` value
   or a run's ``recipe.yaml`` is an error and nothing runs; the source holds no unsafe YAML loader.
3. ``trust_remote_code`` is off unless the recipe sets it: a model folder whose ``config.json`` has an
   ``auto_map`` to a modelling file that writes a marker at import is refused by train, screen,
   ablate, predict and evaluate, with a message saying how to opt in; with
   ``model.trust_remote_code: true`` (the explicit opt-in) the code runs.
"""

from __future__ import annotations

import inspect
import json
import pickle
import re
import shutil
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tailtune.cli.main import main

SRC = Path(__file__).resolve().parents[2] / "src" / "tailtune"


# ------------------------------------------------------------------------------------------ payloads
class _Payload:
    """Unpickling this object runs ``exec`` and creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def _plant(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": _Payload(marker), "weight": torch.zeros(2)}, path)
    return path


def _yaml_payload(marker: Path) -> str:
    return f'!!python/object/apply:os.system ["touch {marker}"]'


def _checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))


def _copy_run(real_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(real_run, run)
    return run


def _one_error(captured, *patterns: str) -> str:
    err = captured.err
    assert "Traceback" not in err, err
    assert err.count("error:") == 1, err
    flat = " ".join(err.split())
    for pattern in patterns:
        assert re.search(pattern, flat), f"{pattern!r} not in {flat!r}"
    return flat


def test_payloads_are_live(tmp_path):
    """The planted objects do run code when loaded the unsafe way (so the tests below mean something)."""
    pickled = _plant(tmp_path / "p.pt", tmp_path / "m1")
    torch.load(pickled, weights_only=False)
    assert (tmp_path / "m1").read_text() == "code ran"
    yaml.unsafe_load(f"name: {_yaml_payload(tmp_path / 'm2')}")
    assert (tmp_path / "m2").exists()
    with pytest.raises(pickle.UnpicklingError, match="exec"):
        torch.load(_plant(tmp_path / "q.pt", tmp_path / "m3"), weights_only=True)
    assert not (tmp_path / "m3").exists()


# ------------------------------------------------------------------- 1. pickles in a run directory
# every place a run directory could be read from as weights or state; the Trainer's own
# torch.save files are overwritten in every checkpoint
MODEL_PICKLES = ("model/pytorch_model.bin", "model/model.pt", "model/optimizer.pt", "model/training_args.bin",
                 "pytorch_model.bin", "model.pt", "training_args.bin", "predictions/logits.pt")
CHECKPOINT_PICKLES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt", "training_args.bin",
                      "pytorch_model.bin")


def _plant_everywhere(run: Path, marker: Path) -> list[Path]:
    planted = [_plant(run / rel, marker) for rel in MODEL_PICKLES]
    for ckpt in _checkpoints(run):
        planted += [_plant(ckpt / name, marker) for name in CHECKPOINT_PICKLES]
    return planted


def test_read_commands_never_unpickle(real_run, tmp_path, capsys):
    run = _copy_run(real_run, tmp_path)
    marker = tmp_path / "PWNED"
    planted = _plant_everywhere(run, marker)
    assert len(_checkpoints(run)) == 2 and len(planted) == len(MODEL_PICKLES) + 2 * len(CHECKPOINT_PICKLES)
    commands = [
        ["evaluate", str(run), "--split", "test"],
        ["evaluate", str(run), "--split", "test", "--recompute"],  # loads the model from model/
        ["predict", str(run), "--text", "good film", "--text", "bad plot"],
        ["tune", str(run)],
        ["report", str(run)],
        ["diagnose", str(run)],
    ]
    for argv in commands:
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, (argv, captured.err)
        assert not marker.exists(), f"tailtune {argv[0]} unpickled a planted file"
    assert all(p.exists() for p in planted)


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rng_state.pth", "scaler.pt", "pytorch_model.bin"])
def test_resume_refuses_a_pickled_state_file(name, real_run, tmp_path, capsys):
    """A resume that would torch.load the file stops with one RunDirError naming it; nothing runs or changes."""
    run = _copy_run(real_run, tmp_path)
    shutil.rmtree(_checkpoints(run)[-1])  # killed after epoch 1: resume must load the epoch-1 state
    (run / "eval.json").unlink()  # not finished (a finished run is left alone, nothing loaded)
    ckpt = _checkpoints(run)[-1]
    marker = tmp_path / "PWNED"
    _plant(ckpt / name, marker)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    code = main(["train", "--resume", str(run)])
    captured = capsys.readouterr()
    assert code == 2
    _one_error(captured, re.escape(str(ckpt / name)), "will not unpickle", r"references exec",
               "nothing was run", "Fix: .*delete")
    assert not marker.exists()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_resume_never_reads_training_args_and_ignores_model_pickles(real_run, tmp_path, capsys):
    """The files resume does not load (training_args.bin, pickles outside the checkpoint) are never
    opened: with payloads there, resuming a killed run finishes normally (genuine state files pass)."""
    run = _copy_run(real_run, tmp_path)
    shutil.rmtree(_checkpoints(run)[-1])
    (run / "eval.json").unlink()  # not finished: the resume really loads the epoch-1 state
    marker = tmp_path / "PWNED"
    _plant(_checkpoints(run)[-1] / "training_args.bin", marker)
    for rel in MODEL_PICKLES:
        _plant(run / rel, marker)
    code = main(["train", "--resume", str(run)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert not marker.exists()
    assert [json.loads(line)["epoch"] for line in (run / "history.jsonl").read_text().splitlines()] == [1, 2]


def test_state_file_check_accepts_genuine_and_legacy_files(tmp_path):
    """The pre-flight check accepts what the Trainer writes (tensors, numbers, numpy RNG state), also in
    the legacy non-zip format (not memory-mappable), and refuses a payload in either format."""
    from tailtune.errors import RunDirError
    from tailtune.training.state_files import check_state_files, state_files

    ckpt = tmp_path / "checkpoint-3"
    ckpt.mkdir()
    param = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([param])
    param.sum().backward()
    opt.step()
    torch.save(opt.state_dict(), ckpt / "optimizer.pt")
    torch.save({"python": __import__("random").getstate(), "numpy": np.random.get_state(),
                "cpu": torch.random.get_rng_state()}, ckpt / "rng_state.pth")
    torch.save({"last_epoch": 3, "lr": [0.1]}, ckpt / "scheduler.pt", _use_new_zipfile_serialization=False)
    _plant(ckpt / "training_args.bin", tmp_path / "never")
    assert [p.name for p in state_files(ckpt)] == ["optimizer.pt", "rng_state.pth", "scheduler.pt"]
    check_state_files(ckpt, run_dir=tmp_path)
    marker = tmp_path / "PWNED"
    torch.save({"x": _Payload(marker)}, ckpt / "scheduler.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(RunDirError, match=r"scheduler\.pt holds Python objects .*references exec"):
        check_state_files(ckpt, run_dir=tmp_path)
    assert not marker.exists() and not (tmp_path / "never").exists()


def test_pickled_predictions_are_refused(real_run, tmp_path, capsys):
    """predictions/*.npz are read with allow_pickle=False: object arrays are an error, never unpickled."""
    run = _copy_run(real_run, tmp_path)
    marker = tmp_path / "PWNED"
    obj = np.array([_Payload(marker)], dtype=object)
    np.savez(run / "predictions" / "test.npz", logits=obj, targets=obj)
    code = main(["evaluate", str(run), "--split", "test"])
    captured = capsys.readouterr()
    assert code == 2
    _one_error(captured, r"predictions/test\.npz", "Fix: .*--recompute")
    for argv in (["report", str(run)], ["diagnose", str(run)]):  # they read the predictions too
        main(argv)
        capsys.readouterr()
    assert not marker.exists()


def test_source_never_unpickles():
    """No torch.load / pickle / joblib in the library; every np.load passes allow_pickle=False."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"\btorch\.load\(", r"^\s*import (c?pickle|joblib|dill)\b", r"^\s*from (c?pickle|joblib|dill) ",
                        r"allow_pickle\s*=\s*True", r"weights_only\s*=\s*False"):
            offenders += [f"{path.relative_to(SRC)}: {m.group(0).strip()}" for m in re.finditer(pattern, text, re.M)]
        for m in re.finditer(r"\bnp\.load\(([^)]*)\)", text):
            if "allow_pickle=False" not in m.group(1):
                offenders.append(f"{path.relative_to(SRC)}: {m.group(0)}")
    # the one deliberate torch.load: the restricted (weights_only=True) pre-flight check of resume,
    # which imports pickle only for pickle.UnpicklingError
    allowed = {"training/state_files.py: torch.load(", "training/state_files.py: import pickle"}
    assert [o for o in offenders if o not in allowed] == []
    guard = (SRC / "training" / "state_files.py").read_text()
    calls = re.findall(r"torch\.load\(([^)]*)\)", guard)
    assert len(calls) >= 2 and all("weights_only=True" in c for c in calls), calls


# ------------------------------------------------------------------------------------------ 2. YAML
def test_recipe_with_python_tag_is_refused(tmp_path, tiny_encoder_dir, capsys):
    from tiny_runs import tiny_recipe, write_tiny_data

    marker = tmp_path / "PWNED"
    data = write_tiny_data(tmp_path / "data", "multiclass")
    text = yaml.safe_dump(tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "out"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: {_yaml_payload(marker)}\n" + text)
    good = tmp_path / "good.yaml"
    good.write_text(text)
    cases = [
        (["train", str(recipe)], r"recipe\.yaml"),
        (["lint", str(recipe)], r"recipe\.yaml"),
        (["ablate", str(recipe), "--seeds", "1", "--out", str(tmp_path / "abl")], r"recipe\.yaml"),
        (["train", str(good), "--set", f"name={_yaml_payload(marker)}"], r"name"),
        (["lint", str(good), "--set", f"optim.lr={_yaml_payload(marker)}"], r"optim\.lr"),
    ]
    for argv, where in cases:
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 2, (argv, captured.err)
        _one_error(captured, where, r"python/object/apply:os\.system|not valid YAML|constructor")
        assert not marker.exists(), argv
    assert not (tmp_path / "out").exists() and not (tmp_path / "abl").exists()


def test_run_recipe_with_python_tag_is_refused(real_run, tmp_path, capsys):
    """A run's recipe.yaml is parsed safely by every command that reads it (resume, report, diagnose, predict)."""
    run = _copy_run(real_run, tmp_path)
    marker = tmp_path / "PWNED"
    recipe = run / "recipe.yaml"
    recipe.write_text(f"name: {_yaml_payload(marker)}\n" + recipe.read_text())
    for argv in (["train", "--resume", str(run)], ["report", str(run)], ["diagnose", str(run)]):
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 2, (argv, captured.err)
        _one_error(captured, r"recipe\.yaml", "not valid YAML")
    for argv in (["predict", str(run), "--text", "good film"], ["evaluate", str(run)], ["tune", str(run)]):
        main(argv)  # these read at most max_length from it; they must not execute it either
        capsys.readouterr()
    assert not marker.exists()


def test_source_loads_yaml_only_safely():
    from tailtune.recipe.overrides import RecipeLoader

    assert issubclass(RecipeLoader, yaml.SafeLoader)
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"yaml\.(unsafe_load|full_load|load_all|load)\(([^)]*)\)|yaml\.(Unsafe|Full)?Loader\b|"
                             r"\byaml\.(CLoader|CUnsafeLoader|CFullLoader)\b", text):
            found.append((str(path.relative_to(SRC)), m.group(0)))
    assert found == [("recipe/overrides.py", "yaml.load(text, Loader=RecipeLoader)")]


# ---------------------------------------------------------------------------- 3. trust_remote_code
def _custom_code_model(tiny_encoder_dir: Path, folder: Path, marker: Path) -> Path:
    """A copy of the tiny encoder whose config.json maps AutoConfig/AutoModel to files in the folder;
    importing them writes ``marker``. Module names are unique so no test sees another's import."""
    shutil.copytree(tiny_encoder_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"), dirs_exist_ok=True)
    shutil.copy(tiny_encoder_dir / "model.safetensors", folder / "model.safetensors")
    tag = uuid.uuid4().hex[:8]
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = f"tailtune-custom-{tag}"
    cfg["auto_map"] = {"AutoConfig": f"configuration_c{tag}.CustomConfig", "AutoModel": f"modeling_c{tag}.CustomModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / f"configuration_c{tag}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('code ran')\n"
        "from transformers import BertConfig\n\n\n"
        f"class CustomConfig(BertConfig):\n    model_type = 'tailtune-custom-{tag}'\n"
    )
    (folder / f"modeling_c{tag}.py").write_text(
        f"from transformers import BertModel\n\nfrom .configuration_c{tag} import CustomConfig\n\n\n"
        "class CustomModel(BertModel):\n    config_class = CustomConfig\n"
    )
    return folder


@pytest.fixture
def modules_cache(tmp_path, monkeypatch):
    """transformers copies trusted custom code into HF_MODULES_CACHE: a private one, sys.path restored,
    and no ``transformers_modules`` package left imported from another test's cache."""
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m == "transformers_modules" or m.startswith("transformers_modules.")]:
        monkeypatch.delitem(sys.modules, name)
    yield tmp_path / "hf-modules"
    for name in [m for m in sys.modules if m == "transformers_modules" or m.startswith("transformers_modules.")]:
        sys.modules.pop(name, None)


def test_trust_remote_code_defaults_are_off():
    from tailtune.evaluation.predictor import Predictor
    from tailtune.models import load_classifier
    from tailtune.models.classifier import MODEL_DEFAULTS, load_encoder
    from tailtune.recipe import Recipe

    assert MODEL_DEFAULTS["trust_remote_code"] is False
    assert Recipe.model_fields["model"].annotation.model_fields["trust_remote_code"].default is False
    for fn in (load_classifier, load_encoder):
        assert inspect.signature(fn).parameters["trust_remote_code"].default is False
    # predict/evaluate --recompute: off unless --trust-remote-code (tailtune.load(..., trust_remote_code=True))
    assert inspect.signature(Predictor.from_run_dir).parameters["trust_remote_code"].default is False
    from tailtune.evaluation.runs import evaluate_run

    assert inspect.signature(evaluate_run).parameters["trust_remote_code"].default is False


def test_custom_code_is_refused_without_the_flag(tmp_path, tiny_encoder_dir, modules_cache, capsys):
    from tiny_runs import tiny_recipe, write_tiny_data

    from tailtune.data import TaskSpec
    from tailtune.errors import RecipeError
    from tailtune.models.classifier import build_classifier, load_encoder, load_tokenizer

    marker = tmp_path / "PWNED"
    model = _custom_code_model(tiny_encoder_dir, tmp_path / "custom-model", marker)
    task = TaskSpec(kind="multiclass", labels=["pos", "neg", "plot"])
    for call in (lambda: build_classifier({"name": str(model)}, task), lambda: load_encoder(str(model))):
        with pytest.raises(RecipeError, match=r"ships its own Python code.*none of it was run.*"
                                              r"model\.trust_remote_code: true"):
            call()
    load_tokenizer({"name": str(model)})  # the tokenizer files need no code: loads, runs nothing
    assert not marker.exists()

    data = write_tiny_data(tmp_path / "data", "multiclass")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe("multiclass", data, model, tmp_path / "out")))
    for argv in (
        ["train", str(recipe)],
        ["ablate", str(recipe), "--seeds", "1", "--out", str(tmp_path / "abl"), "--no-compare"],
        ["screen", str(data), "--model", str(model), "--out", str(tmp_path / "screen"), "--seeds", "1",
         "--cache-dir", str(tmp_path / "emb")],
        ["analyze", str(data), "--tokenizer", str(model), "--no-plots"],
    ):
        code = main(argv)
        captured = capsys.readouterr()
        if argv[0] == "analyze":  # a tokenizer without custom code: works, and runs nothing
            assert code == 0, captured.err
        else:
            assert code == 2, (argv, captured.err)
            _one_error(captured, "ships its own Python code", "none of it was run", r"trust_remote_code: true")
        assert not marker.exists(), argv
    assert not (tmp_path / "out").exists()


def test_custom_code_runs_only_with_the_explicit_flag(tmp_path, tiny_encoder_dir, modules_cache):
    """--set model.trust_remote_code=true (the recipe field) is the opt-in: then, and only then, the code runs."""
    from tailtune.data import TaskSpec
    from tailtune.models.classifier import build_classifier
    from tailtune.recipe import load_recipe

    marker = tmp_path / "PWNED"
    model = _custom_code_model(tiny_encoder_dir, tmp_path / "custom-model", marker)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"data": {"path": str(tmp_path)}, "model": {"name": str(model)}, "loss": "ce"}))
    assert load_recipe(path).model.trust_remote_code is False
    recipe = load_recipe(path, overrides=["model.trust_remote_code=true"])
    assert recipe.model.trust_remote_code is True and not marker.exists()
    classifier = build_classifier(recipe.model, TaskSpec(kind="multiclass", labels=["a", "b"]))
    assert marker.read_text() == "code ran"
    assert type(classifier.encoder).__name__ == "CustomModel"


def test_run_dir_with_custom_code_is_refused(real_run, tmp_path, tiny_encoder_dir, modules_cache, capsys):
    """A run whose model/config.json maps to code in model/: predict and evaluate --recompute refuse it."""
    run = _copy_run(real_run, tmp_path)
    marker = tmp_path / "PWNED"
    saved = json.loads((run / "model" / "config.json").read_text())
    staged = _custom_code_model(tiny_encoder_dir, tmp_path / "staged", marker)
    for f in staged.glob("*.py"):
        shutil.copy(f, run / "model" / f.name)
    custom = json.loads((staged / "config.json").read_text())
    saved.update(model_type=custom["model_type"], auto_map=custom["auto_map"])
    (run / "model" / "config.json").write_text(json.dumps(saved))
    for argv in (["predict", str(run), "--text", "good film"], ["evaluate", str(run), "--recompute"]):
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 2, (argv, captured.err)
        _one_error(captured, r"model/config\.json", "needs its own Python code", "none of it was run",
                   "--trust-remote-code", r"trust_remote_code=True")
        assert not marker.exists(), argv
    # the explicit flag is the opt-in: then the model's code runs and predict works
    code = main(["predict", str(run), "--text", "good film", "--trust-remote-code"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert marker.read_text() == "code ran" and json.loads(captured.out.splitlines()[0])["label"]
