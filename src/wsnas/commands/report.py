"""Write the report of a study (report.html, report.md, PNG figures) from its results store.

The report only reads the store: it can be written again at any time, also while the study
is still running. The experiment id and the store are taken from RUN_DIR/experiment.json
(written when a study finishes) unless given; without it the store is RUN_DIR/results.db and
the experiment is ``insights``.

A study other than the main one (e.g. the sharing sweep, experiment ``sharing``) keeps its
report and its experiment.json in RUN_DIR/<experiment>/: give that directory.

Examples:
  wsnas report wsnas-runs/insights
  wsnas report wsnas-runs/insights/sharing
  wsnas report wsnas-runs/insights --store other.db --experiment insights
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wsnas.core.errors import WsnasError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the study's run directory (the report is written there)")
    p.add_argument("--store", default=None, help="results store (default RUN_DIR/results.db)")
    p.add_argument("--experiment", default=None,
                   help="experiment id (default: the one recorded in RUN_DIR/experiment.json, else insights)")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise WsnasError(f"run directory {str(run_dir)!r} does not exist; run `wsnas insights` first")
    from wsnas.report import write_study_report

    paths = write_study_report(run_dir, store_path=args.store, experiment=args.experiment)
    print(f"report: {paths['html']} and {paths['md']}")
    for line in paths.get("findings", []):
        print(f"  {line}")
    return 0
