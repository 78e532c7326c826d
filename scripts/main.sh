#!/usr/bin/env bash
# The main job on the embedded default data (scikit-learn's digits): the 64-child insights
# study (ground truth, supernets across seeds and orders, dense evaluation, fine-tuning) and its
# report in wsnas-runs/insights/. Extra arguments go to the command, e.g. `--quick`.
# Its jobs (ground-truth trainings, supernet instances) run in one worker process per core,
# channels-last: on a small CPU that does more per second than one process with every thread
# (docs/scaling-out.md; benchmarks/executor_throughput.py); `--executor local` after it runs them
# in this process instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/wsnas insights --executor processes --channels-last "$@"
