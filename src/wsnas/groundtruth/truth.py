"""Readers for the two tables the metrics compare: predictions and ground truth.

* :func:`read_predictions_csv` reads a matrix of predicted scores (rows = ranking instances,
  e.g. one per global step; columns = architectures).
* :func:`align_predictions` maps the prediction columns onto the rows of a ground truth.
* :func:`truth_from_store` builds the ground truth trained here from a results store.
* :func:`load_truth` loads a ground truth from a built-in table, a CSV file or a results store.
* :func:`resolve_truth` turns a ``--truth`` option (``store`` or anything :func:`load_truth`
  accepts) into a ground truth; every command and experiment goes through it.
* :func:`score_predictions` reads a predictions file, loads a ground truth, aligns the two and
  computes the ranking metrics of every row (``wsnas metrics``).

Accuracies may be given as fractions or as percentages: when any value of a table is greater
than 1.0 the whole table is taken to be in percent and divided by 100. For predictions this
changes no ranking metric; it only keeps the numbers comparable. A ground-truth column that
mixes the two (a value in (0, 1] that, as a percentage, would lie within the range of the
values above 1) is refused with both rows named; so is a row whose ``index`` is not the index
of its ``arch`` in the table's space (named by the caller, or the space whose names the
``arch`` column holds).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from wsnas.core.errors import WsnasError, shown
from wsnas.groundtruth.table import TruthTable
from wsnas.metrics import EvaluationResult, evaluate_rows
from wsnas.spaces import SPACES, Space, get_space
from wsnas.store import ACCURACY_METRICS, Store

__all__ = [
    "BUILTIN_TRUTHS",
    "BuiltinTruth",
    "LABEL_COLUMN_NAMES",
    "PredictionScores",
    "STORE_TRUTH",
    "TRUTH_VALUE_COLUMNS",
    "align_predictions",
    "check_store_truth",
    "check_truth_covers",
    "load_truth",
    "read_predictions_csv",
    "read_truth_csv",
    "resolve_truth",
    "score_predictions",
    "truth_from_store",
]

#: Header names (case-insensitive) that mark the first column of a predictions CSV as the
#: row label rather than an architecture. An empty first header cell does too.
LABEL_COLUMN_NAMES = frozenset({
    "step", "global_step", "epoch", "checkpoint", "iteration", "iter", "batch", "row",
    "label", "instance", "run", "seed", "name",
})

#: Value columns tried, in order, when a ground-truth CSV is read without an explicit metric.
TRUTH_VALUE_COLUMNS = ("test_acc_mean", "test_acc", "accuracy", "valid_acc")

#: The ``--truth`` value that means the ground truth trained here (``wsnas groundtruth``) and kept
#: in the results store the command works on.
STORE_TRUTH = "store"

#: File name endings read as a results store (``wsnas.store``).
STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True)
class BuiltinTruth:
    """A ground-truth table shipped inside the package.

    Attributes:
        package: the package holding the CSV (read with ``importlib.resources``).
        resource: the CSV file name; it has ``index`` and ``arch`` columns.
        space: search-space name of the architectures.
        dataset: dataset the accuracies were measured on.
        metric: the default value column.
        description: one line for listings.
    """

    package: str
    resource: str
    space: str
    dataset: str
    metric: str
    description: str


#: Built-in ground-truth tables by name; later search spaces add their entries here.
BUILTIN_TRUTHS: dict[str, BuiltinTruth] = {
    "tiny64-cifar10": BuiltinTruth(
        package="wsnas.groundtruth.benchmarks",
        resource="tiny64_cifar10_groundtruth.csv",
        space="tiny64",
        dataset="cifar10",
        metric="test_acc_mean",
        description="Zhang et al. (2020): 64 tiny64 children trained alone 10 times on CIFAR-10",
    ),
}


# --------------------------------------------------------------------------------------------
# small helpers


def _quote_list(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(x) for x in items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


def _read_csv_rows(path: Path, text: str | None = None, what: str = "file") -> list[list[str]]:
    """All non-blank rows of a CSV file (cells stripped), or a WsnasError naming the file.

    ``what`` names the file's role in messages (e.g. ``"predictions file"``).
    """
    if text is None:
        if not path.exists():
            raise WsnasError(f"{what} {str(path)!r} not found")
        if path.is_dir():
            raise WsnasError(f"{what} {str(path)!r} is a directory; expected a CSV file")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise WsnasError(f"cannot read {str(path)!r}: {exc}") from exc
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(text.splitlines())]
    except csv.Error as exc:
        raise WsnasError(f"{str(path)!r} is not a valid CSV file: {exc}") from exc
    return [row for row in rows if any(row)]


def _scale_percent(values: np.ndarray) -> np.ndarray:
    """Divide by 100 when any value exceeds 1.0 (the table is in percent)."""
    if values.size and float(np.max(values)) > 1.0:
        return values / 100.0
    return values


def _check_one_scale(values: np.ndarray, name: str, column: str) -> None:
    """Refuse a column that mixes fractions with percentages: a value in (0, 1] that, read as a
    fraction, lies within the range of the percentages (a percentage below 1 that stays below the
    others as a fraction, such as chance accuracy on 120 classes, is kept)."""
    percent = values > 1.0
    if not percent.any():
        return
    top = float(values[percent].max())
    for i, v in enumerate(values):
        if 0.0 < v <= 1.0 and 100.0 * v <= top:
            j = int(np.argmax(percent))
            raise WsnasError(
                f"ground-truth file {name!r}, column {column!r}: data row {i + 1} has {v:g}, a fraction, and "
                f"data row {j + 1} has {values[j]:g}, a percentage; accepted: one scale per column, fractions "
                "in [0, 1] or percentages in [0, 100]")


def _space_of(space: str, archs: Sequence[str]) -> Space | None:
    """The space ``space`` names, else the first space that reads the first architecture's name."""
    if space in SPACES:
        return get_space(space)
    for name in SPACES:
        candidate = get_space(name)
        try:
            candidate.parse(archs[0])
        except WsnasError:
            continue
        return candidate
    return None


