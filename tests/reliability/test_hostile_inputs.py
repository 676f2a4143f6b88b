"""Hostile input through the CLI: every malformed input exits 2 with one message, and nothing is written.

``CASES`` is the corpus: one entry per malformed input, each with a builder that writes the input
into ``tmp_path`` and returns the ``tailtune`` argv, plus two regexes the single error message must
match: ``where`` (the file, row or field) and ``fix`` (what to do about it). For every case the test
checks: exit code 2; stderr is one ``error:`` message and no traceback; both regexes match; and the
tree under ``tmp_path`` is byte-for-byte what the builder wrote (no ``--out``/``--output`` target,
no run-directory file touched).

Inputs that the documented behaviour *accepts* (a byte-order mark, CRLF line ends, a 1 MB text,
duplicate ids) are tested separately at the end ("accepted quirks"): they must load correctly.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from tailtune.cli.main import main

# ------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Ctx:
    """What a builder may use: the test's folder, the tiny encoder and (lazily) the real run."""

    tmp: Path
    encoder: Path
    run: Path | None


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Ctx], list[str]]
    where: str  # regex: the file / line / field the message names
    fix: str  # regex: the remedy the message gives
    needs_run: bool = False


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def _jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _rows(n: int = 12, labels=("ham", "spam")) -> list[dict]:
    return [{"text": f"message number {i}", "labels": labels[i % len(labels)]} for i in range(n)]


GOOD_CSV = "text,labels\n" + "".join(f"message number {i},{'spam' if i % 3 == 0 else 'ham'}\n" for i in range(12))


def analyze(files: dict[str, str | bytes], *extra: str) -> Callable[[Ctx], list[str]]:
    """Write ``files`` into ``tmp/data`` and run ``tailtune analyze tmp/data --out tmp/out``."""

    def build(ctx: Ctx) -> list[str]:
        for name, content in files.items():
            _write(ctx.tmp / "data" / name, content)
        return ["analyze", str(ctx.tmp / "data"), "--out", str(ctx.tmp / "out"), *extra]

    return build


def analyze_file(name: str, content: str | bytes, *extra: str) -> Callable[[Ctx], list[str]]:
    """One data file given directly as DATA."""

    def build(ctx: Ctx) -> list[str]:
        path = _write(ctx.tmp / name, content)
        return ["analyze", str(path), "--out", str(ctx.tmp / "out"), *extra]

    return build


def with_task(task: dict | str, files: dict[str, str | bytes]) -> Callable[[Ctx], list[str]]:
    """``analyze`` with ``--task tmp/task.json`` holding ``task`` (a dict, or raw text)."""

    def build(ctx: Ctx) -> list[str]:
        path = _write(ctx.tmp / "task.json", task if isinstance(task, str) else json.dumps(task))
        return analyze(files, "--task", str(path))(ctx)

    return build


def lint(recipe: str | bytes, *extra: str) -> Callable[[Ctx], list[str]]:
    """``tailtune lint tmp/recipe.yaml``; the text may use ``{data}`` for a valid data folder."""

    def build(ctx: Ctx) -> list[str]:
        path = _write(ctx.tmp / "recipe.yaml", recipe)
        return ["lint", str(path), *extra]

    return build


def train(recipe: dict, *extra: str, kind: str = "multiclass") -> Callable[[Ctx], list[str]]:
    """``tailtune train`` on tiny valid data with the tiny encoder; ``recipe`` is merged over a valid one
    (sections are merged, ``loss`` replaced, a ``None`` value deletes the key); the run directory would be
    ``tmp/run-out``."""

    def build(ctx: Ctx) -> list[str]:
        from tiny_runs import tiny_recipe, write_tiny_data

        data = write_tiny_data(ctx.tmp / "data", kind, n_train=24, n_eval=8)
        base = tiny_recipe(kind, data, ctx.encoder, ctx.tmp / "run-out")
        for key, value in recipe.items():
            if value is None:
                base.pop(key, None)
            elif isinstance(value, dict) and isinstance(base.get(key), dict) and key != "loss":
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        path = _write(ctx.tmp / "recipe.yaml", yaml.safe_dump(base))
        return ["train", str(path), "-q", *extra]

    return build


def on_run(corrupt: Callable[[Path], object], *argv: str) -> Callable[[Ctx], list[str]]:
    """Copy the real run to ``tmp/run`` (without checkpoints), corrupt it, run ``argv`` on it.

    In ``argv``, ``RUN`` stands for the copied run and ``TMP`` for the test folder.
    """

    def build(ctx: Ctx) -> list[str]:
        run = ctx.tmp / "run"
        shutil.copytree(ctx.run, run, ignore=shutil.ignore_patterns("checkpoints"))
        corrupt(run)
        return [a.replace("RUN", str(run)).replace("TMP", str(ctx.tmp)) for a in argv]

    return build


def _truncate(name: str, keep: float = 0.5) -> Callable[[Path], None]:
    def corrupt(run: Path) -> None:
        path = run / name
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return corrupt


def _replace(name: str, content: str | bytes) -> Callable[[Path], None]:
    return lambda run: _write(run / name, content)


def _remove(name: str) -> Callable[[Path], None]:
    def corrupt(run: Path) -> None:
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return corrupt


