# Sourced by benchmarks/gpu_kit.sh and benchmarks/fit_gpu.sh: the one preflight of a GPU session.
# kit_env SMOKE SITE DATA_DIR LOG: with the carried wheels (.whl/, not under --smoke) installed into
# SITE (datasets from .whl/fallback when the first set does not import), PYTHONPATH set to SITE and
# src/, the carried data (.gpukit/data.tar.xz) unpacked into DATA_DIR as TAILTUNE_BENCH_DATA and the
# carried MiniLM (.gpukit/minilm-fp16) as TAILTUNE_BENCH_MODEL. Expects PYTHON and ROOT (the
# repository root, the working directory). Returns 3 when the imports fail even after the fallback.
kit_env() {
  local smoke=$1 site=$2 data_dir=$3 log=$4
  local imports='import torch, transformers, datasets, pydantic, sklearn, safetensors, tailtune.training.pipeline'
  export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
  export HF_DATASETS_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
  rm -rf "$site"
  if [ "$smoke" = 0 ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl \
      2>&1 | grep -v -i 'warning' | tee -a "$log"
    export PYTHONPATH="$site:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  else
    export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  fi
  if [ -f .gpukit/data.tar.xz ]; then
    rm -rf "$data_dir" && mkdir -p "$data_dir"
    tar -xJf .gpukit/data.tar.xz -C "$data_dir" && export TAILTUNE_BENCH_DATA="$data_dir"
  fi
  [ -f .gpukit/minilm-fp16/model.safetensors ] && export TAILTUNE_BENCH_MODEL="$ROOT/.gpukit/minilm-fp16"
  if ! $PYTHON -c "$imports" >>"$log" 2>&1; then
    echo "[kit_env] imports failed with datasets $(ls .whl/datasets-*.whl 2>/dev/null); trying .whl/fallback" | tee -a "$log"
    if ls .whl/fallback/*.whl >/dev/null 2>&1; then
      rm -rf "$site"/datasets "$site"/datasets-*.dist-info  # one version only
      $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
        .whl/fallback/*.whl 2>&1 | grep -v -i 'warning' | tee -a "$log"
    fi
    if ! $PYTHON -c "$imports" 2>&1 | tail -5 | tee -a "$log"; then
      echo "[kit_env] imports still fail: stopping (see the log)" | tee -a "$log"
      return 3
    fi
  fi
  return 0
}
