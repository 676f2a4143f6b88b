#!/usr/bin/env bash
# One prepared command for a GPU session (issue 15): the training-speed figures re-measured in one
# run of at most 6 minutes on an H100/H200, every stage and every arm under its own cap, a progress
# line at least every 15 s, every result file rewritten after each arm (a stopped stage keeps what
# it finished), results under $OUT (8 files at most, no folders).
#
# Before (here, once): .venv/bin/python benchmarks/build_gpu_kit.py   (.whl/ and .gpukit/, ~52 MiB)
# On the GPU:          run(command="bash benchmarks/gpu_kit.sh", carry=[".whl", ".gpukit"], timeout_s=420)
# CPU dry run here:    OUT=/tmp/kit-smoke bash benchmarks/gpu_kit.sh --smoke
#
# Stages (caps in seconds; a stage starts only with >= 20 s of the budget left and gets at most
# what is left): 1 preflight (wheels, data, imports, versions -> env.json); 2 losses (the loss
# timings, benchmarks/losses.py, owned by the losses work, 40); 3 train_throughput (MiniLM on
# tweeteval_emotion, bert-base MFU; arms cheapest first, each stopped at KIT_ARM_CAP_S, the
# compile time bounded by the arms' recipes, train.compile_budget_s) with all but ~100 s; 4
# train_throughput_40k (MiniLM on the synthetic 40k multi-label set, vanilla and CUDA graphs, both
# stopped at step KIT_40K_STEPS); 5 step_overhead (host ms/step and syncs per step on the GPU,
# 35) if time is left. benchmarks/README.md explains; kit_summary.py prints the headline.
#
# Options: --smoke (tiny sizes on CPU), --only "losses train_throughput ..." (only those stages; the
# preflight always runs), KIT_BUDGET_S (default 330: the kit ends within 6 minutes with its
# summary; 1500 with --smoke), KIT_LOSSES_CAP_S (default 40; losses.py gets --budget-s of 15 s
# less), KIT_ARM_CAP_S (default 45), KIT_40K_STEPS (default 700 of the
# 1,250 steps of an epoch), KIT_STAGES_EXTRA ("predict finetune": the older issue-4/5 stages, off
# by default: they need their own session), PYTHON (default python3; .venv/bin/python with
# --smoke when present).
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
if [ "$SMOKE" = 1 ]; then BUDGET=${KIT_BUDGET_S:-1500}; else BUDGET=${KIT_BUDGET_S:-330}; fi
ARM_CAP=${KIT_ARM_CAP_S:-45}
START=$(date +%s)
if [ -z "${PYTHON:-}" ]; then
  if [ "$SMOKE" = 1 ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
SUMMARY=()
STAGE_FILE=$(mktemp /tmp/tailtune-kit-stage.XXXXXX)
echo preflight >"$STAGE_FILE"

log() { echo "[kit $(($(date +%s) - START))s] $*" | tee -a "$LOG"; }
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
left() { echo $((BUDGET - ($(date +%s) - START))); }

# a progress line every 12 s whatever runs (pip, compilation, a stage's own silence)
( while sleep 12; do
    [ -f "$STAGE_FILE" ] || exit 0
    echo "[kit $(($(date +%s) - START))s] ... $(cat "$STAGE_FILE" 2>/dev/null) running" | tee -a "$LOG"
  done ) &
HEARTBEAT=$!
trap 'kill $HEARTBEAT 2>/dev/null; rm -f "$STAGE_FILE"' EXIT

# run_stage NAME CAP COMMAND...: runs COMMAND under min(CAP, budget left), logs rc and seconds
run_stage() {
  local name=$1 cap=$2; shift 2
  wanted "$name" || return 0
  local budget_left; budget_left=$(left)
  if [ "$budget_left" -lt 20 ]; then
    log "skip $name: ${budget_left}s of the ${BUDGET}s budget left"; SUMMARY+=("$name skipped (budget)"); return 0
  fi
  [ "$cap" -gt "$budget_left" ] && cap=$budget_left
  echo "$name" >"$STAGE_FILE"
  log "start $name (cap ${cap}s): $*"
  local t0; t0=$(date +%s)
  timeout -k 10 "$cap" "$@" 2>&1 | grep --line-buffered -v -E 'examples/s\]|it/s\]|s/it\]|^\s*$' | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  local dt=$(($(date +%s) - t0))
  [ "$rc" = 124 ] && rc="124 (stopped at its cap; partial JSON kept)"
  log "end $name: rc $rc, ${dt}s"
  SUMMARY+=("$name rc=$rc ${dt}s")
  echo "between stages" >"$STAGE_FILE"
}

# ---- 1. preflight --------------------------------------------------------------------------
log "preflight (smoke=$SMOKE, budget ${BUDGET}s, arm cap ${ARM_CAP}s, python $PYTHON, out $OUT)"
. "$ROOT/benchmarks/_kit_env.sh"
kit_env "$SMOKE" /tmp/tailtune-kit-site /tmp/tailtune-kit-data "$LOG" || exit 3
$PYTHON - "$OUT/env.json" <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, platform, shutil, subprocess, sys
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
       "nvidia_smi": smi, "cpu_count": os.cpu_count(), "c_compiler": shutil.which("cc") or shutil.which("gcc"),
       "data": os.environ.get("TAILTUNE_BENCH_DATA"), "model": os.environ.get("TAILTUNE_BENCH_MODEL")}
