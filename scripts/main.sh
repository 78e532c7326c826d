#!/usr/bin/env bash
# The main job on the embedded default data (scikit-learn's digits): ground truth of the
# 64-child space for two seeds, with their seed-to-seed ranking stability.
# Extra arguments go to the command, e.g. `scripts/main.sh --seeds 1`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wsnas groundtruth --space tiny64 --data digits --seeds 2 "$@"
