"""Benchmark: ``tailtune analyze`` end to end on a generated 1,000,000-row CSV (20 labels, Zipf).

Generates the CSV in a temporary folder (random words from a Zipf vocabulary; label frequencies
proportional to 1/rank^1.1 over 20 labels), then runs in fresh subprocesses, each with an empty
``datasets`` cache:

- the reference: ``pandas.read_csv`` of the same file (just reading it, nothing else);
- ``tailtune analyze FILE --out DIR`` (load + validate + encode + stratified split + statistics +
  analysis.json + 4 PNG plots).

Wall time is measured around each child; CPU time is the ``resource.getrusage(RUSAGE_CHILDREN)``
delta; peak RSS is ``/usr/bin/time -v``'s "Maximum resident set size" of the command (the
authoritative figure). ``getrusage``'s ``ru_maxrss`` is recorded too but over-reads: it is the
maximum over all children so far, and a forked child counts the parent's pages (the generated data)
until it execs. A second ``analyze`` run with the warm ``datasets`` cache is recorded as well. Prints analyze / reference ratios, writes
``benchmarks/results/analyze.json``. Targets (issue 3): < 60 s and < 2 GiB on the 2-core dev box.

Usage: .venv/bin/python benchmarks/analyze.py [--rows 1000000] [--labels 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "analyze.json"


def generate_csv(path: Path, *, rows: int, labels: int, seed: int = 0, zipf_s: float = 1.1) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    names = [f"label_{i:02d}" for i in range(labels)]
    p = 1.0 / np.arange(1, labels + 1) ** zipf_s
    p /= p.sum()
    y = rng.choice(labels, size=rows, p=p)
    vocab = np.array([f"w{i}" for i in range(20_000)])
    wp = 1.0 / np.arange(1, len(vocab) + 1)
    wp /= wp.sum()
    lengths = rng.integers(5, 40, size=rows) + 2 * y  # length depends a little on the class
    words = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=wp)]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    chunk = 100_000
    with pacsv.CSVWriter(str(path), pa.schema([("text", pa.string()), ("label", pa.string())])) as writer:
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            texts = [" ".join(words[bounds[i] : bounds[i + 1]]) for i in range(start, stop)]
            writer.write_table(pa.table({"text": texts, "label": [names[k] for k in y[start:stop]]}))
    counts = np.bincount(y, minlength=labels)
    return {"rows": rows, "labels": labels, "zipf_s": zipf_s, "bytes": path.stat().st_size,
            "largest": int(counts.max()), "smallest": int(counts.min())}


def run_child(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; wall time and the child's peak RSS (getrusage; /usr/bin/time -v when available)."""
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    full = [timer, "-v", *cmd] if timer else cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    out = {"wall_s": wall, "cpu_user_s": after.ru_utime - before.ru_utime, "cpu_sys_s": after.ru_stime - before.ru_stime,
           # ru_maxrss of RUSAGE_CHILDREN is the largest child so far (KiB on Linux); children run in rising order
           "getrusage_maxrss_mib": after.ru_maxrss / 1024}
    if timer:
        for line in proc.stderr.splitlines():
            if "Maximum resident set size" in line:
                out["time_v_maxrss_mib"] = int(line.split(":")[1]) / 1024
    out["peak_rss_mib"] = out.get("time_v_maxrss_mib", out["getrusage_maxrss_mib"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--labels", type=int, default=20)
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated files here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tailtune-bench-analyze-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        csv_path = tmp / "data.csv"
        info_path = tmp / "data.json"
        if args.keep is not None and info_path.exists() and csv_path.exists() and \
                json.loads(info_path.read_text())["rows"] == args.rows and json.loads(info_path.read_text())["labels"] == args.labels:
            data_info = json.loads(info_path.read_text())  # --keep: reuse the generated file
        else:
            t0 = time.perf_counter()
            data_info = generate_csv(csv_path, rows=args.rows, labels=args.labels)
            data_info["generate_s"] = time.perf_counter() - t0
            info_path.write_text(json.dumps(data_info))
        print(f"generated {csv_path} ({data_info['bytes'] / 2**20:.0f} MiB, {args.rows:,} rows, {args.labels} labels, "
              f"largest/smallest class {data_info['largest']:,}/{data_info['smallest']:,}) in {data_info['generate_s']:.1f}s")

        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   HF_DATASETS_DISABLE_PROGRESS_BARS="1")
        env["HF_DATASETS_CACHE"] = str(tmp / "ref-cache")
        reference = run_child([sys.executable, "-c",
                               "import sys, pandas; df = pandas.read_csv(sys.argv[1]); print(len(df))", str(csv_path)], env)
        print(f"reference pandas.read_csv: {reference['wall_s']:.1f}s wall, peak RSS {reference['peak_rss_mib']:.0f} MiB")

        cache = tmp / "analyze-cache"
        shutil.rmtree(cache, ignore_errors=True)  # empty: the CSV -> Arrow conversion is timed too
        env["HF_DATASETS_CACHE"] = str(cache)
        out_dir = tmp / "analysis"
        shutil.rmtree(out_dir, ignore_errors=True)
        cmd = [sys.executable, "-m", "tailtune.cli.main", "analyze", str(csv_path), "--label-column", "label",
               "--out", str(out_dir)]
        load_before = os.getloadavg()[0]
        analyze = run_child(cmd, env)
        warm = run_child(cmd, env)  # second run: the datasets Arrow cache is reused
        written = sorted(p.name for p in out_dir.iterdir())
        stats = json.loads((out_dir / "analysis.json").read_text())
        print(f"tailtune analyze: {analyze['wall_s']:.1f}s wall ({analyze['cpu_user_s']:.1f}s user, "
              f"{analyze['cpu_sys_s']:.1f}s sys), peak RSS {analyze['peak_rss_mib']:.0f} MiB; wrote {written}")
        print(f"tailtune analyze, warm datasets cache: {warm['wall_s']:.1f}s wall ({warm['cpu_user_s']:.1f}s user), "
              f"peak RSS {warm['peak_rss_mib']:.0f} MiB")
        print(f"load average (1 min) before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        ratio_t = analyze["wall_s"] / reference["wall_s"]
        ratio_m = analyze["peak_rss_mib"] / reference["peak_rss_mib"]
        print(f"ratio vs pandas.read_csv (same file, same machine): time x{ratio_t:.2f}, peak RSS x{ratio_m:.2f}")
        ok = analyze["wall_s"] < 60 and analyze["peak_rss_mib"] < 2048
        print(f"target < 60 s and < 2048 MiB: {'met' if ok else 'NOT met'}")
        result = {
            "benchmark": "tailtune analyze on a generated CSV",
            "command": "tailtune analyze data.csv --label-column label --out DIR (fresh process, empty datasets cache)",
            "reference": "pandas.read_csv(data.csv) in a fresh process",
            "data": data_info,
            "analyze": analyze,
            "analyze_warm_cache": warm,
            "reference_result": reference,
            "ratio_time_vs_reference": ratio_t,
            "ratio_peak_rss_vs_reference": ratio_m,
            "target": {"wall_s": 60, "peak_rss_mib": 2048, "met": ok},
            "imbalance_ratio": stats["imbalance"]["ratio"],
            "rows_per_split": stats["rows"],
            "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                        "load_avg_1m_before": load_before, "load_avg_1m_at_end": os.getloadavg()[0]},
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