json.dump(env, open(sys.argv[1], "w"), indent=2)
print("env:", env["device"], "| torch", versions["torch"], "| transformers", versions["transformers"], "| datasets",
      versions["datasets"], "| triton", versions["triton"], "| cc", env["c_compiler"], "|", smi)
EOF
SUMMARY+=("preflight $(($(date +%s) - START))s")

if [ "$SMOKE" = 1 ]; then
  DEV=cpu
  STEP_ARGS=(--device cpu --arms vanilla floor tailtune compile --steps 24 --warm 4 --repeats 1 --compile-backend eager)
  LOSSES_ARGS=(--device cpu --n 256 --classes 8 --batches 32 --dim 16 --iters 2 --rounds 2)
  THROUGHPUT_ARGS=(--smoke --compile-backend eager)
  MAX_STEPS_40K=4
  PREDICT_ARGS=(--device cpu --n 48 --repeats 1 --batch-size 16 --max-length 32)
  FINETUNE_ARGS=(--limit 40 --epochs 1 --seeds 13 --datasets tweeteval_emotion --max-length 32)
  CAPS=(200 60 100000 120 200)
else
  DEV=cuda
  STEP_ARGS=(--device cuda --arms vanilla tailtune-trainer-loop tailtune cuda-graphs cuda-graphs-step floor --steps 60 --warm 10 --repeats 1)
  # losses.py stops starting new cases after --budget-s (its own flag); 15 s of the stage's cap are
  # left for importing torch and finishing the last case (a first CUDA call compiles its kernels)
  LOSSES_CAP=${KIT_LOSSES_CAP_S:-40}
  LOSSES_ARGS=(--device cuda --rounds 8 --budget-s $((LOSSES_CAP - 15)))
  THROUGHPUT_ARGS=()
  MAX_STEPS_40K=${KIT_40K_STEPS:-700}
  PREDICT_ARGS=(--device cuda --n 5000 --repeats 5)
  read -r -a FT_SETS <<<"${KIT_FINETUNE_DATASETS:-tweeteval_emotion mams_acsa reuters21578_modapte}"
  FINETUNE_ARGS=(--datasets "${FT_SETS[@]}" --seeds 13 14 15 --order dataset)
  CAPS=(35 "$LOSSES_CAP" 100000 50 100000)  # train_throughput and finetune: whatever is left
fi

# ---- 2-5. the benchmarks ---------------------------------------------------------------------
run_stage losses "${CAPS[1]}" $PYTHON benchmarks/losses.py "${LOSSES_ARGS[@]}" --out "$OUT/losses-$DEV.json"
# MiniLM on tweeteval_emotion (vanilla, the default path, CUDA graphs) and bert-base (vanilla, CUDA
# graphs: the MFU shape), then the 40k multi-label set (vanilla, CUDA graphs), every arm of it
# stopped at the same step (same batches, same schedule: F1 comparable) so the pair fits
cap=$(left); [ "$cap" -gt "${CAPS[2]}" ] && cap=${CAPS[2]}
cap=$((cap - 100))  # keep about 100 s for the 40k pair and the summary
run_stage train_throughput "$cap" $PYTHON benchmarks/train_throughput.py "${THROUGHPUT_ARGS[@]}" \
  --plan minilm-tweeteval=vanilla,tailtune,tailtune-graphs bert-base-128=vanilla,tailtune-graphs \
  --budget-s $((cap - 10)) --arm-cap-s "$ARM_CAP" --out "$OUT/train_throughput.json"
cap=$(left); cap=$((cap - 8))  # leave time for the summary
run_stage train_throughput_40k "$cap" $PYTHON benchmarks/train_throughput.py "${THROUGHPUT_ARGS[@]}" \
  --plan minilm-synthetic40k=vanilla,tailtune-graphs --max-steps "$MAX_STEPS_40K" \
  --budget-s $((cap - 10)) --arm-cap-s "$ARM_CAP" --merge --out "$OUT/train_throughput.json"
run_stage step_overhead "${CAPS[0]}" $PYTHON benchmarks/step_overhead.py "${STEP_ARGS[@]}" \
  --out "$OUT/step_overhead-$DEV.json"
# the older stages (issues 4/5), only when asked for: KIT_STAGES_EXTRA="predict finetune"
for extra in ${KIT_STAGES_EXTRA:-}; do
  case "$extra" in
    predict) run_stage predict "${CAPS[3]}" $PYTHON benchmarks/predict.py "${PREDICT_ARGS[@]}" --out "$OUT/predict_$DEV.json" ;;
    finetune)
      cap=${CAPS[4]}; [ "$cap" -gt "$(left)" ] && cap=$(left)
      run_stage finetune "$cap" $PYTHON benchmarks/finetune.py "${FINETUNE_ARGS[@]}" --budget-s $((cap - 15)) \
        --out "$OUT/finetune.json" ;;
    *) log "KIT_STAGES_EXTRA: unknown stage $extra (predict, finetune)" ;;
  esac
done

# ---- summary -------------------------------------------------------------------------------
echo summary >"$STAGE_FILE"
log "stages: ${SUMMARY[*]}"
$PYTHON benchmarks/kit_summary.py "$OUT" 2>&1 | tee -a "$LOG"
log "done in $(($(date +%s) - START))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