def _check_indices(space: Space, archs: Sequence[str], indices: Sequence[int], name: str) -> None:
    """Every row's ``arch`` must be an architecture of ``space`` with the row's ``index``."""
    for i, (arch, index) in enumerate(zip(archs, indices)):
        where = f"ground-truth file {name!r}, data row {i + 1}"
        try:
            parsed = space.parse(arch)
        except WsnasError as exc:
            raise WsnasError(f"{where}: arch {arch!r} is not a {space.name} architecture like the first "
                             f"row's {archs[0]!r} ({exc})") from None
        if index >= 0 and space.index(parsed) != index:
            raise WsnasError(f"{where}: index {index} and arch {arch!r} disagree ({arch!r} is index "
                             f"{space.index(parsed)} of {space.name}); accepted: rows whose index is their arch's")


def _parse_float(cell: str, where: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        shown = repr(cell) if cell else "an empty cell"
        raise WsnasError(f"{where}: {shown} is not a number") from None
    if not math.isfinite(value):
        raise WsnasError(f"{where}: {cell!r} is not a finite number")
    return value


# --------------------------------------------------------------------------------------------
# predictions


def read_predictions_csv(path: str | Path) -> tuple[list[str], list[str], np.ndarray]:
    """Read a predictions matrix from a CSV file.

    Layout: a header row, then one row per ranking instance. The first column is the row
    label (e.g. the global step) when its header cell is empty or one of
    :data:`LABEL_COLUMN_NAMES` (``step``, ``epoch``, ``checkpoint``, ...); otherwise every
    column is an architecture and rows are labelled ``1..N``. Architecture headers are kept
    as text; :func:`align_predictions` resolves them against a ground truth (first as a
    canonical architecture string, then as an integer index).

    Values are floats; if any value is greater than 1.0 the whole table is read as percent
    and divided by 100.

    Returns:
        ``(row_labels, columns, values)`` with ``values`` of shape ``(rows, columns)``.

    Raises:
        WsnasError: missing or empty file, no data rows, a row of the wrong length, a
            non-numeric or non-finite cell, an empty or duplicated column header.
    """
    p = Path(path)
    rows = _read_csv_rows(p, what="predictions file")
    name = str(p)
    if not rows:
        raise WsnasError(f"predictions file {name!r} is empty; expected a header row of "
                         "architectures and one row of scores per instance")
    header, body = rows[0], rows[1:]
    has_label = header[0] == "" or header[0].lower() in LABEL_COLUMN_NAMES
    columns = header[1:] if has_label else header
    first = 1 if has_label else 0
    if not columns:
        raise WsnasError(f"predictions file {name!r} has no architecture columns in its header")
    seen: dict[str, int] = {}
    for j, col in enumerate(columns):
        col_no = j + first + 1
        if col == "":
            raise WsnasError(f"predictions file {name!r}: column {col_no} has an empty header; "
                             "every column after the label needs an architecture")
        if col in seen:
            raise WsnasError(f"predictions file {name!r}: column {col!r} appears twice "
                             f"(columns {seen[col]} and {col_no})")
        seen[col] = col_no
    if not body:
        raise WsnasError(f"predictions file {name!r} has a header but no data rows")

    labels: list[str] = []
    values = np.empty((len(body), len(columns)), dtype=float)
    width = len(header)
    for i, row in enumerate(body):
        if len(row) != width:
            raise WsnasError(f"predictions file {name!r}: data row {i + 1} has {len(row)} "
                             f"cells; the header has {width}")
        labels.append(row[0] if has_label else str(i + 1))
        for j, cell in enumerate(row[first:]):
            values[i, j] = _parse_float(
                cell, f"predictions file {name!r}, data row {i + 1}, column {columns[j]!r}")
    return labels, list(columns), _scale_percent(values)


def _accepted_keys(truth: TruthTable) -> str:
    """How a truth table can be addressed, for error messages."""
    parts = []
    if truth.archs:
        parts.append(f"canonical architecture strings such as {truth.archs[0]!r}")
    valid = [i for i in truth.indices if i >= 0]
    if valid:
        parts.append(f"integer indices {min(valid)}..{max(valid)}")
    return " or ".join(parts) if parts else "nothing (it is empty)"


def _truth_name(truth: TruthTable) -> str:
    return truth.source or f"{truth.space}/{truth.dataset}"


def align_predictions(
    columns: Sequence[str], values: np.ndarray, truth: TruthTable
) -> tuple[np.ndarray, np.ndarray]:
    """Map prediction columns onto ground-truth rows.

    Each column header is resolved with :meth:`TruthTable.position`: first as a canonical
    architecture string of the truth table, then as an integer index (so for ``tiny64`` the
    header ``"111"`` is architecture 111, i.e. index 0, while ``"5"`` is index 5).

    The predictions may cover only part of the truth: the metrics are then computed on the
    common subset, whose size is ``len(truth_positions)`` (compare with ``len(truth)``).

    Returns:
        ``(truth_positions, values)``: the truth row of each column (int array) and the
        prediction values as a float array of shape ``(rows, len(columns))``.

    Raises:
        WsnasError: some columns are not in the truth (up to five are named), two columns
            are the same architecture, or fewer than two architectures match.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[1] != len(columns):
        raise WsnasError(f"predictions have {len(columns)} columns but a value matrix of shape "
                         f"{values.shape}")
    positions: list[int] = []
    unknown: list[str] = []
    owner: dict[int, str] = {}
    for col in columns:
        try:
            pos = truth.position(str(col))
        except WsnasError:
            unknown.append(str(col))
            continue
        if pos in owner:
            raise WsnasError(
                f"prediction columns {owner[pos]!r} and {col!r} are the same architecture "
                f"({truth.archs[pos]!r}, index {truth.indices[pos]}) of {_truth_name(truth)!r}")
        owner[pos] = str(col)
        positions.append(pos)
    if unknown:
        noun = "column" if len(unknown) == 1 else f"{len(unknown)} columns"
        raise WsnasError(
            f"prediction {noun} {_quote_list(unknown)} not in the ground truth "
            f"{_truth_name(truth)!r} ({len(truth)} architectures); it accepts "
            f"{_accepted_keys(truth)}")
    if len(positions) < 2:
        raise WsnasError(f"only {len(positions)} prediction column(s) match the ground truth "
                         f"{_truth_name(truth)!r}; ranking metrics need at least 2")
    return np.asarray(positions, dtype=np.int64), values


# --------------------------------------------------------------------------------------------
# ground truth


def read_truth_csv(
    path: str | Path,
    *,
    metric: str | None = None,
    space: str = "unknown",
    dataset: str | None = None,
    source: str | None = None,
    text: str | None = None,
) -> TruthTable:
    """Read a ground-truth table from a CSV file with a header row.

    The file needs an ``index`` column and/or an ``arch`` column, and a value column:
    ``metric`` if given, else the first of :data:`TRUTH_VALUE_COLUMNS` present. Values in
    percent (any value > 1.0) are divided by 100; afterwards all must lie in [0, 1].

    * With only ``index``, each architecture string is the index as text.
    * With only ``arch``, the integer indices are unknown: they are stored as ``-1, -2, ...``
      so that integer column headers never match by accident.
    * The table's space is ``space`` if given, else the space whose names the ``arch`` column
      holds (``unknown`` if none); with both columns, each row's index must be its arch's index
      there.

    Args:
        path: the file (also used in messages).
        metric: name of the value column.
        space, dataset: recorded on the table (``dataset`` defaults to ``"unknown"``).
        source: recorded on the table (defaults to ``path``).
        text: the file's content, when it was already read (built-in tables).
    """
    p = Path(path)
    name = str(source or p)
    rows = _read_csv_rows(p, text, what="ground-truth file")
    if not rows:
        raise WsnasError(f"ground-truth file {name!r} is empty; expected a header with an "
                         "'index' and/or 'arch' column and an accuracy column")
    header = [h.lower() for h in rows[0]]
    col_of = {h: j for j, h in enumerate(header)}
    if len(col_of) != len(header):
        dups = sorted({h for h in header if header.count(h) > 1})
        raise WsnasError(f"ground-truth file {name!r}: duplicate column(s) {_quote_list(dups)}")
    if "index" not in col_of and "arch" not in col_of:
        raise WsnasError(f"ground-truth file {name!r} has neither an 'index' nor an 'arch' "
                         f"column (columns: {_quote_list(rows[0], 10)})")
    if metric is not None:
        value_col = metric.lower()
        if value_col not in col_of:
            raise WsnasError(f"ground-truth file {name!r} has no column {metric!r}; its columns "
                             f"are {_quote_list(rows[0], 10)}")
    else:
        found = [c for c in TRUTH_VALUE_COLUMNS if c in col_of]
        if not found:
            raise WsnasError(
                f"ground-truth file {name!r} has none of the accuracy columns "
                f"{_quote_list(TRUTH_VALUE_COLUMNS)} (columns: {_quote_list(rows[0], 10)}); "
                "name the value column with --metric")
        value_col = found[0]

    body = rows[1:]
    if not body:
        raise WsnasError(f"ground-truth file {name!r} has a header but no data rows")
    archs: list[str] = []
    indices: list[int] = []
    acc = np.empty(len(body), dtype=float)
    for i, row in enumerate(body):
        where = f"ground-truth file {name!r}, data row {i + 1}"
        if len(row) != len(header):
            raise WsnasError(f"{where} has {len(row)} cells; the header has {len(header)}")
        if "index" in col_of:
            cell = row[col_of["index"]]
            try:
                if len(cell) > 30:  # no architecture index is that long (Python converts at most 4,300 digits)
                    raise ValueError(cell)
                index = int(cell)
            except ValueError:
                raise WsnasError(f"{where}: index {shown(cell)} is not an integer of an architecture") from None
            if index < 0:
                raise WsnasError(f"{where}: index {index} is negative; indices start at 0")
            indices.append(index)
        else:
            indices.append(-(i + 1))
        if "arch" in col_of:
            arch = row[col_of["arch"]]
            if not arch:
                raise WsnasError(f"{where}: the 'arch' cell is empty")
            archs.append(arch)
        else:
            archs.append(str(indices[-1]))
        acc[i] = _parse_float(row[col_of[value_col]], f"{where}, column {value_col!r}")

    for label, keys in (("index", indices), ("architecture", archs)):
        seen: set = set()
        for key in keys:
            if key in seen:
                raise WsnasError(f"ground-truth file {name!r}: {label} {key!r} appears twice")
            seen.add(key)
    _check_one_scale(acc, name, value_col)
    acc = _scale_percent(acc)
    if float(acc.min()) < 0.0 or float(acc.max()) > 1.0:
        raise WsnasError(
            f"ground-truth file {name!r}, column {value_col!r}: values span "
            f"{acc.min():g}..{acc.max():g}; expected accuracies in [0, 1] or percent in [0, 100]")
    if "arch" in col_of:
        known = _space_of(space, archs)
        if known is not None:
            _check_indices(known, archs, indices, name)
            space = known.name
    return TruthTable(space=space, dataset=dataset or "unknown", archs=archs, indices=indices,
                      accuracy=acc, source=name)


def _load_builtin(name: str, metric: str | None) -> TruthTable:
    entry = BUILTIN_TRUTHS[name]
    try:
        text = resources.files(entry.package).joinpath(entry.resource).read_text(
            encoding="utf-8-sig")
    except (OSError, ModuleNotFoundError) as exc:  # a broken installation
        raise WsnasError(f"built-in ground truth {name!r} cannot be read ({exc}); "
                         "reinstall wsnas") from exc
    return read_truth_csv(entry.resource, metric=metric or entry.metric, space=entry.space,
                          dataset=entry.dataset, source=name, text=text)


# --------------------------------------------------------------------------------------------
# ground truth trained here (``wsnas groundtruth``), read from a results store


def _describe_filters(**filters: Any) -> str:
    return ", ".join(f"{k}={'any' if v is None else repr(v)}" for k, v in filters.items())


def truth_from_store(store: Store, space: str | None = None, dataset: str | None = None,
                     config_hash: str | None = None, metric: str = "test_acc", *,
                     epochs: int | None = None) -> TruthTable:
    """The ground truth stored in ``store`` as a :class:`TruthTable`: the mean over seeds per
    architecture.

    The filters must leave exactly one (space, dataset, config_hash, epochs) combination;
    ``per_seed`` holds each seed's accuracies (NaN where a seed lacks an architecture), rows
    are sorted by ``arch_index``. Rows without a value for ``metric`` (one of
    :data:`wsnas.store.ACCURACY_METRICS`) are ignored.

    Raises:
        WsnasError: an unknown metric, no stored ground truth matches, the filters leave several
            combinations (the message lists them and names the option that tells them apart),
            or the chosen one has no value of ``metric``.
    """
    if metric not in ACCURACY_METRICS:
        raise WsnasError(f"ground-truth metric {metric!r} is not one of "
                         f"{', '.join(ACCURACY_METRICS)}")
    filters = {"space": space, "dataset": dataset, "config_hash": config_hash,
               "epochs": epochs}
    combos = store.groundtruth_summary(**filters)
    if not combos:
        available = store.groundtruth_summary()
        have = ("; the store has " + ", ".join(
            f"space={c['space']!r} dataset={c['dataset']!r} config_hash={c['config_hash']!r}"
            for c in available[:5]) + (", ..." if len(available) > 5 else "")
            if available else "; the store has no ground truth yet")
        raise WsnasError(f"no ground truth in {str(store.path)!r} matches "
                         f"{_describe_filters(**filters)}{have}")
    if len(combos) > 1:
        varying = [k for k in filters if len({c[k] for c in combos}) > 1]
        listed = ", ".join(
            f"({c['space']}, {c['dataset']}, {c['config_hash']}, {c['epochs']} epochs)"
            for c in combos[:6]) + (", ..." if len(combos) > 6 else "")
        raise WsnasError(
            f"ground truth in {str(store.path)!r} matching {_describe_filters(**filters)} has "
            f"{len(combos)} combinations of (space, dataset, config_hash, epochs): {listed}; "
            f"choose one with the {' and '.join(varying)} option")
    chosen = {k: combos[0][k] for k in filters}
    rows = store.groundtruth_values(metric, **chosen)
    if not rows:
        raise WsnasError(f"the ground truth for {_describe_filters(**chosen)} has no {metric} "
                         f"values; choose another metric of {', '.join(ACCURACY_METRICS)}")
    archs: list[str] = []
    indices: list[int] = []
    position: dict[str, int] = {}
    for r in rows:
        if r["arch"] not in position:
            position[r["arch"]] = len(archs)
            archs.append(r["arch"])
            indices.append(int(r["arch_index"]))
    seeds = sorted({int(r["seed"]) for r in rows})
    per_seed = {s: np.full(len(archs), np.nan) for s in seeds}
    for r in rows:
        per_seed[int(r["seed"])][position[r["arch"]]] = r["value"]
    stacked = np.vstack([per_seed[s] for s in seeds])
    counts = np.sum(~np.isnan(stacked), axis=0)  # >= 1: every arch has a value somewhere
    accuracy = np.nansum(stacked, axis=0) / counts
    return TruthTable(
        space=chosen["space"], dataset=chosen["dataset"], archs=archs, indices=indices,
        accuracy=accuracy, per_seed=per_seed,
        source=(f"{store.path} (config_hash {chosen['config_hash']}, {chosen['epochs']} "
                f"epochs, {metric}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''})"),
    )


# --------------------------------------------------------------------------------------------
# converted NAS-Bench-201 / NATS-Bench tables (``wsnas benchmark convert``)

#: Prefix of a ground-truth spec naming a converted benchmark table:
#: ``nb201-DATASET[@EPOCHS][:PATH]``, e.g. ``nb201-cifar10:nb201.csv.gz``; without a path, the
#: table that ``wsnas benchmark convert`` writes by default.
BENCHMARK_TRUTH_PREFIX = "nb201-"


def _load_benchmark_spec(spec: str, metric: str | None, dataset: str | None) -> TruthTable:
    """Load ``nb201-DATASET[@EPOCHS]:PATH`` with ``load_benchmark_truth`` (200 epochs default)."""
    from wsnas.groundtruth.benchmarks.nb201 import default_table_path, load_benchmark_truth  # lazy

    name, _, path = spec[len(BENCHMARK_TRUTH_PREFIX):].partition(":")
    if not path:  # no path: the table `wsnas benchmark convert` writes by default
        path = str(default_table_path())
        if not Path(path).is_file():
            raise WsnasError(f"ground truth {spec!r}: no converted NAS-Bench-201 table at {path}; convert "
                             "the official file first (wsnas benchmark convert SOURCE) or name a table "
                             "as nb201-DATASET:PATH")
    name, _, epochs = name.partition("@")
    if not name or not path or (epochs and not epochs.isdigit()):
        raise WsnasError(f"ground truth {spec!r} is not of the form nb201-DATASET[@EPOCHS]:PATH "
                         "(e.g. nb201-cifar10:nb201.csv.gz or nb201-cifar100@12:nb201.csv.gz)")
    if dataset is not None and dataset.lower() != name.lower():
        raise WsnasError(f"ground truth {spec!r} names dataset {name!r} but {dataset!r} was asked")
    return load_benchmark_truth(Path(path).expanduser(), name, hp=int(epochs or 200),
                                metric=metric or "test_acc")


def load_truth(spec: str, *, metric: str | None = None, dataset: str | None = None) -> TruthTable:
    """Load a ground truth from a built-in name, a CSV file or a results-store file.

    ``spec`` is tried in this order:

    1. a key of :data:`BUILTIN_TRUTHS` (e.g. ``tiny64-cifar10``, case-insensitive);
    2. an existing file ending in ``.db``, ``.sqlite`` or ``.sqlite3``: a results store,
       read with :func:`truth_from_store` (``dataset`` filters it)
       (``metric`` defaults to ``"test_acc"``);
    3. an existing ``.csv`` file: read by :func:`read_truth_csv` (``metric`` chooses the
       value column, ``dataset`` is recorded on the table).

    A spec ``nb201-DATASET[@EPOCHS]:PATH`` loads a table converted by ``wsnas benchmark
    convert`` (NAS-Bench-201 / NATS-Bench; ``metric`` is ``test_acc`` or ``valid_acc``).

    Raises:
        WsnasError: ``spec`` is neither a built-in name nor an existing file, or the file
            is malformed.
    """
    key = spec.strip()
    if key.lower() in BUILTIN_TRUTHS:
        return _load_builtin(key.lower(), metric)
    if key.lower().startswith(BENCHMARK_TRUTH_PREFIX) and (":" in key or not Path(key).exists()):
        return _load_benchmark_spec(key, metric, dataset)
    path = Path(key).expanduser()
    accepted = (f"accepted: a built-in name ({', '.join(sorted(BUILTIN_TRUTHS))}), a .csv file "
                f"with 'index'/'arch' and accuracy columns, or a results store "
                f"({', '.join(STORE_SUFFIXES)})")
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "is neither a built-in table nor a file"
        raise WsnasError(f"ground truth {spec!r} {what}; {accepted}")
    suffix = path.suffix.lower()
    if suffix in STORE_SUFFIXES:
        with Store(path, read_only=True) as store:
            return truth_from_store(store, dataset=dataset, metric=metric or "test_acc")
    if suffix == ".csv":
        return read_truth_csv(path, metric=metric, dataset=dataset)
    raise WsnasError(f"ground truth {spec!r} has an unsupported file kind {suffix or '(none)'!r}; "
                     f"{accepted}")


def resolve_truth(spec: str | None, *, store: Store | None = None, space: str | None = None,
                  dataset: str | None = None, config_hash: str | None = None,
                  metric: str | None = None) -> tuple[TruthTable | None, str | None]:
    """The ground truth a ``--truth`` option names, with its source label.

    * ``None``: no ground truth, ``(None, None)``.
    * ``"store"`` (:data:`STORE_TRUTH`): the ground truth trained here, read from ``store`` by
      :func:`truth_from_store`, filtered by ``space``, ``dataset`` and ``config_hash``
      (``metric`` defaults to ``test_acc``); the label is ``"store"``.
    * anything else: :func:`load_truth` (a built-in name, a CSV file, a results-store file or
      ``nb201-DATASET[@EPOCHS][:PATH]``) with ``metric``; the label is ``spec`` as given.
      ``dataset`` and ``config_hash`` do not apply to it; a table of a space other than
      ``space`` is refused (a table whose space is unknown is not).

    Raises:
        WsnasError: the spec names nothing loadable (the message names it and what is
            accepted), the stored ground truth is missing or ambiguous, or ``"store"`` was given
            without a store.
    """
    if spec is None:
        return None, None
    if spec == STORE_TRUTH:
        if store is None:
            raise WsnasError(f"ground truth {spec!r} reads the results store, but there is none here; "
                             "name a built-in table, a CSV file or a results-store file instead")
        return truth_from_store(store, space=space, dataset=dataset, config_hash=config_hash,
                                metric=metric or "test_acc"), STORE_TRUTH
    table = load_truth(spec, metric=metric)
    if space is not None and table.space not in (space, "unknown"):
        raise WsnasError(f"ground truth {spec!r} is a table of the {table.space} space, not of {space}; accepted: "
                         f"a ground truth of {space} ('store', a {space} table or file)")
    return table, spec


def check_store_truth(store_path: str | Path) -> None:
    """Ground truth ``store`` needs a store that exists: refused before one is created empty."""
    if not Path(store_path).expanduser().exists():
        raise WsnasError(f"ground truth {STORE_TRUTH!r}: the results store {str(store_path)!r} does not exist yet, "
                         f"so it holds no ground truth; train it there first (wsnas groundtruth --store "
                         f"{store_path}), or name a built-in table or a file")


def check_truth_covers(table: TruthTable, space: Space, archs: Sequence) -> None:
    """Every child a run will rank must be in ``table``: checked before the run trains."""
    missing = []
    for arch in archs:
        try:
            table.position(space.format(arch))
        except WsnasError:
            missing.append(space.format(arch))
    if missing:
        raise WsnasError(f"the ground truth {_truth_name(table)!r} lacks {len(missing)} of the {len(archs)} children "
                         f"to rank ({_quote_list(missing, 3)}); accepted: a ground truth of every child "
                         "(or fewer children with --archs)")


# --------------------------------------------------------------------------------------------
# predictions scored against a ground truth


@dataclass(frozen=True)
class PredictionScores:
    """What :func:`score_predictions` computed: the metrics, the ground truth they used, and how
    many of its architectures the predictions matched."""

    result: EvaluationResult
    truth: TruthTable
    matched: int


def score_predictions(pred_path: str | Path, truth: str, *, metric: str | None = None,
                      dataset: str | None = None, k: int = 64, top: Iterable[int] = (1, 3),
                      precision_k: Iterable[int] = (5,)) -> PredictionScores:
    """The ranking metrics of every row of a predictions file against a ground truth.

    Reads ``pred_path`` (:func:`read_predictions_csv`), loads ``truth`` with ``metric`` and
    ``dataset`` (:func:`load_truth`), maps the prediction columns onto it
    (:func:`align_predictions`: only the common architectures count) and evaluates every row
    (:func:`wsnas.metrics.evaluate_rows` with ``k``, ``top`` and ``precision_k``).

    Raises:
        WsnasError: as the three readers do.
    """
    labels, columns, values = read_predictions_csv(pred_path)
    table = load_truth(truth, metric=metric, dataset=dataset)
    positions, values = align_predictions(columns, values, table)
    result = evaluate_rows(values, table.accuracy[positions], k=k, top=top, precision_k=precision_k,
                           row_labels=labels)
    return PredictionScores(result=result, truth=table, matched=int(len(positions)))
