"""The report of an insights study: ``report.html``, ``report.md`` and PNG figures.

The report reads the results store only through
:func:`wsnas.analysis.insights.analyse_insights` and never trains anything, so it can be
(re)written at any time, also while a study is still running (it then says so).

* :mod:`wsnas.report.figures` draws the figures (matplotlib, Agg canvas, no pyplot);
* :mod:`wsnas.report.render` writes the Markdown and the self-contained HTML.

Example::

    from wsnas.store import Store
    from wsnas.report import write_insights_report

    with Store("wsnas-runs/insights/results.db", create=False) as store:
        paths = write_insights_report(store, "insights", "wsnas-runs/insights")
    print(paths["html"], *paths["findings"], sep="\\n")
"""

from __future__ import annotations

from pathlib import Path

from wsnas.core.errors import WsnasError
from wsnas.store import Store

__all__ = ["FIGURE_DIR", "write_insights_report"]

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
