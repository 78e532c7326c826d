#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install wsnas into it.
# torch is pinned at install time to the CPU build this machine carries; the package itself
# asks only for torch>=2.2. Extra arguments name pip extras, e.g. `scripts/setup.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
extras=""
if [ $# -gt 0 ]; then extras="[$(IFS=,; echo "$*")]"; fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".${extras}" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import wsnas, torch; print(f'wsnas {wsnas.__version__} ready (torch {torch.__version__})')"
