"""Draw the documentation's figures from a finished insights study, with the report's own code.

The figures in ``docs/figures/`` are never drawn by hand: this script reads a study's results
store through :func:`wsnas.analysis.insights.analyse_insights` and draws the chosen figures of
its report with :data:`wsnas.report.figures.FIGURES`, the functions ``wsnas report`` uses.

    PYTHONPATH=src python scripts/docs_figures.py wsnas-runs/insights
    PYTHONPATH=src python scripts/docs_figures.py /work/studies/insights --experiment insights

The store is ``RUN_DIR/results.db`` unless ``--store`` says otherwise, the experiment
``insights`` unless ``--experiment`` does. Each figure is written atomically to
``--out`` (default ``docs/figures``); a figure the study has no data for is an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsnas.analysis.insights import analyse_insights
from wsnas.core.errors import WsnasError
from wsnas.report.figures import FIGURES
from wsnas.store import Store

#: The figures the documentation shows: GT-Tau across epochs and across the last mini-batches
#: (ranking stability), and the rank of every child across those mini-batches.
DEFAULT_FIGURES = ("gt_tau_epochs.png", "gt_tau_dense.png", "rank_heatmap.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished insights study's run directory")
    parser.add_argument("--store", type=Path, help="its results store (default RUN_DIR/results.db)")
    parser.add_argument("--experiment", default="insights", help="the experiment of the store (default insights)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"),
                        help="folder of the PNGs (default docs/figures)")
    parser.add_argument("--figures", default=",".join(DEFAULT_FIGURES),
                        help=f"comma-separated figure names, of {', '.join(FIGURES)} "
                             f"(default {','.join(DEFAULT_FIGURES)})")
    return parser.parse_args(argv)


def docs_figures(run_dir: Path, store_path: Path | None, experiment: str, out: Path,
                 names: list[str]) -> list[Path]:
    """Draw ``names`` of the study in ``run_dir`` into ``out``; returns the paths written."""
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise WsnasError(f"unknown figure {unknown[0]!r}; accepted: {', '.join(FIGURES)}")
    store_path = store_path or run_dir / "results.db"
    if not store_path.is_file():
        raise WsnasError(f"no results store at {str(store_path)!r}; give --store")
    if not out.is_dir():
        raise WsnasError(f"output folder {str(out)!r} does not exist; create it or give --out")
    with Store(store_path, read_only=True) as store:
        analysis = analyse_insights(store, experiment)
    written = []
    for name in names:
        path = FIGURES[name](analysis, out / name)
        if path is None:
            raise WsnasError(f"the study {experiment!r} in {str(store_path)!r} has no data for {name!r}")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.figures.split(",") if n.strip()]
    try:
        paths = docs_figures(args.run_dir, args.store, args.experiment, args.out, names)
    except WsnasError as exc:
        print(f"docs_figures.py: error: {exc}", file=sys.stderr)
        return 2
    print(*paths, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
