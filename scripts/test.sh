#!/usr/bin/env bash
# Install wsnas with its test dependencies into .venv, lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check src tests benchmarks
exec .venv/bin/python -m pytest "$@"
