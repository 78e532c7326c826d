#!/usr/bin/env bash
# Speed and memory of wsnas against xautodl and NNI 3.0 on the NB201 supernet: the one command.
# Creates .venv (the project's environment) and benchmarks/.peers-venv (the peers') when missing,
# then runs benchmarks/harness.py; options: bash benchmarks/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import wsnas" >/dev/null 2>&1; then
    bash scripts/setup.sh
fi
exec .venv/bin/python -u benchmarks/harness.py "$@"
