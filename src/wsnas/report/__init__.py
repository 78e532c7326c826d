"""The report of an insights study: ``report.html``, ``report.md`` and PNG figures.

The report reads the results store only through
:func:`wsnas.analysis.insights.analyse_insights` and never trains anything, so it can be
(re)written at any time, also while a study is still running (it then says so).

* :mod:`wsnas.report.figures` draws the figures (matplotlib, Agg canvas, no pyplot);
* :mod:`wsnas.report.render` writes the Markdown and the self-contained HTML.

:func:`write_study_report` (``wsnas report``) finds a study's store and experiment from its run
directory (``RUN_DIR/experiment.json``, written when a study finishes) and writes the report
there.

Example::

    from wsnas.store import Store
    from wsnas.report import write_insights_report

    with Store("wsnas-runs/insights/results.db", read_only=True) as store:
        paths = write_insights_report(store, "insights", "wsnas-runs/insights")
    print(paths["html"], *paths["findings"], sep="\\n")
"""

from __future__ import annotations

import json
from pathlib import Path

from wsnas.core.errors import WsnasError
from wsnas.store import Store

__all__ = ["FIGURE_DIR", "write_insights_report", "write_study_report"]

#: Sub-folder of the output directory that holds the PNG figures.
FIGURE_DIR = "figures"


def write_insights_report(store: Store, experiment: str, out_dir: str | Path) -> dict:
    """Write the report of insights experiment ``experiment`` of ``store`` into ``out_dir``.

    Returns ``{"html": path, "md": path, "figures": [paths], "findings": [lines]}``: the two
    documents, the PNG figures drawn (those without data are skipped), and one line per
    finding, ``"HOLDS: <claim> (<evidence>)"``, ``"DOES NOT HOLD: ..."``, or
    ``"UNDECIDED: ..."`` when a statistic the claim rests on is undefined on this data.
    Paths are strings. Raises :class:`wsnas.core.errors.WsnasError` when the store has no such
    experiment.
    """
    from wsnas.analysis.insights import analyse_insights

    try:  # imported here: matplotlib is needed only when a report is written
        from wsnas.report.figures import write_figures
        from wsnas.report.render import finding_line, write_report
    except ImportError as exc:
        raise WsnasError(f"writing the report needs matplotlib ({exc}); install it with "
                         "`pip install matplotlib`") from None

    analysis = analyse_insights(store, experiment)
    out_dir = Path(out_dir)
    figures = write_figures(analysis, out_dir / FIGURE_DIR)
    html_path, md_path = write_report(analysis, figures, out_dir, FIGURE_DIR)
    return {
        "html": str(html_path),
        "md": str(md_path),
        "figures": [str(p) for p in figures.values()],
        "findings": [finding_line(f) for f in analysis["findings"]],
    }


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


def write_study_report(run_dir: str | Path, *, store_path: str | Path | None = None,
                       experiment: str | None = None) -> dict:
    """Write the report of the study in ``run_dir`` into ``run_dir`` (:func:`write_insights_report`).

    ``experiment`` defaults to the one recorded in ``run_dir/experiment.json``, else
    ``insights``. ``store_path`` defaults to the recorded store if it exists (the recorded path
    may be relative to another working directory, or the run directory may have moved since),
    else ``run_dir/results.db``, else ``run_dir/../results.db`` when only that exists (the
    ``RUN_DIR/<experiment>/`` folder of a study other than the main one). The store is opened,
    never created. Returns :func:`write_insights_report`'s dict.

    Raises:
        WsnasError: an unreadable ``experiment.json``, no store, or no such experiment in it.
    """
    run_dir = Path(run_dir)
    recorded = _recorded(run_dir)
    experiment = experiment or recorded.get("experiment") or "insights"
    if store_path is None:
        store_path = recorded.get("store")
        if not store_path or not Path(store_path).exists():
            store_path = run_dir / "results.db"
            if not store_path.exists() and (run_dir.parent / "results.db").exists():
                store_path = run_dir.parent / "results.db"
    with Store(store_path, read_only=True) as store:
        return write_insights_report(store, experiment, run_dir)
