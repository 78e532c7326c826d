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
import json
from pathlib import Path

from wsnas.core.errors import WsnasError
from wsnas.store import Store


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the study's run directory (the report is written there)")
    p.add_argument("--store", default=None, help="results store (default RUN_DIR/results.db)")
    p.add_argument("--experiment", default=None,
                   help="experiment id (default: the one recorded in RUN_DIR/experiment.json, else insights)")


def _recorded(run_dir: Path) -> dict:
    """The contents of RUN_DIR/experiment.json, or {} when there is none."""
    meta = run_dir / "experiment.json"
    if not meta.exists():
        return {}
    try:
        recorded = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WsnasError(f"cannot read {str(meta)!r} ({exc}); give --experiment and --store, "
                         "or delete the file") from None
    if not isinstance(recorded, dict):
        raise WsnasError(f"{str(meta)!r} holds a {type(recorded).__name__}, expected an object "
                         "with 'experiment' and 'store'")
    return recorded


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise WsnasError(f"run directory {str(run_dir)!r} does not exist; run `wsnas insights` first")
    recorded = _recorded(run_dir)
    experiment = args.experiment or recorded.get("experiment") or "insights"
    store_path = args.store
    if store_path is None:
        # the recorded path may be relative to another working directory, or the run directory
        # may have moved since: fall back to the store inside it
        store_path = recorded.get("store")
        if not store_path or not Path(store_path).exists():
            store_path = run_dir / "results.db"
            if not store_path.exists() and (run_dir.parent / "results.db").exists():
                store_path = run_dir.parent / "results.db"  # RUN_DIR/<experiment>/ of a study
    from wsnas.report import write_insights_report

    with Store(store_path, create=False) as store:
        paths = write_insights_report(store, experiment, run_dir)
    print(f"report: {paths['html']} and {paths['md']}")
    for line in paths.get("findings", []):
        print(f"  {line}")
    return 0
