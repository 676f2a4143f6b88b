#!/usr/bin/env bash
# Refreshes requirements/lock.txt, the versions scripts/setup.sh installs (README "Dependency lock").
#
#   bash scripts/lock.sh                  fresh venv (.venv-lock) with the NEWEST allowed versions,
#                                         ruff + the whole suite; writes the lock only if both pass
#   bash scripts/lock.sh --freeze VENV    write the lock from VENV as it is (a venv the suite just passed in)
#
# The lock pins every package of the venv except tailtune itself and torch (and its CUDA wheels):
# torch is pinned by scripts/setup.sh (the CPU 2.13.0 build) and a GPU machine keeps its own.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements/lock.txt

freeze() {
  local venv=$1
  local py=$venv/bin/python
  local tmp
  tmp=$(mktemp)
  {
    echo "# The versions the whole test suite passed with; scripts/setup.sh installs with this file as a"
    echo "# constraint (pip -c). Do not edit by hand: refresh with \`bash scripts/lock.sh\` (README, Dependency lock)."
    echo "# Written $(date -u +%Y-%m-%d) from $($py -c 'import platform, sys; print(f"CPython {sys.version.split()[0]} on {platform.system()} {platform.machine()}")')."
    echo "# torch is not here: scripts/setup.sh pins torch==2.13.0 (CPU build); a GPU machine keeps its own."
    "$py" -m pip freeze --exclude-editable --disable-pip-version-check \
      | grep -viE '^(torch|triton|nvidia-[a-z0-9-]+|tailtune)(==| @)' | LC_ALL=C sort -f
  } > "$tmp"
  mv "$tmp" "$LOCK"
  echo "lock.sh: wrote $LOCK ($(grep -vc '^#' "$LOCK") packages)"
}

if [ "${1:-}" = "--freeze" ]; then
  freeze "${2:?usage: scripts/lock.sh --freeze VENV}"
  exit 0
fi
VENV=${TAILTUNE_LOCK_VENV:-.venv-lock}
rm -rf "$VENV"
TAILTUNE_VENV="$VENV" TAILTUNE_DEPS=newest bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$VENV/bin/ruff" check .
"$VENV/bin/python" -m pytest -q "$@"
freeze "$VENV"
echo "lock.sh: review \`git diff $LOCK\`, then commit it with the test result"
