#!/usr/bin/env bash
# The main job on the embedded default data (scikit-learn's digits): the 64-child insights
# study (ground truth, supernets across seeds and orders, dense evaluation, fine-tuning) and its
# report in wsnas-runs/insights/. Extra arguments go to the command, e.g. `--quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wsnas insights "$@"
