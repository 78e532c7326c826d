"""Reports: ``report.html``, ``report.md`` and PNG figures of a study or a run.

A report reads the results store only through :mod:`wsnas.analysis` and never trains anything,
so it can be (re)written at any time, also while a study is still running (it then says so).

* :mod:`wsnas.report.figures` draws the insights study's figures (matplotlib, Agg canvas, no pyplot);
* :mod:`wsnas.report.render` holds what a report shows (``Report`` for the insights study,
  ``RunReport`` for one run) and writes the Markdown and the self-contained HTML, rendered by
  :mod:`wsnas.report.templating` from the Jinja2 templates in ``templates/``;
* :mod:`wsnas.report.search` (search study), :mod:`wsnas.report.supernet` (one supernet run) and
  :mod:`wsnas.report.evolve` (one search of a supernet, a validation) write the other reports;
* :mod:`wsnas.report.rundir` records in a run directory what it holds (``experiment.json``).

:func:`write_study_report` (``wsnas report``) finds the store and the run or experiment from a
run directory (``RUN_DIR/experiment.json``) and writes the report its kind calls for there.

Example::

    from wsnas.store import Store
    from wsnas.report import write_insights_report

    with Store("wsnas-runs/insights/results.db", read_only=True) as store:
        paths = write_insights_report(store, "insights", "wsnas-runs/insights")
    print(paths["html"], *paths["findings"], sep="\\n")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from wsnas.core.errors import WsnasError
from wsnas.report.rundir import VALIDATION, read_record
from wsnas.store import Store

if TYPE_CHECKING:
    from wsnas.report.templating import Templates

__all__ = ["FIGURE_DIR", "KINDS", "write_insights_report", "write_study_report"]

#: Sub-folder of the output directory that holds the PNG figures.
FIGURE_DIR = "figures"


def write_insights_report(store: Store, experiment: str, out_dir: str | Path, *,
                          templates: Templates | str | Path | None = None) -> dict:
    """Write the report of insights experiment ``experiment`` of ``store`` into ``out_dir``.

    Returns ``{"html": path, "md": path, "figures": [paths], "findings": [lines]}``: the two
    documents, the PNG figures drawn (those without data are skipped), and one line per
    finding, ``"HOLDS: <claim> (<evidence>)"``, ``"DOES NOT HOLD: ..."``, or
    ``"UNDECIDED: ..."`` when a statistic the claim rests on is undefined on this data.
    Paths are strings. ``templates``: a :class:`~wsnas.report.templating.Templates` or a user's
    folder of templates over the shipped ones. Raises :class:`wsnas.core.errors.WsnasError` when
    the store has no such experiment.
    """
    from wsnas.analysis.insights import analyse_insights

    try:  # imported here: matplotlib is needed only when a report is written
        from wsnas.report.figures import write_figures
        from wsnas.report.render import finding_line, write_report
        from wsnas.report.templating import templates_from
    except ImportError as exc:
        raise WsnasError(f"writing the report needs matplotlib ({exc}); install it with "
                         "`pip install matplotlib`") from None

    templates = templates_from(templates)  # a bad template: before any work
    analysis = analyse_insights(store, experiment)
    out_dir = Path(out_dir)
    figures = write_figures(analysis, out_dir / FIGURE_DIR)
    html_path, md_path = write_report(analysis, figures, out_dir, FIGURE_DIR, templates=templates)
    return {
        "html": str(html_path),
        "md": str(md_path),
        "figures": [str(p) for p in figures.values()],
        "findings": [finding_line(f) for f in analysis["findings"]],
    }


#: What ``wsnas report RUN_DIR`` describes: the kind of the run (in the store) -> what writes it.
KINDS = {"insights": "an insights study (wsnas insights)", "search-study": "a search study (wsnas search --study)",
         "supernet": "a supernet run (wsnas supernet)", "evolve": "a search of a supernet (wsnas evolve)",
         VALIDATION: "a validation of evolution (wsnas evolve --validate-seeds)"}


def _store_of(run_dir: Path, recorded: dict, store_path: str | Path | None) -> Path:
    if store_path is not None:
        return Path(store_path)
    recorded_store = recorded.get("store")
    if recorded_store and Path(recorded_store).exists():
        return Path(recorded_store)
    path = run_dir / "results.db"
    if not path.exists() and (run_dir.parent / "results.db").exists():
        return run_dir.parent / "results.db"
    return path


def _kind(store: Store, run_id: str, recorded: dict) -> str | None:
    """The kind of what ``run_id`` names in ``store`` (None: nothing)."""
    from wsnas.analysis.evolve import validation_runs

    run = store.get_run(run_id)
    if run is not None:
        return run["kind"]
    if recorded.get("kind") == VALIDATION or any(validation_runs(store, run_id).values()):
        return VALIDATION
    return None


def _unknown(store: Store, run_id: str) -> WsnasError:
    found = [r["run_id"] for r in store.list_runs("insights")]
    return WsnasError(f"no insights experiment {run_id!r} in {store.path} (nor another run `wsnas report` "
                      f"describes); found insights experiments: {', '.join(found) or 'none'}; accepted: a directory "
                      f"whose experiment.json names {', '.join(KINDS.values())}, or --store and --experiment naming "
                      "one")


def write_study_report(run_dir: str | Path, *, store_path: str | Path | None = None,
                       experiment: str | None = None, truth: str | None = None, truth_config: str | None = None,
                       templates: str | Path | None = None) -> dict:
    """Write the report of what ``run_dir`` holds into ``run_dir`` (``wsnas report``).

    What it holds is read from ``run_dir/experiment.json`` (:mod:`wsnas.report.rundir`) and the
    store: the kind of the run it names decides the report (:data:`KINDS`). ``experiment`` (a run
    or experiment id) defaults to the recorded one, else to the folder's name when the store holds
    a run of that name (``RUN_DIR/<experiment>/``, the folder of a study other than the main one),
    else ``insights``. ``store_path`` defaults to the recorded store if it exists (the recorded
    path may be relative to another working directory, or the run directory may have moved
    since), else ``run_dir/results.db``, else ``run_dir/../results.db`` when only that exists.
    ``truth`` (a ``--truth`` spec) and ``truth_config`` default to the recorded ones: a supernet
    run and a search are compared with it, a validation needs one. The store is opened
    read-only, never created. ``templates``: a folder of templates over the shipped ones
    (:mod:`wsnas.report.templating`).

    Returns the report's paths ``html`` and ``md``, its ``figures``, and ``findings`` (studies) or
    ``summary`` (runs): lines to print.

    Raises:
        WsnasError: an unreadable ``experiment.json``, no store, nothing that can be reported
            under the id, a bad template folder or template, or a ground truth that cannot be read.
    """
    try:  # imported here: matplotlib is needed only when a report is written
        from wsnas.report.evolve import write_evolve_report, write_validation_report
        from wsnas.report.search import write_search_report
        from wsnas.report.supernet import write_supernet_report
        from wsnas.report.templating import templates_from
    except ImportError as exc:
        raise WsnasError(f"writing the report needs matplotlib ({exc}); install it with "
                         "`pip install matplotlib`") from None

    run_dir = Path(run_dir)
    recorded = read_record(run_dir)
    engine = templates_from(templates)  # a bad folder or template: before any work
    with Store(_store_of(run_dir, recorded, store_path), read_only=True) as store:
        if experiment is None:
            experiment = recorded.get("experiment")
        if experiment is None:
            name = run_dir.resolve().name
            run = store.get_run(name)
            experiment = name if run is not None and run["kind"] in KINDS else "insights"
        kind = _kind(store, experiment, recorded)
        if kind is None:
            raise _unknown(store, experiment)
        if kind not in KINDS:
            raise WsnasError(f"run {experiment!r} of {store.path} is a {kind} run; `wsnas report` describes "
                             f"{', '.join(KINDS.values())}")
        truth = truth if truth is not None else recorded.get("truth")
        truth_config = truth_config if truth_config is not None else recorded.get("truth_config")
        if kind == "insights":
            return write_insights_report(store, experiment, run_dir, templates=engine)
        if kind == "search-study":
            return write_search_report(store, experiment, run_dir, templates=engine)
        if kind == "supernet":
            return write_supernet_report(store, experiment, run_dir, truth=truth, truth_config=truth_config,
                                         templates=engine)
        if kind == "evolve":
            return write_evolve_report(store, experiment, run_dir, truth=truth, truth_config=truth_config,
                                       templates=engine)
        if truth is None:
            raise WsnasError(f"the validation {experiment!r} compares its searches with a ground truth, and none is "
                             "recorded in experiment.json; give --truth (e.g. store, nb201-cifar10)")
        return write_validation_report(store, experiment, run_dir, truth=truth, truth_config=truth_config,
                                       seeds=recorded.get("seeds") if recorded.get("kind") == VALIDATION
                                       and recorded.get("experiment") == experiment else None, templates=engine)
