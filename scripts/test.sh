#!/usr/bin/env bash
# Install wsnas with its test dependencies and the ray extra into .venv, lint (ruff, import-linter), and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test ray
# The report test opens the HTML in headless Chromium; install Debian's package where we can.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the report test ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "could not install chromium; the browser test will be skipped"
fi
.venv/bin/ruff check src tests benchmarks examples
# the import layers of docs/architecture.md (contracts in pyproject.toml): an upward import fails here
.venv/bin/lint-imports --no-cache
exec .venv/bin/python -m pytest "$@"