def _npz(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


ASPECT_ROWS = [
    {"text": "good food", "aspects": {"food": "positive", "staff": "absent"}},
    {"text": "bad food", "aspects": {"food": "negative", "staff": "absent"}},
    {"text": "rude staff", "aspects": {"food": "absent", "staff": "negative"}},
    {"text": "kind staff", "aspects": {"food": "absent", "staff": "positive"}},
] * 3
PAIR_ROWS = [
    {"text": "good food", "labels": ["food#positive"]},
    {"text": "bad staff", "labels": ["staff#negative"]},
    {"text": "good staff bad food", "labels": ["staff#positive", "food#negative"]},
] * 4
ML_ROWS = [{"text": f"doc {i}", "labels": [["a"], ["b"], ["a", "c"]][i % 3]} for i in range(12)]

# ------------------------------------------------------------------------------------------ corpus

CASES: list[Case] = [
    # ---- data files (tailtune analyze DATA --out OUT)
    Case("empty-file", analyze({"train.csv": ""}), r"train\.csv is empty", r"needs a header"),
    Case("header-only", analyze({"train.csv": "text,labels\n"}), r"train\.csv has a header but no data rows",
         r"add one row per text"),
    Case("json-empty-array", analyze({"train.json": "[]"}), r"train\.json holds no records", r"add at least one record"),
    Case("jsonl-blank", analyze({"train.jsonl": "\n \n"}), r"train\.jsonl holds only whitespace",
         r"write one JSON object per line"),
    Case("blank-first-line", analyze({"train.csv": "\n\n"}), r"train\.csv has no header row",
         r"first line must name the columns"),
    Case("wrong-columns", analyze({"train.csv": "body,category\nhello,a\nworld,b\n"}),
         r"no text column in \S*train\.csv.*found \['body', 'category'\]", r"--text-column"),
    Case("label-column-typo", analyze({"train.csv": GOOD_CSV.replace("labels", "label", 1)}, "--label-column", "lable"),
         r"label column 'lable' not found in \S*train\.csv \(did you mean 'label'\?\)", r"pick one with --label-column"),
    Case("mixed-label-types-csv", analyze({"train.csv": "text,labels\na,1\nb,spam\nc,0\n"}),
         r"mixed label types .*train\.csv line 2 .*line 3", r"write every label the same way"),
    Case("mixed-label-types-jsonl", analyze({"train.jsonl": _jsonl([{"text": "a", "labels": 1}, {"text": "b", "labels": "spam"}] * 4)}),
         r"mixed label types .*train\.jsonl line 1 .*line 2", r"write every label the same way"),
    Case("mixed-label-layouts-across-splits",
         analyze({"train.jsonl": _jsonl(_rows()), "validation.jsonl": _jsonl([{"text": "x", "labels": ["ham"]}])}),
         r"train\.jsonl has name labels but \S*validation\.jsonl has name-list", r"write them the same way"),
    Case("null-text-csv", analyze({"train.csv": "text,labels\nhello,ham\n,spam\nbye,ham\n"}),
         r"missing \(null/NaN\) text at \S*train\.csv line 3", r"remove the row, give it text, or drop such rows with empty_text=.drop."),
    Case("null-text-jsonl", analyze({"train.jsonl": _jsonl(_rows()[:3] + [{"text": None, "labels": "spam"}])}),
         r"train\.jsonl line 4", r"remove the row, give it text, or drop such rows with empty_text=.drop."),
    Case("nan-text-parquet", lambda ctx: _parquet_nan_text(ctx),
         r"text column 'text' of \S*train\.parquet holds double values", r"--text-column"),
    Case("whitespace-text", analyze({"train.jsonl": _jsonl(_rows()[:5] + [{"text": " \t ", "labels": "ham"}])}),
         r"empty text at \S*train\.jsonl line 6", r"--drop-empty-text"),
    Case("invalid-utf8", analyze({"train.csv": b"text,labels\nhello,ham\ncaf\xe9 au lait,spam\n"}),
         r"train\.csv is not valid UTF-8: byte offset 25 \(line 3\)", r"re-encode the file as UTF-8"),
    Case("negative-label-index", analyze({"train.csv": "text,labels\na,0\nb,1\nc,-1\nd,1\n"}),
         r"label index -1 at \S*train\.csv line 4", r"indices start at 0"),
    Case("label-index-beyond-labels-txt", analyze({"train.csv": "text,labels\na,0\nb,1\nc,5\n", "labels.txt": "ham\nspam\n"}),
         r"label index 5 at \S*train\.csv line 4 \(row 3 after the header\) is out of range: \S*labels\.txt names 2 labels",
         r"add the missing names there"),
    Case("fractional-label", analyze({"train.jsonl": _jsonl([{"text": "a", "labels": 0}, {"text": "b", "labels": 1.5}] * 3)}),
         r"label 1\.5 at \S*train\.jsonl line 2", r"names or integer indices"),
    Case("missing-label", analyze({"train.csv": "text,labels\na,ham\nb,\nc,spam\n"}),
         r"missing label at \S*train\.csv line 3", r"give every row a label"),
    Case("unknown-polarity", with_task({"kind": "aspects", "labels": ["food", "staff"], "polarities": ["positive", "negative"],
                                        "label_column": "aspects"},
                                       {"train.jsonl": _jsonl(ASPECT_ROWS + [{"text": "ok", "aspects": {"food": "positve"}}])}),
         r"polarity 'positve' for aspect 'food' at \S*train\.jsonl line 13", r"did you mean 'positive'.*fix the row"),
    Case("unknown-aspect-in-validation",
         analyze({"train.jsonl": _jsonl(ASPECT_ROWS), "validation.jsonl": _jsonl([{"text": "x", "aspects": {"price": "positive"}}])}),
         r"aspect 'price' at \S*validation\.jsonl line 1", r"fix the row, or add training examples"),
    Case("malformed-aspect-pair", analyze({"train.jsonl": _jsonl(PAIR_ROWS + [{"text": "x", "labels": ["food#"]}])}, "--task", "aspects"),
         r"aspect label 'food#' at \S*train\.jsonl line 13", r"write each aspect label as aspect#polarity"),
    Case("aspect-with-two-polarities", analyze({"train.jsonl": _jsonl(PAIR_ROWS + [{"text": "x", "labels": ["food#positive", "food#negative"]}])}),
         r"aspect 'food' has two different polarities at \S*train\.jsonl line 13", r"keep one"),
    Case("hierarchy-cycle", with_task({"kind": "multilabel", "labels": ["a", "b", "c"], "hierarchy": {"a": "b", "b": "a"}},
                                      {"train.jsonl": _jsonl(ML_ROWS)}),
         r"task\.json.*hierarchy has a cycle: a -> b -> a", r"parent chain must end"),
    Case("hierarchy-unknown-label", with_task({"kind": "multilabel", "labels": ["a", "b", "c"], "hierarchy": {"cc": "a"}},
                                              {"train.jsonl": _jsonl(ML_ROWS)}),
         r"task\.json.*hierarchy names 'cc', which is not a label", r"did you mean 'c'"),
    Case("labels-txt-duplicate", analyze({"train.csv": GOOD_CSV, "labels.txt": "ham\nspam\nham\n"}),
         r"labels\.txt names label 'ham' twice \(line 3\)", r"keep one"),
    Case("declared-label-without-examples", analyze({"train.csv": GOOD_CSV, "labels.txt": "ham\nspam\neggs\n"}),
         r"\['eggs'\] have zero training examples in \S*train\.csv \(declared by \S*labels\.txt\)",
         r"add training examples, remove them from \S*labels\.txt, or leave them out: recipe data\.unused_labels: drop"),
    Case("validation-label-unknown", analyze({"train.csv": GOOD_CSV, "validation.csv": "text,labels\nhi,spma\n"}),
         r"label 'spma' at \S*validation\.csv line 2 \(row 1 after the header\) does not occur in the training data \(did you mean 'spam'\?\)",
         r"fix the row"),
    Case("label-looks-like-markup", analyze({"train.csv": GOOD_CSV, "validation.csv": "text,labels\nhi,[/b]\n"}),
         r"label '\[/b\]' at \S*validation\.csv line 2", r"fix the row"),
    Case("single-class", analyze({"train.csv": GOOD_CSV.replace("spam", "ham")}),
         r"\S*train\.csv.* a single class \['ham'\]", r"at least 2"),
    Case("unsupported-suffix", analyze_file("data.xlsx", b"PK\x03\x04junk"),
         r"data\.xlsx: unsupported file type '\.xlsx'", r"use one of"),
    Case("missing-path", lambda ctx: ["analyze", str(ctx.tmp / "nope" / "train.csv"), "--out", str(ctx.tmp / "out")],
         r"data path \S*nope/train\.csv does not exist", r"give a file, a folder"),
    Case("torn-jsonl", analyze({"train.jsonl": _jsonl(_rows())[:-20]}),
         r"could not read \S*train\.jsonl as jsonl", r"check the file is well-formed jsonl"),
    Case("two-train-files", analyze({"train.csv": GOOD_CSV, "train.jsonl": _jsonl(_rows())}),
         r"several files for split 'train': \['train\.csv', 'train\.jsonl'\]", r"keep one"),
    Case("indicator-not-0-1", analyze({"train.csv": "text,toxic,insult\na,0,1\nb,1,0\nc,2,1\n"}, "--label-column", "toxic,insult"),
         r"indicator column 'toxic' holds '2' at \S*train\.csv line 4", r"must be 0/1"),
    Case("task-json-not-json", with_task("{kind: multiclass", {"train.csv": GOOD_CSV}),
         r"task file \S*task\.json is not valid JSON", r"fix|pass a kind"),
    Case("task-kind-typo", analyze({"train.csv": GOOD_CSV}, "--task", "multiclas"),
         r"task 'multiclas' is not one of", r"did you mean 'multiclass'"),
    Case("val-fraction-out-of-range", analyze({"train.csv": GOOD_CSV}, "--val-fraction", "1.5"),
         r"--val-fraction|val_fraction", r"in \(0, 1\)"),
    Case("empty-label-sep", analyze({"train.csv": GOOD_CSV}, "--label-sep", ""),
         r"--label-sep|label_sep", r"non-empty"),
    Case("out-is-a-file", lambda ctx: [*analyze({"train.csv": GOOD_CSV})(ctx)[:3], str(_write(ctx.tmp / "out.txt", "keep me"))],
         r"--out \S*out\.txt exists and is not a folder", r"choose a folder"),
    # ---- recipes (tailtune lint RECIPE / tailtune train RECIPE)
    Case("recipe-key-typo", lint("optim: {lrr: 1.0e-4}\n"), r"optim\.lrr: unknown key \(did you mean 'lr'\?\)", r"Fix:"),
    Case("recipe-section-typo", lint("optimm: {lr: 1.0e-4}\n"), r"optimm: unknown key \(did you mean 'optim'\?\)", r"Fix:"),
    Case("recipe-wrong-type", lint("train: {epochs: ten}\n"), r"train\.epochs = 'ten'", r"use a whole number"),
    Case("recipe-bool-as-number", lint("train: {epochs: yes}\n"), r"train\.epochs = True", r"write the number itself"),
    Case("recipe-float-for-int", lint("train: {batch_size: 2.5}\n"), r"train\.batch_size = 2\.5", r"use a whole number"),
    Case("recipe-gamma-infinite", lint("loss: {focal: {gamma: .inf}}\n"), r"gamma = inf", r"must be a number"),
    Case("recipe-gamma-milestone-out-of-range",
         lint("loss: {focal: {gamma: {schedule: step, values: [2.0, 1.0], milestones: [1.5]}}}\n"),
         r"loss\.focal.*gamma\.milestones", r"a gamma schedule is"),
    Case("recipe-gamma-nan", lint("loss: {focal: {gamma: .nan}}\n"), r"loss\.focal\.gamma|gamma = nan", r"must be a number"),
    Case("recipe-gamma-string", lint("loss: {focal: {gamma: high}}\n"), r"gamma = 'high'", r"must be a number"),
    Case("recipe-loss-weight-negative", lint("loss: {focal: {weight: -0.5}}\n"), r"loss\.focal\.weight = -0\.5", r"Fix:"),
    Case("recipe-loss-weight-nan", lint("loss: {focal: {weight: .nan}}\n"), r"loss\.focal\.weight", r"finite"),
    Case("recipe-loss-weights-zero", lint("loss: {focal: {weight: 0}, ce: {weight: 0}}\n"), r"loss", r"positive weight"),
    Case("recipe-beta-out-of-range", lint("weighting: {scheme: effective_number, beta: 1.5}\n"),
         r"weighting\.beta = 1\.5", r"Fix:"),
    Case("recipe-override-weight-nan", lint("weighting: {scheme: inverse, overrides: {spam: .nan}}\n"),
         r"weighting\.overrides\.spam", r"finite"),
    Case("recipe-cap-below-1", lint("weighting: {scheme: inverse, cap: 0.5}\n"), r"weighting\.cap = 0\.5", r"Fix:"),
    Case("recipe-unknown-loss", lint("loss: {focul: {weight: 1.0}}\n"), r"loss\.focul = 'focul'.*did you mean 'focal'",
         r"Fix: use one of"),
    Case("recipe-loss-param-typo", lint("task: multiclass\nloss: {focal: {gama: 2.0}}\n"),
         r"loss\.focal\.gama: .*did you mean 'gamma'", r"Fix: use one of"),
    Case("recipe-precision-typo", lint("train: {precision: bf61}\n"), r"train\.precision = 'bf61'.*did you mean 'bf16'",
         r"Fix: use one of"),
    Case("recipe-yaml-syntax", lint("optim:\n  lr: [1e-5\n"), r"recipe\.yaml:.*line \d+", r"Fix: correct the syntax"),
    Case("recipe-python-tag", lint("optim: !!python/object/apply:os.system [echo hi]\n"), r"recipe\.yaml", r"Fix|safe"),
    Case("recipe-not-a-mapping", lint("- ce\n- focal\n"), r"recipe\.yaml: the recipe must be a mapping", r"task:, data:"),
    Case("recipe-not-utf8", lint(b"name: caf\xe9\n"), r"recipe\.yaml: not UTF-8", r"Fix: save the recipe as UTF-8"),
    Case("recipe-missing", lambda ctx: ["lint", str(ctx.tmp / "nope.yaml")], r"nope\.yaml: recipe file not found",
         r"Fix: check the path"),
    Case("override-without-value", lint("name: x\n", "--set", "optim.lr"), r"override 'optim\.lr'",
         r"expected dotted\.path=value"),
    Case("override-through-scalar", lint("optim: {lr: 1.0e-4}\n", "--set", "optim.lr.x=1"),
         r"optim\.lr is 0\.0001, not a mapping", r"set optim\.lr=\.\.\. as a whole"),
    Case("unknown-preset", lambda ctx: ["train", "--preset", "focall", "--output", str(ctx.tmp / "run-out")],
         r"'focall': no such preset \(did you mean 'focal'\?\)", r"Fix: use one of"),
    Case("train-hierarchy-cycle", train({"task": {"kind": "multilabel", "hierarchy": {"a": "b", "b": "a"}}}, kind="multilabel"),
         r"recipe\.yaml: task: hierarchy has a cycle: a -> b -> a", r"remove one entry"),
    Case("train-override-unknown-class", train({"weighting": {"scheme": "inverse", "overrides": {"plto": 2.0}}}),
         r"weighting\.overrides\.plto: 'plto' is not a label \(did you mean 'plot'\?\)", r"Fix: use one of"),
    Case("train-no-data-path", train({"data": None}), r"data\.path: missing", r"--set data\.path="),
    Case("train-kind-mismatch", train({"task": {"kind": "binary"}, "loss": {"bce": {}}}),
         r"kind 'binary' needs 2 classes, \S*train\.jsonl has 3", r"use kind 'multiclass' \(recipe: task\.kind\)"),
    Case("train-hierarchy-unknown-label",
         train({"task": {"kind": "multilabel", "hierarchy": {"cc": "a"}}, "loss": {"bce": {}}}, kind="multilabel"),
         r"task\.hierarchy: hierarchy names 'cc', which is not a label", r"did you mean 'c'"),
    Case("train-over-existing-run", lambda ctx: _train_into_run(ctx), r"output \S*run: already holds a run",
         r"--resume"),
    # ---- run directories
    Case("run-missing-task-json", on_run(_remove("task.json"), "evaluate", "RUN"), r"run: no task\.json",
         r"Fix: point to a finished run", needs_run=True),
    Case("run-truncated-task-json", on_run(_truncate("task.json"), "evaluate", "RUN"), r"task\.json: not valid JSON",
         r"Fix: re-run training", needs_run=True),
    Case("run-task-json-bad-kind", on_run(_replace("task.json", '{"kind": "regression", "labels": ["a"]}'), "evaluate", "RUN"),
         r"task\.json: task kind 'regression'", r"Fix: restore task\.json", needs_run=True),
    Case("run-truncated-eval-json", on_run(_truncate("eval.json"), "report", "RUN", "--out", "TMP/report.html"),
         r"eval\.json: line \d+: not valid JSON", r"re-run|Fix", needs_run=True),
    Case("run-eval-json-not-utf8", on_run(_replace("eval.json", b"\xff\xfe{}"), "report", "RUN", "--out", "TMP/report.html"),
         r"eval\.json", r"re-run|Fix", needs_run=True),
    Case("run-garbage-safetensors", on_run(_replace("model/model.safetensors", b"\x00garbage" * 64), "predict", "RUN",
                                           "--text", "hello", "--output", "TMP/pred.jsonl"),
         r"model\.safetensors: not a readable safetensors file", r"Fix: re-save the model", needs_run=True),
    Case("run-missing-safetensors", on_run(_remove("model/model.safetensors"), "predict", "RUN", "--text", "hi",
                                           "--output", "TMP/pred.jsonl"),
         r"model\.safetensors: missing", r"Fix: re-save the model", needs_run=True),
    Case("run-pickle-instead-of-safetensors",
         on_run(lambda run: (_remove("model/model.safetensors")(run), _write(run / "model" / "pytorch_model.bin", b"\x80\x04K\x01."))[0],
                "predict", "RUN", "--text", "hi", "--output", "TMP/pred.jsonl"),
         r"model\.safetensors: missing\. Found pytorch_model\.bin, which tailtune will not unpickle",
         r"convert the weights to safetensors", needs_run=True),
    Case("run-corrupt-model-meta", on_run(_truncate("model/tailtune_model.json"), "predict", "RUN", "--text", "hi",
                                          "--output", "TMP/pred.jsonl"),
         r"tailtune_model\.json: corrupt", r"Fix: re-save the model", needs_run=True),
    Case("run-missing-model-dir", on_run(_remove("model"), "predict", "RUN", "--text", "hi", "--output", "TMP/pred.jsonl"),
         r"run: no model/ folder", r"resume with `tailtune train --resume", needs_run=True),
    Case("run-truncated-history", on_run(_truncate("history.jsonl", 0.7), "diagnose", "RUN"),
         r"history\.jsonl: line 2: not valid JSON", r"remove the torn line or resume the run", needs_run=True),
    Case("run-history-not-utf8", on_run(_replace("history.jsonl", b'{"epoch": 1}\n\xff\xff\n'), "diagnose", "RUN"),
         r"history\.jsonl.*line 2", r"remove|resume|Fix", needs_run=True),
    Case("run-history-not-objects", on_run(_replace("history.jsonl", "[1, 2]\n"), "diagnose", "RUN"),
         r"history\.jsonl: line 1: expected one JSON object per epoch", r"remove the line or restore", needs_run=True),
    Case("run-empty-history", on_run(_replace("history.jsonl", ""), "report", "RUN", "--out", "TMP/report.html"),
         r"history\.jsonl: empty", r"Fix|wait|resume|re-run", needs_run=True),
    Case("run-missing-history", on_run(_remove("history.jsonl"), "report", "RUN", "--out", "TMP/report.html"),
         r"run: no history\.jsonl", r"Fix|train writes it", needs_run=True),
    Case("run-corrupt-recipe-yaml", on_run(_replace("recipe.yaml", "optim: [1, 2\n"), "diagnose", "RUN"),
         r"recipe\.yaml: line 2, column \d+: not valid YAML \([^\n]*\); the file is corrupt", r"Fix|re-run|restore",
         needs_run=True),  # one line: PyYAML's own text spans lines with a caret
    Case("run-npz-not-a-zip", on_run(_replace("predictions/test.npz", b"not a zip at all" * 10), "evaluate", "RUN"),
         r"predictions/test\.npz: unreadable or incomplete", r"--recompute", needs_run=True),
    Case("run-npz-truncated-zip", on_run(_truncate("predictions/test.npz", 0.6), "report", "RUN", "--out", "TMP/report.html"),
         r"predictions/test\.npz", r"re-run `tailtune evaluate`", needs_run=True),
    Case("run-npz-without-logits", on_run(_replace("predictions/test.npz", _npz(targets=np.zeros(3))), "evaluate", "RUN"),
         r"predictions/test\.npz: unreadable or incomplete", r"--recompute", needs_run=True),
    Case("run-npz-wrong-shape", on_run(_replace("predictions/test.npz", _npz(logits=np.zeros((4, 7)), targets=np.zeros(4))),
                                       "evaluate", "RUN"),
         r"predictions/test\.npz: logits have shape \(4, 7\)", r"Fix: re-run `tailtune evaluate --recompute`", needs_run=True),
    Case("run-tune-with-torn-eval-json", on_run(_truncate("eval.json"), "tune", "RUN"), r"eval\.json", r"Fix|re-run",
         needs_run=True),
    Case("run-postprocess-not-json", on_run(_replace("postprocess.json", "{temperature: 2"), "tune", "RUN"),
         r"postprocess\.json: not valid JSON", r"Fix: re-run `tailtune tune` or delete the file", needs_run=True),
    Case("run-postprocess-wrong-shape", on_run(_replace("postprocess.json", '{"thresholds": [0.5, 0.5]}'), "evaluate", "RUN"),
         r"postprocess\.json: does not fit task\.json", r"Fix: re-run `tailtune tune`", needs_run=True),
    Case("run-unknown-split", on_run(lambda run: None, "evaluate", "RUN", "--split", "dev"),
         r"split 'dev' has no predictions", r"Fix: pass --split", needs_run=True),
    Case("run-tune-on-test", on_run(lambda run: None, "tune", "RUN", "--split", "test"), r"test", r"validation",
         needs_run=True),
    Case("run-is-a-file", lambda ctx: ["evaluate", str(_write(ctx.tmp / "run.txt", "x"))],
         r"run\.txt: is a file, not a run directory", r"Fix: pass the run's folder"),
    Case("run-does-not-exist", lambda ctx: ["diagnose", str(ctx.tmp / "nope")], r"nope: no such run directory",
         r"pass the folder"),
    Case("predict-input-not-utf8", on_run(lambda run: _write(run.parent / "in.txt", b"good\n\xff bad\n"), "predict", "RUN",
                                          "--input", "TMP/in.txt", "--output", "TMP/pred.jsonl"),
         r"in\.txt is not valid UTF-8: byte offset 5 \(line 2\)", r"re-encode the file as UTF-8", needs_run=True),
    Case("predict-jsonl-without-text", on_run(lambda run: _write(run.parent / "in.jsonl", '{"body": "x"}\n'), "predict", "RUN",
                                              "--input", "TMP/in.jsonl", "--output", "TMP/pred.jsonl"),
         r"in\.jsonl, line 1: needs a string field 'text'", r"Fix: write", needs_run=True),
    Case("predict-input-all-blank", on_run(lambda run: _write(run.parent / "in.txt", "\n  \n\n"), "predict", "RUN",
                                           "--input", "TMP/in.txt", "--output", "TMP/pred.jsonl"),
         r"in\.txt: holds no text", r"Fix: one text per line", needs_run=True),
    Case("ensemble-member-missing", on_run(lambda run: None, "ensemble", "RUN", "TMP/nope", "--out", "TMP/ens"),
         r"nope: no such run directory", r"Fix: pass the folder", needs_run=True),
    Case("ensemble-bad-weights", on_run(lambda run: None, "ensemble", "RUN", "RUN", "--weights", "1,x", "--out", "TMP/ens"),
         r"--weights '1,x': not comma-separated numbers", r"Fix: give one number per run", needs_run=True),
    Case("postmortem-baseline-missing", on_run(lambda run: None, "postmortem", "RUN", "--baseline", "TMP/nope",
                                               "--out", "TMP/pm.md"),
         r"nope: no such run directory", r"pass the folder", needs_run=True),
    # issue 18: process-level inputs
    Case("train-into-a-folder-of-other-files", lambda ctx: _train_into_foreign(ctx),
         r"output \S*mine: holds files that are not a tailtune run \(notes\.txt\)",
         r"Fix: choose a new or empty folder with --output"),
    Case("max-length-over-the-encoder-positions", train({"data": {"max_length": 4096}}),
         r"data\.max_length = 4096: the encoder \S+ has 128 positions", r"Fix: set data\.max_length: 128"),
    Case("encoder-weights-truncated", lambda ctx: _train_with_torn_encoder(ctx),
         r"the encoder's weights in \S*torn-encoder cannot be read", r"Fix: copy or download the model folder again"),
]


def _train_into_foreign(ctx: Ctx) -> list[str]:
    argv = train({})(ctx)
    _write(ctx.tmp / "mine" / "notes.txt", "my notes")
    return [*argv, "--output", str(ctx.tmp / "mine")]


def _train_with_torn_encoder(ctx: Ctx) -> list[str]:
    import shutil

    torn = ctx.tmp / "torn-encoder"
    shutil.copytree(ctx.encoder, torn)
    weights = torn / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return train({"model": {"name": str(torn)}})(ctx)


def _parquet_nan_text(ctx: Ctx) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (ctx.tmp / "data").mkdir()
    pq.write_table(pa.table({"text": [1.0, float("nan"), 2.0, 3.0], "labels": ["a", "b", "a", "b"]}),
                   ctx.tmp / "data" / "train.parquet")
    return ["analyze", str(ctx.tmp / "data"), "--out", str(ctx.tmp / "out")]


def _train_into_run(ctx: Ctx) -> list[str]:
    """A valid recipe whose output is a copy of a finished run: refused, the run left as it was."""
    argv = train({})(ctx)
    run = ctx.tmp / "run"
    _write(run / "history.jsonl", '{"epoch": 1}\n')
    return [*argv, "--output", str(run)]


# ------------------------------------------------------------------------------------------ misread input
# Input that used to load *wrongly* without a word (issue 18, "input that is silently misread") and
# the same families found while scanning spreadsheet exports, tweets and review data: each is now
# one message naming the file, row or field and the fix.

_EMO = ["anger", "approval", "disapproval", "joy", "neutral"]
JOINED_CSV = "text,labels\n" + "".join(
    f"text {i},\"{_EMO[i % 5]},{_EMO[(i + 2) % 5]}\"\n" if i % 3 == 0 else f"text {i},{_EMO[i % 5]}\n" for i in range(30))
PIPE_CSV = "text,labels\n" + "".join(
    f"text {i},{_EMO[i % 5]}|{_EMO[(i + 2) % 5]}\n" if i % 3 == 0 else f"text {i},{_EMO[i % 5]}\n" for i in range(30))
INDEX_ROWS = [{"text": f"t{i}", "labels": i % 3} for i in range(12)]


def _jsonl_with(rows: list[dict], line: int, raw_label: str) -> str:
    lines = _jsonl(rows).splitlines()
    lines[line - 1] = '{"text": "odd one", "labels": ' + raw_label + "}"
    return "\n".join(lines) + "\n"


def predict_input(name: str, content: str | bytes, *extra: str) -> Callable[[Ctx], list[str]]:
    """``tailtune predict RUN --input TMP/<name> --output TMP/pred.jsonl`` on a copy of the real run."""
    return on_run(lambda run: _write(run.parent / name, content), "predict", "RUN", "--input", f"TMP/{name}",
                  "--output", "TMP/pred.jsonl", *extra)


MISREAD_CASES: list[Case] = [
    Case("joined-labels-comma", analyze_file("goemo.csv", JOINED_CSV),
         r"goemo\.csv look like multi-label lists joined by ',': 'anger,disapproval' at \S*goemo\.csv line 2",
         r"data\.label_sep: ',', CLI --label-sep ,"),
    Case("joined-labels-pipe-folder", analyze({"train.csv": PIPE_CSV}),
         r"train\.csv look like multi-label lists joined by '\|'", r"--label-sep '\|'"),
    Case("joined-label-in-validation", analyze({"train.csv": "text,labels\n" + "".join(f"t{i},{_EMO[i % 5]}\n" for i in range(20)),
                                                "validation.csv": "text,labels\nx,\"joy,neutral\"\n"}),
         r"label 'joy,neutral' at \S*validation\.csv line 2", r"declare the separator: recipe data\.label_sep: ','"),
    Case("aspect-pairs-with-an-others-entry",
         analyze({"train.jsonl": _jsonl(PAIR_ROWS[:5] + [{"text": "meh", "labels": ["OTHERS"]}] + PAIR_ROWS[5:])}),
         r"'OTHERS' at \S*train\.jsonl line 6", r"task\.kind: aspects .* --task multilabel"),
    Case("bracketed-lists-but-one-row", analyze_file("lists.csv", "text,labels\n" + "".join(
        f"t{i},\"['joy', 'love']\"\n" if i % 2 else f"t{i},['anger']\n" for i in range(11)) + "t11,joy\n"),
         r"'joy' at \S*lists\.csv line 13", r"write every row's labels as a list"),
    Case("label-infinity", analyze({"train.jsonl": _jsonl_with(INDEX_ROWS, 5, "Infinity")}),
         r"label inf at \S*train\.jsonl line 5 \(column 'labels'\)", r"names or whole-number indices 0\.\.C-1"),
    Case("label-1e300", analyze({"train.jsonl": _jsonl_with(INDEX_ROWS, 7, "1e300")}),
         r"label 1e\+300 at \S*train\.jsonl line 7 \(column 'labels'\)", r"fix the row"),
    Case("label-huge-integer-string", analyze({"train.csv": "text,labels\na,0\nb,1\nc,123456789012345678901234\n"}),
         r"'123456789012345678901234' at \S*train\.csv line 4 \(row 3 after the header\) \(column 'labels'\)",
         r"labels are names or indices 0\.\.C-1"),
    Case("label-index-far-beyond-the-others", analyze({"train.jsonl": _jsonl_with(INDEX_ROWS, 9, "1000000")}),
         r"label index 1000000 at \S*train\.jsonl line 9 \(column 'labels'\) is far beyond the other indices",
         r"fix the row, or write the labels as names"),
    Case("boolean-among-indices", analyze({"train.jsonl": _jsonl_with(INDEX_ROWS, 4, "true")}),
         r"true/false at \S*train\.jsonl line 4 \(column 'labels'\) is a boolean", r"write it as the index it means"),
    Case("declared-index-label-absent-from-subsample",
         analyze({"train.jsonl": _jsonl(INDEX_ROWS), "labels.txt": "a\nb\nc\nd\n"}),
         r"\['d'\] have zero training examples in \S*train\.jsonl \(declared by \S*labels\.txt\)",
         r"renumbers the labels after it.*data\.unused_labels: drop.*--drop-unused-labels"),
    Case("labels-txt-shortened-under-index-labels", analyze({"train.jsonl": _jsonl(INDEX_ROWS), "labels.txt": "a\nc\n"}),
         r"label index 2 at \S*train\.jsonl line 3 is out of range: \S*labels\.txt names 2 labels",
         r"renumbers the labels after it; to leave labels out use recipe data\.unused_labels: drop"),
    Case("task-label-not-in-labels-txt",
         with_task({"kind": "multiclass", "labels": ["a", "x"]}, {"train.jsonl": _jsonl(INDEX_ROWS), "labels.txt": "a\nb\nc\n"}),
         r"task label\(s\) \['x'\] are not in \S*labels\.txt", r"fix task\.labels or"),
    Case("row-label-left-out-by-the-task",
         with_task({"kind": "multiclass", "labels": ["a", "b"]}, {"train.jsonl": _jsonl(INDEX_ROWS), "labels.txt": "a\nb\nc\n"}),
         r"label 'c' at \S*train\.jsonl line 3 is not among the task's labels",
         r"add it to task\.labels, fix the row, or leave such labels out"),
    Case("unused-labels-value-typo", lint("data: {unused_labels: dropp}\n"), r"data\.unused_labels = 'dropp'",
         r"did you mean 'drop'"),
    Case("csv-utf16-with-bom", analyze({"train.csv": "text,labels\na,b\nc,d\n".encode("utf-16")}),
         r"train\.csv is UTF-16", r"iconv -f utf-16 -t utf-8"),
    Case("csv-utf16-without-bom", analyze({"train.csv": "text,labels\na,b\nc,d\n".encode("utf-16-le")}),
         r"train\.csv holds NUL bytes \(first at byte offset 1\)", r"re-encode the file as UTF-8"),
    Case("csv-duplicate-header", analyze({"train.csv": "text,labels,text\na,b,c\nd,e,f\n"}),
         r"header of \S*train\.csv names column 'text' twice \(columns 1 and 3\)", r"rename or delete one"),
    Case("spreadsheet-file", analyze_file("reviews.ods", b"PK\x03\x04junk"), r"reviews\.ods: unsupported file type",
         r"export it as 'CSV UTF-8'"),
    Case("aspect-key-written-two-ways-with-two-polarities", analyze({"train.jsonl": _jsonl(
        ASPECT_ROWS + [{"text": "x", "aspects": {"caf\u00e9": "positive", "cafe\u0301": "negative"}}])}),
         r"aspect 'caf\u00e9' has two different polarities at \S*train\.jsonl line 13", r"keep one"),
    Case("predict-csv-without-the-text-column", predict_input("in.csv", "id,body\n1,hello\n"),
         r"in\.csv: no text column: looked for \['text'", r"pass the text column with --text-column", needs_run=True),
    Case("predict-csv-text-column-typo", predict_input("in.csv", "id,review\n1,hello\n", "--text-column", "reveiw"),
         r"in\.csv: no column 'reveiw' \(did you mean 'review'\?\)", r"--text-column", needs_run=True),
    Case("predict-text-column-on-plain-text", predict_input("in.txt", "hello\n", "--text-column", "text"),
         r"in\.txt: --text-column applies to CSV, TSV and JSONL", r"drop --text-column", needs_run=True),
    Case("predict-text-column-without-input", on_run(lambda run: None, "predict", "RUN", "--text", "hi",
                                                    "--text-column", "text", "--output", "TMP/pred.jsonl"),
         r"--text-column names the column of an --input file", r"drop it", needs_run=True),
    Case("predict-input-utf16", predict_input("in.csv", "text\nhello\n".encode("utf-16")),
         r"in\.csv is UTF-16 \(it starts with the byte-order mark FF FE\), not UTF-8", r"re-encode the file as UTF-8",
         needs_run=True),
]
CASES += MISREAD_CASES


# ------------------------------------------------------------------------------------------ the test


def _snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha1 of every file (and ``dir`` for every folder) under ``root``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "dir" if path.is_dir() else hashlib.sha1(path.read_bytes()).hexdigest()
    return out


OUT_TARGETS = ("out", "run-out", "pred.jsonl", "report.html", "pm.md", "ens", "run/report.html")


def test_corpus_is_large_and_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_exits_2_with_one_message_and_writes_nothing(case, tmp_path, tiny_encoder_dir, request, capsys):
    run = request.getfixturevalue("real_run") if case.needs_run else None
    argv = case.build(Ctx(tmp_path, tiny_encoder_dir, run))
    before = _snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    shown = f"argv={argv}\nstdout={captured.out[-2000:]}\nstderr={captured.err[-4000:]}"
    assert "Traceback" not in captured.out + captured.err, shown
    assert code == 2, shown
    assert err.startswith("error: ") and sum(line.startswith("error:") for line in err.splitlines()) == 1, shown
    message = re.sub(r"\s+", " ", err)
    assert re.search(case.where, message), f"where {case.where!r} not in: {message}"
    assert re.search(case.fix, message), f"fix {case.fix!r} not in: {message}"
    assert _snapshot(tmp_path) == before, "files were written or changed"
    for name in OUT_TARGETS:
        assert not (tmp_path / name).exists() or name in before, name


# ------------------------------------------------------------------------------------------ accepted quirks
# Not refusals: docs/data.md reads these inputs correctly, so the tests check the parse is right.

QUIRK_ROWS = [(f"message number {i}", "spam" if i % 3 == 0 else "ham") for i in range(30)]
QUIRK_COUNTS = {"ham": 20, "spam": 10}


def _analysis(tmp_path: Path, data: Path, capsys, *extra: str) -> dict:
    code = main(["analyze", str(data), "--out", str(tmp_path / "out"), "--no-plots", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    return json.loads((tmp_path / "out" / "analysis.json").read_text(encoding="utf-8"))


def _total_counts(stats: dict) -> dict:
    out: dict = {}
    for per_split in stats["counts"].values():
        for name, n in per_split.items():
            out[name] = out.get(name, 0) + n
    return out


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_bom_is_not_part_of_the_first_column_name(fmt, tmp_path, capsys):
    if fmt == "csv":
        body = "text,labels\n" + "".join(f"{t},{y}\n" for t, y in QUIRK_ROWS)
    else:
        body = "".join(json.dumps({"text": t, "labels": y}) + "\n" for t, y in QUIRK_ROWS)
    data = _write(tmp_path / "data" / f"train.{fmt}", b"\xef\xbb\xbf" + body.encode("utf-8"))
    stats = _analysis(tmp_path, data, capsys)
    assert stats["task"]["text_column"] == "text" and stats["task"]["label_column"] == "labels"
    assert stats["task"]["labels"] == ["ham", "spam"]
    assert _total_counts(stats) == QUIRK_COUNTS


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_crlf_line_ends_parse_like_lf(fmt, tmp_path, capsys):
    """CRLF files give the same labels, counts and texts as LF files: no ``\\r`` left in a cell."""
    from tailtune.data import load_dataset

    if fmt == "csv":  # the text is the last column, where a stray \r would stick
        body = "labels,text\r\n" + "".join(f"{y},{t}\r\n" for t, y in QUIRK_ROWS)
    else:
        body = "".join(json.dumps({"text": t, "labels": y}) + "\r\n" for t, y in QUIRK_ROWS)
    data = _write(tmp_path / "data" / f"train.{fmt}", body)
    stats = _analysis(tmp_path, data, capsys)
    assert stats["task"]["labels"] == ["ham", "spam"] and stats["task"]["text_column"] == "text"
    assert _total_counts(stats) == QUIRK_COUNTS
    loaded = load_dataset(data)
    texts = [t for split in loaded.splits.values() for t in split["text"]]
    assert sorted(texts) == sorted(t for t, _ in QUIRK_ROWS)


def test_one_megabyte_text_is_accepted_and_truncated_at_tokenisation(tmp_path, real_run, capsys):
    """A 1 MB text loads (lengths report it) and ``predict`` truncates it to the model's limit, saying so."""
    huge = ("word " * 200_000).strip()  # 1,000,000 - 1 bytes
    rows = [(huge, "ham"), *QUIRK_ROWS]
    data = _write(tmp_path / "data" / "train.csv", "text,labels\n" + "".join(f"{t},{y}\n" for t, y in rows))
    stats = _analysis(tmp_path, data, capsys)
    assert max(s["overall"]["max"] for s in stats["lengths"]["splits"].values()) == 200_000
    assert sum(stats["rows"].values()) == len(rows)

    run = tmp_path / "run"
    shutil.copytree(real_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    assert main(["predict", str(run), "--text", huge, "--text", "short text"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert [r["index"] for r in lines] == [1, 2] and all(r["label"] in ("neg", "plot", "pos") for r in lines)
    assert "1 text(s) longer than 16 tokens were truncated" in captured.err


def test_duplicate_ids_are_ignored_and_duplicate_texts_reported(tmp_path, capsys):
    """The loaders know no id column (extra columns are dropped); what matters, duplicate *texts*, is
    reported by ``analyze``: within a split and across splits (leakage warning)."""
    from tailtune.data import load_dataset

    train = "id,text,labels\n" + "".join(f"{i % 5},{t},{y}\n" for i, (t, y) in enumerate(QUIRK_ROWS))
    train += f"0,{QUIRK_ROWS[1][0]},{QUIRK_ROWS[1][1]}\n"  # a duplicate id AND a duplicate text
    test = "id,text,labels\n1,Message  number 4,ham\n2,something new,spam\n"  # normalised duplicate of a train text
    _write(tmp_path / "data" / "train.csv", train)
    _write(tmp_path / "data" / "test.csv", test)
    stats = _analysis(tmp_path, tmp_path / "data", capsys)
    assert stats["leakage"]["across"]["test_in_train"]["rows"] == 1
    # the repeated train text: a duplicate within train, or (when carved out) validation leaking from train
    assert stats["leakage"]["within"]["train"] + stats["leakage"]["across"]["validation_in_train"]["rows"] == 1
    assert any(w["code"] == "leakage" and "test" in w["message"] for w in stats["warnings"])
    loaded = load_dataset(tmp_path / "data")
    assert all(ds.column_names == ["text", "labels"] for ds in loaded.splits.values())
    assert sum(len(ds) for ds in loaded.splits.values()) == len(QUIRK_ROWS) + 1 + 2


def test_markup_like_label_names_print_as_text(tmp_path, capsys):
    rows = "".join(f"text {i},{'[/b]' if i % 2 else '[red]'}\n" for i in range(40))
    data = _write(tmp_path / "data" / "train.csv", "text,labels\n" + rows)
    code = main(["analyze", str(data), "--no-plots"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "[/b]" in captured.out and "[red]" in captured.out


def test_negative_gamma_is_reversed_focal_flagged_by_lint(tmp_path, capsys):
    """gamma < 0 is the documented reversed focal loss (docs/losses.md), so the parser accepts it and
    ``tailtune lint`` reports it as a warning (a legitimate choice for noisy labels): exit code 0."""
    path = _write(tmp_path / "recipe.yaml", "loss: {focal: {gamma: -1.0}}\n")
    assert main(["lint", str(path)]) == 0
    captured = capsys.readouterr()
    assert "reversed_focal" in captured.out and "Traceback" not in captured.err


def _csv(rows, *, sep: str = ",", header: str = "text{sep}labels", end: str = "\n", extra: str = "") -> str:
    head = header.format(sep=sep)
    return head + end + "".join(f"{t}{sep}{y}{extra}{end}" for t, y in rows)


_NFD_SPAM = "spa\u0301m"  # 'spám' with a combining accent
SPREADSHEET_QUIRKS = {
    # a spreadsheet in a locale with decimal commas: ';' between cells, CRLF, a BOM
    "semicolon-crlf-bom": (b"\xef\xbb\xbf" + _csv(QUIRK_ROWS, sep=";", end="\r\n").encode(), (), ["ham", "spam"]),
    "tab-separated-csv": (_csv(QUIRK_ROWS, sep="\t").encode(), (), ["ham", "spam"]),
    # trailing empty columns, padded header names in another case, trailing blank rows
    "empty-columns-and-blank-rows": (
        (_csv(QUIRK_ROWS, header=" Text ,Labels,,", extra=",,") + ",,,\n,,,\n").encode(), ("--drop-empty-text",),
        ["ham", "spam"]),
    # the same label typed precomposed and decomposed
    "nfc-and-nfd-labels": (_csv([(t, "sp\u00e1m" if y == "spam" and i % 2 else (_NFD_SPAM if y == "spam" else y))
                                 for i, (t, y) in enumerate(QUIRK_ROWS)]).encode(), (), ["ham", "sp\u00e1m"]),
    # pandas' to_csv of a list column
    "lists-written-as-text": (_csv([(t, f"\"['{y}']\"") for t, y in QUIRK_ROWS]).encode(), (), ["ham", "spam"]),
}


@pytest.mark.parametrize("name", sorted(SPREADSHEET_QUIRKS))
def test_spreadsheet_and_export_quirks_parse_like_a_clean_file(name, tmp_path, capsys):
    """What spreadsheets and pandas write (issue 18): read as the clean CSV would be, with a note."""
    body, extra, labels = SPREADSHEET_QUIRKS[name]
    data = _write(tmp_path / "data" / "train.csv", body)
    stats = _analysis(tmp_path, data, capsys, *extra)
    assert stats["task"]["labels"] == labels
    assert sorted(_total_counts(stats).values()) == sorted(QUIRK_COUNTS.values())
    assert sum(stats["rows"].values()) == len(QUIRK_ROWS)
