#!/usr/bin/env bash
# One prepared command for a GPU session: every GPU benchmark of issues 2, 4, 5, 7 and 8 in about
# 9 minutes, each stage with its own time cap, all results under $OUT (8 files at most, no folders).
#
# Before (here, once): .venv/bin/python benchmarks/build_gpu_kit.py   (.whl/ and .gpukit/, ~52 MiB)
# On the GPU:          run(command="bash benchmarks/gpu_kit.sh", carry=[".whl", ".gpukit"], timeout_s=600)
# CPU dry run here:    OUT=/tmp/kit-smoke bash benchmarks/gpu_kit.sh --smoke
#
# Stages (caps in seconds; a stage starts only with >= 20 s of the budget left and gets at most
# what is left): 1 preflight (wheels, data, imports, versions -> env.json), 2 losses (issue 2, 60),
# 3 predict (issue 5, 50), 4 train_throughput (issue 8, 250), 5 finetune with the rest, reduced to
# what fits (issue 4, with the screening check of issue 7 as two extra tweeteval arms). Each benchmark rewrites its JSON as
# it goes, so a stage stopped by its cap keeps what it finished. benchmarks/README.md explains.
#
# Options: --smoke (tiny sizes on CPU), --only "losses predict ..." (run only those stages; the
# preflight always runs), KIT_BUDGET_S (default 540), KIT_FINETUNE_DATASETS (default
# "tweeteval_emotion mams_acsa reuters21578_modapte"), PYTHON (default python3; .venv/bin/python
# with --smoke when present).
set -uo pipefail

SMOKE=0
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --only) ONLY="$2"; shift ;;
    *) echo "gpu_kit.sh: unknown option $1 (use --smoke, --only 'STAGE ...')" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-/tmp/tailtune-gpukit-out}
