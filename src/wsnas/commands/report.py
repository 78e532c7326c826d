"""Write the report of a run directory (report.html, report.md, PNG figures) from its results store.

RUN_DIR is any directory a wsnas command filled: an insights study (`wsnas insights`; a study
other than the main one, e.g. the sharing sweep, keeps its report in RUN_DIR/<experiment>/), a
search study (`wsnas search --study`: STUDY_DIR/search), a supernet run (`wsnas supernet
--run-dir`: its ranking, training curve and, with a ground truth, GT-Tau/T1R/T3R), or the output
of `wsnas evolve` (--out-dir: the candidates with the front, the best architecture, the
constraints and redraws; for --validate-seeds the validation table and figure). Each records its
run (or experiment) id and store in RUN_DIR/experiment.json; the kind of that run in the store
decides the report. Without experiment.json the store is RUN_DIR/results.db (or
RUN_DIR/../results.db) and the id the folder's name if the store has such a run, else insights.

The report only reads the store: it can be written again at any time, also while a run is still
going. --template DIR renders it from your own templates: a file in DIR replaces the shipped
template of the same name (docs/report-templates.md lists them and their variables).

Examples:
  wsnas report wsnas-runs/insights
  wsnas report wsnas-runs/insights/sharing
  wsnas report wsnas-runs/insights/search
  wsnas report wsnas-runs/supernet/uniform/0 --truth store
  wsnas report wsnas-runs/evolve/spos/evolution/0
  wsnas report wsnas-runs/insights --store other.db --experiment insights
  wsnas report wsnas-runs/insights --template my-templates
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wsnas.core.errors import WsnasError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the run directory (the report is written there)")
    p.add_argument("--store", default=None,
                   help="results store (default: the one recorded in RUN_DIR/experiment.json, else RUN_DIR/results.db)")
    p.add_argument("--experiment", "--run", dest="experiment", default=None,
                   help="experiment or run id (default: the one recorded in RUN_DIR/experiment.json, else insights)")
    p.add_argument("--truth", default=None,
                   help="ground truth for a supernet run or a search ('store', a built-in table, a CSV, "
                        "nb201-DATASET[:PATH]; default: the one the run was given)")
    p.add_argument("--truth-config", default=None,
                   help="with --truth store: the ground truth's config hash, where the store holds several")
    p.add_argument("--template", default=None, metavar="DIR",
                   help="a directory of templates that replace the shipped ones of the same name "
                        "(see docs/report-templates.md)")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise WsnasError(f"run directory {str(run_dir)!r} does not exist; give the directory of a study or run "
                         "(wsnas insights, wsnas search --study, wsnas supernet, wsnas evolve)")
    from wsnas.report import write_study_report

    paths = write_study_report(run_dir, store_path=args.store, experiment=args.experiment, truth=args.truth,
                               truth_config=args.truth_config, templates=args.template)
    print(f"report: {paths['html']} and {paths['md']}")
    for line in [*paths.get("findings", []), *paths.get("summary", [])]:
        print(f"  {line}")
    return 0