mkdir -p "$OUT"
LOG="$OUT/kit.log"
: >"$LOG"
BUDGET=${KIT_BUDGET_S:-540}
START=$(date +%s)
if [ -z "${PYTHON:-}" ]; then
  if [ "$SMOKE" = 1 ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_DATASETS_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
SUMMARY=()

log() { echo "[kit $(($(date +%s) - START))s] $*" | tee -a "$LOG"; }
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# run_stage NAME CAP COMMAND...: runs COMMAND under min(CAP, budget left), logs rc and seconds
run_stage() {
  local name=$1 cap=$2; shift 2
  wanted "$name" || return 0
  local left=$((BUDGET - ($(date +%s) - START)))
  if [ "$left" -lt 20 ]; then
    log "skip $name: ${left}s of the ${BUDGET}s budget left"; SUMMARY+=("$name skipped (budget)"); return 0
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  log "start $name (cap ${cap}s): $*"
  local t0; t0=$(date +%s)
  timeout -k 10 "$cap" "$@" 2>&1 | grep --line-buffered -v -E 'examples/s\]|it/s\]|s/it\]|^\s*$' | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  local dt=$(($(date +%s) - t0))
  [ "$rc" = 124 ] && rc="124 (stopped at its cap; partial JSON kept)"
  log "end $name: rc $rc, ${dt}s"
  SUMMARY+=("$name rc=$rc ${dt}s")
}

# ---- 1. preflight --------------------------------------------------------------------------
log "preflight (smoke=$SMOKE, budget ${BUDGET}s, python $PYTHON, out $OUT)"
SITE=/tmp/tailtune-kit-site
rm -rf "$SITE"
if [ "$SMOKE" = 0 ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    2>&1 | grep -v -i 'warning' | tee -a "$LOG"
  export PYTHONPATH="$SITE:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -f .gpukit/data.tar.xz ]; then
  rm -rf /tmp/tailtune-kit-data && mkdir -p /tmp/tailtune-kit-data
  tar -xJf .gpukit/data.tar.xz -C /tmp/tailtune-kit-data && export TAILTUNE_BENCH_DATA=/tmp/tailtune-kit-data
fi
[ -f .gpukit/minilm-fp16/model.safetensors ] && export TAILTUNE_BENCH_MODEL="$ROOT/.gpukit/minilm-fp16"

IMPORTS='import torch, transformers, datasets, pydantic, sklearn, safetensors, tailtune.training.run'
if ! $PYTHON -c "$IMPORTS" >>"$LOG" 2>&1; then
  log "imports failed with datasets $(ls .whl/datasets-*.whl 2>/dev/null); trying .whl/fallback"
  if ls .whl/fallback/*.whl >/dev/null 2>&1; then
    rm -rf "$SITE"/datasets "$SITE"/datasets-*.dist-info  # one version only
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      .whl/fallback/*.whl 2>&1 | grep -v -i 'warning' | tee -a "$LOG"
  fi
  if ! $PYTHON -c "$IMPORTS" 2>&1 | tail -5 | tee -a "$LOG"; then
    log "imports still fail: stopping (see kit.log)"; exit 3
  fi
fi
$PYTHON - "$OUT/env.json" <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, platform, subprocess, sys
from importlib import metadata
import torch
names = ["torch", "transformers", "accelerate", "datasets", "pyarrow", "fsspec", "huggingface-hub", "pydantic",
         "pydantic-core", "typing-extensions", "numpy", "scikit-learn", "safetensors", "tokenizers", "triton",
         "pytorch-metric-learning", "dill", "multiprocess"]
versions = {}
for n in names:
    try:
        versions[n] = metadata.version(n)
    except metadata.PackageNotFoundError:
        versions[n] = None
smi = ""
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
except Exception as exc:  # no GPU tools here (CPU smoke)
    smi = f"unavailable: {type(exc).__name__}"
env = {"python": sys.executable, "python_version": platform.python_version(), "versions": versions,
       "cuda_available": torch.cuda.is_available(),
       "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
       "nvidia_smi": smi, "cpu_count": os.cpu_count(),
       "data": os.environ.get("TAILTUNE_BENCH_DATA"), "model": os.environ.get("TAILTUNE_BENCH_MODEL")}
json.dump(env, open(sys.argv[1], "w"), indent=2)
print("env:", env["device"], "| torch", versions["torch"], "| transformers", versions["transformers"], "| datasets",
      versions["datasets"], "| pyarrow", versions["pyarrow"], "|", smi)
EOF
SUMMARY+=("preflight $(($(date +%s) - START))s")

if [ "$SMOKE" = 1 ]; then
  DEV=cpu
  LOSSES_ARGS=(--device cpu --n 256 --classes 8 --batches 32 --dim 16 --iters 2 --rounds 2)
  PREDICT_ARGS=(--device cpu --n 48 --repeats 1 --batch-size 16 --max-length 32)
  THROUGHPUT_ARGS=(--smoke --suites bert-base-128 minilm-tweeteval --arms vanilla tailtune)
  FINETUNE_ARGS=(--limit 40 --epochs 1 --seeds 13 --datasets tweeteval_emotion --max-length 32
                 --extra tweeteval_emotion:ce)
  CAPS=(120 120 400 400)
else
  DEV=cuda
  LOSSES_ARGS=(--device cuda)
  PREDICT_ARGS=(--device cuda --n 5000 --repeats 5)
  THROUGHPUT_ARGS=()
  # data set by data set, all 3 seeds each (complete evidence per set; what does not fit is
  # recorded as skipped and a later session runs it: KIT_FINETUNE_DATASETS=... --only finetune)
  read -r -a FT_SETS <<<"${KIT_FINETUNE_DATASETS:-tweeteval_emotion mams_acsa reuters21578_modapte}"
  FINETUNE_ARGS=(--datasets "${FT_SETS[@]}" --seeds 13 14 15 --order dataset
                 --extra tweeteval_emotion:ce tweeteval_emotion:focal:0.5)
  CAPS=(60 50 250 100000)  # finetune: whatever is left
fi

# ---- 2-5. the benchmarks -------------------------------------------------------------------
run_stage losses "${CAPS[0]}" $PYTHON benchmarks/losses.py "${LOSSES_ARGS[@]}" --out "$OUT/losses-$DEV.json"
run_stage predict "${CAPS[1]}" $PYTHON benchmarks/predict.py "${PREDICT_ARGS[@]}" --out "$OUT/predict_$DEV.json"
left() { echo $((BUDGET - ($(date +%s) - START))); }
cap=${CAPS[2]}; [ "$cap" -gt "$(left)" ] && cap=$(left)
run_stage train_throughput "$cap" $PYTHON benchmarks/train_throughput.py "${THROUGHPUT_ARGS[@]}" \
  --budget-s $((cap - 15)) --out "$OUT/train_throughput.json"
cap=${CAPS[3]}; [ "$cap" -gt "$(left)" ] && cap=$(left)
cap=$((cap - 10))  # leave time for the summary
run_stage finetune "$cap" $PYTHON benchmarks/finetune.py "${FINETUNE_ARGS[@]}" \
  --budget-s $((cap - 15)) --out "$OUT/finetune.json"

# ---- summary -------------------------------------------------------------------------------
log "stages: ${SUMMARY[*]}"
$PYTHON benchmarks/kit_summary.py "$OUT" 2>&1 | tee -a "$LOG"
log "done in $(($(date +%s) - START))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
