"""Read the official NAS-Bench-201 / NATS-Bench topology results into a compact table.

Two sources are understood, both written by the benchmark's authors:

* the NAS-Bench-201 file (``NAS-Bench-201-v1_0-e61699.pth``, ``NAS-Bench-201-v1_1-096897.pth``):
  a ``torch.save`` of one plain dict ``{"meta_archs": [15,625 strings in official index
  order], "arch2infos": {index: {"less": ArchResults, "full": ArchResults}},
  "evaluated_indexes": ...}``; ``less`` is the 12-epoch schedule, ``full`` the 200-epoch one.
  Both the zip format (``<name>/data.pkl``) and the legacy torch format (a run of pickles)
  and a bare pickle are accepted.
* the NATS-Bench topology directory ``NATS-tss-v1_0-3ffb9-simple/``: ``meta.pickle.pbz2``
  (``{"meta_archs": [...], ...}``) and one bz2-compressed pickle per cell,
  ``<index>.pickle.pbz2`` (``000123`` or ``123``), holding ``{"12": ArchResults,
  "200": ArchResults}``.

An ``ArchResults`` state dict holds ``arch_str``, ``dataset_seed`` (dataset -> list of seeds)
and ``all_results`` ((dataset, seed) -> ``ResultsCount`` state dict). A ``ResultsCount`` holds
``epochs``, ``params`` (M), ``flop`` (M), ``latency`` (list of seconds, or None) and
``eval_acc1es`` ({"SET@EPOCH": top-1 accuracy in percent}).

Rules of the compact record (those of the official API's ``get_more_info`` with averaged
seeds, ``is_random=False``):

* the final epoch is ``epochs - 1`` of each trial; accuracies are divided by 100;
* ``valid_acc``: ``x-valid`` for ``cifar10-valid``, ``cifar100`` and ``ImageNet16-120``;
  none for ``cifar10`` (trained on train + valid, so it has no validation split);
* ``test_acc``: ``ori-test`` for ``cifar10-valid`` and ``cifar10``; ``x-test`` for
  ``cifar100`` and ``ImageNet16-120`` (``ori-test`` there is valid + test together);
* each value is the mean over the seeds listed in ``dataset_seed`` that report it;
  ``params_m``/``flops_m`` are the seed means; ``latency`` is the mean of the trials' positive
  latencies (a missing latency is ``-1`` in the official files and is skipped);
  ``seeds`` counts the trials. A missing value is NaN (an empty cell in the CSV).

Safety: every pickle is read with :func:`wsnas.core.safepickle.restricted_load`, which resolves
only numpy scalars/dtypes/arrays, ``collections.OrderedDict`` and harmless builtins; any other
global stops the load with a one-line :class:`~wsnas.core.errors.WsnasError`. Tensors (trained
weights, which the official results files do not contain) are refused too.

Memory: a ``.pth`` is a single pickle, so it is unpickled whole (nothing is copied
afterwards). On the official NATS sample cells the unpickled objects take about 6x the
pickle's size, so expect roughly 12 GB for the 2.1 GB v1.0 file and 25-30 GB for the 4.7 GB
v1.1 file (the official API needs more, as it deep-copies). The NATS directory is read one
cell at a time and needs a few MB: prefer it when memory is short.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import IO, Any

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.core.files import FULL_DISK, atomic_write
from wsnas.core.safepickle import BASIC_GLOBALS, NUMPY_ARRAY_GLOBALS, restricted_load
from wsnas.groundtruth.table import TruthTable

__all__ = [
    "BENCHMARK_COLUMNS",
    "BenchmarkRecord",
    "DATASETS",
    "convert_benchmark",
    "load_benchmark_truth",
    "query_benchmark",
    "read_benchmark",
    "read_benchmark_table",
    "read_nats_tss_dir",
    "read_nb201_pth",
]

#: The globals a benchmark pickle may reference.
ALLOWED_GLOBALS = NUMPY_ARRAY_GLOBALS | BASIC_GLOBALS

#: The datasets of the benchmark, in the order rows are written.
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")

#: Evaluation set names per dataset: (valid, test); None where the dataset has no such split.
EVAL_SETS: dict[str, tuple[str | None, str | None]] = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": (None, "ori-test"),
    "cifar100": ("x-valid", "x-test"),
    "ImageNet16-120": ("x-valid", "x-test"),
}

#: Keys of the NAS-Bench-201 ``.pth`` per architecture -> training epochs.
NB201_HP_KEYS = {"less": 12, "full": 200}

#: The columns of the compact table, in order.
BENCHMARK_COLUMNS = ("index", "arch", "dataset", "hp", "valid_acc", "test_acc", "params_m",
                     "flops_m", "latency", "seeds")

NATS_SUFFIX = ".pickle.pbz2"


def default_table_path() -> Path:
    """Where ``wsnas benchmark convert`` writes, and ``--truth nb201-DATASET`` reads, by default:
    ``$WSNAS_HOME/benchmarks/nb201.csv.gz`` (``WSNAS_HOME`` defaults to ``~/.cache/wsnas``)."""
    home = Path(os.environ.get("WSNAS_HOME", Path.home() / ".cache" / "wsnas")).expanduser()
    return home / "benchmarks" / "nb201.csv.gz"
_NATS_CELL = re.compile(r"^(\d+)\.pickle\.pbz2$")
# torch's legacy (non-zip) serialization starts with this pickled magic number.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclass(frozen=True)
class BenchmarkRecord:
    """One (architecture, dataset, schedule) row of the compact table.

    Accuracies are fractions in [0, 1]; ``params_m`` and ``flops_m`` are millions, ``latency``
    seconds; NaN marks a value the benchmark does not have.
    """

    index: int
    arch: str
    dataset: str
    hp: int
    valid_acc: float
    test_acc: float
    params_m: float
    flops_m: float
    latency: float
    seeds: int


# --------------------------------------------------------------------------------------------
# loading pickles


class _CountingReader(io.RawIOBase):
    """A read-only stream that reports how many bytes were read (for a progress bar)."""

    def __init__(self, raw: IO[bytes], callback: Callable[[int], Any]) -> None:
        self._raw = raw
        self._callback = callback

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._callback(n)
        return n


def _load(fileobj: IO[bytes], what: str) -> Any:
    return restricted_load(fileobj, ALLOWED_GLOBALS, what=what)


def _load_pth(path: Path, progress: Callable[[int], Any] | None = None) -> Any:
    """Unpickle a NAS-Bench-201 ``.pth`` (torch zip, legacy torch, or plain pickle)."""
    what = str(path)
    _check_file(path, "NAS-Bench-201 file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
                if len(pkl) != 1:
                    raise WsnasError(f"{what} is a zip file but not a torch.save file: it has "
                                     f"{len(pkl)} data.pkl entries (expected one)")
                if any("/data/" in n for n in names):
                    raise WsnasError(f"refusing to load {what}: it contains tensors (e.g. trained "
                                     "weights); the official benchmark results file has none")
                with archive.open(pkl[0]) as member:
                    stream = member if progress is None else _CountingReader(member, progress)
                    return _load(io.BufferedReader(stream, 1 << 20), what)  # type: ignore[arg-type]
        with open(path, "rb") as raw:
            if raw.read(4) == b"PK\x03\x04":
                raise WsnasError(f"{what} is a damaged zip (torch.save) file: it has no readable "
                                 "directory; the download may be incomplete")
            raw.seek(0)
            stream = raw if progress is None else _CountingReader(raw, progress)
            buffered = io.BufferedReader(stream, 1 << 20)  # type: ignore[arg-type]
            first = _load(buffered, what)
            if not (isinstance(first, int) and first == _TORCH_LEGACY_MAGIC):
                return first  # a bare pickle
            _load(buffered, what)  # protocol version
            _load(buffered, what)  # sys info
            return _load(buffered, what)  # the object; a list of tensor storage keys follows
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise WsnasError(f"cannot read {what}: {exc}") from exc


def _check_file(path: Path, role: str) -> None:
    if not path.exists():
        raise WsnasError(f"{role} {str(path)!r} not found")
    if not path.is_file():
        raise WsnasError(f"{role} {str(path)!r} is not a file")


def _load_pbz2(path: Path) -> Any:
    try:
        with bz2.open(path, "rb") as fileobj:
            return _load(fileobj, str(path))  # type: ignore[arg-type]
    except OSError as exc:
        raise WsnasError(f"cannot read {path}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# ArchResults state dict -> records


def _num(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def _final_acc(trial: Mapping, set_name: str | None) -> float:
    if set_name is None:
        return math.nan
    accs = trial.get("eval_acc1es") or {}
    epochs = trial.get("epochs")
    if isinstance(epochs, (int, np.integer)) and epochs > 0:
        key = f"{set_name}@{int(epochs) - 1}"
        return _num(accs[key]) / 100.0 if key in accs else math.nan
    # no epoch count: take the last epoch recorded for this set
    last = [(int(k.rsplit("@", 1)[1]), v) for k, v in accs.items()
            if isinstance(k, str) and k.startswith(set_name + "@") and k.rsplit("@", 1)[1].isdigit()]
    return _num(max(last)[1]) / 100.0 if last else math.nan


def _latency(trial: Mapping) -> float:
    lat = trial.get("latency")
    if lat is None:
        return math.nan
    values = [_num(x) for x in (lat if isinstance(lat, (list, tuple)) else [lat])]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan
    mean = sum(values) / len(values)
    return mean if mean > 0 else math.nan


def _dataset_order(name: str) -> tuple[int, str]:
    return (DATASETS.index(name) if name in DATASETS else len(DATASETS), name)


def _records(index: int, arch: str, hp: int, state: Any, where: str) -> Iterator[BenchmarkRecord]:
    """The records of one ArchResults state dict (one architecture, one schedule)."""
    if not isinstance(state, Mapping) or "all_results" not in state or "dataset_seed" not in state:
        raise WsnasError(f"{where}: architecture {index} (hp {hp}) is not an ArchResults state "
                         "dict (no 'all_results'/'dataset_seed')")
    own = state.get("arch_str")
    if isinstance(own, str) and own != arch:
        raise WsnasError(f"{where}: architecture {index} is {arch!r} in meta_archs but "
                         f"{own!r} in its results")
    results = state["all_results"]
    for dataset in sorted(state["dataset_seed"], key=_dataset_order):
        seeds = list(state["dataset_seed"][dataset] or [])
        trials = [results[(dataset, s)] for s in seeds if (dataset, s) in results]
        if not trials:
            continue
        valid_set, test_set = EVAL_SETS.get(dataset, ("x-valid", "x-test"))
        lats = [x for x in (_latency(t) for t in trials) if not math.isnan(x)]
        yield BenchmarkRecord(
            index=index, arch=arch, dataset=str(dataset), hp=hp,
            valid_acc=_mean([_final_acc(t, valid_set) for t in trials]),
            test_acc=_mean([_final_acc(t, test_set) for t in trials]),
            params_m=_mean([_num(t.get("params")) for t in trials]),
            flops_m=_mean([_num(t.get("flop")) for t in trials]),
            latency=_mean(lats),
            seeds=len(trials),
        )


def _hp_epochs(key: Any, where: str) -> int:
    if key in NB201_HP_KEYS:
        return NB201_HP_KEYS[key]
    if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.isdigit()):
        return int(key)
    raise WsnasError(f"{where}: unknown training schedule {key!r}; expected 'less', 'full' "
                     "or a number of epochs such as '12' or '200'")


def _meta_archs(obj: Any, where: str) -> list[str]:
    if not isinstance(obj, Mapping) or "meta_archs" not in obj:
        kind = type(obj).__name__
        raise WsnasError(f"{where} is not a NAS-Bench-201 / NATS-Bench file: expected a dict "
                         f"with 'meta_archs', got {kind}")
    archs = obj["meta_archs"]
    if not isinstance(archs, (list, tuple)) or not all(isinstance(a, str) for a in archs):
        raise WsnasError(f"{where}: 'meta_archs' is not a list of architecture strings")
    return list(archs)


def _arch_of(archs: list[str], index: Any, where: str) -> tuple[int, str]:
    try:
        i = int(index)
    except (TypeError, ValueError):
        raise WsnasError(f"{where}: architecture key {index!r} is not an integer index") from None
    if not 0 <= i < len(archs):
        raise WsnasError(f"{where}: architecture index {i} is outside meta_archs "
                         f"(0..{len(archs) - 1})")
    return i, archs[i]


# --------------------------------------------------------------------------------------------
# the two readers


def _nb201_units(path: Path, progress: Callable[[int], Any] | None = None
                 ) -> tuple[int, Iterator[tuple[int, str, Mapping]]]:
    where = str(path)
    obj = _load_pth(path, progress)
    archs = _meta_archs(obj, where)
    infos = obj.get("arch2infos")
    if not isinstance(infos, Mapping):
        raise WsnasError(f"{where}: 'arch2infos' is missing or not a dict")

    def units() -> Iterator[tuple[int, str, Mapping]]:
        for key in sorted(infos, key=lambda k: int(k) if str(k).lstrip("-").isdigit() else -1):
            index, arch = _arch_of(archs, key, where)
            per_hp = infos[key]
            if not isinstance(per_hp, Mapping):
                raise WsnasError(f"{where}: arch2infos[{key!r}] is not a dict")
            yield index, arch, per_hp

    return len(infos), units()


def _nats_files(path: Path) -> tuple[list[str], list[tuple[int, Path]]]:
    if not path.exists():
        raise WsnasError(f"NATS-Bench directory {str(path)!r} not found")
    if not path.is_dir():
        raise WsnasError(f"NATS-Bench source {str(path)!r} is not a directory")
    meta_path = path / f"meta{NATS_SUFFIX}"
    if not meta_path.is_file():
        raise WsnasError(f"{path} is not a NATS-Bench topology directory: it has no "
                         f"meta{NATS_SUFFIX} (expected e.g. NATS-tss-v1_0-3ffb9-simple/)")
    archs = _meta_archs(_load_pbz2(meta_path), str(meta_path))
    cells = sorted((int(m.group(1)), path / name) for name in os.listdir(path)
                   if (m := _NATS_CELL.match(name)))
    return archs, cells


def _nats_units(path: Path) -> tuple[int, Iterator[tuple[int, str, Mapping]]]:
    archs, cells = _nats_files(path)

    def units() -> Iterator[tuple[int, str, Mapping]]:
        for number, cell in cells:
            index, arch = _arch_of(archs, number, str(cell))
            per_hp = _load_pbz2(cell)
            if not isinstance(per_hp, Mapping):
                raise WsnasError(f"{cell}: expected a dict of training schedules, got "
                                 f"{type(per_hp).__name__}")
            yield index, arch, per_hp

    return len(cells), units()


def _flatten(units: Iterator[tuple[int, str, Mapping]], where: str) -> Iterator[BenchmarkRecord]:
    for index, arch, per_hp in units:
        for key in sorted(per_hp, key=lambda k: _hp_epochs(k, where)):
            yield from _records(index, arch, _hp_epochs(key, where), per_hp[key], where)


def read_nb201_pth(path: str | os.PathLike[str]) -> Iterator[BenchmarkRecord]:
    """Records of a NAS-Bench-201 ``.pth`` file, by index, then schedule (12, 200), dataset.

    The whole file is unpickled before the first record (see the module notes on memory).

    Raises:
        WsnasError: missing or corrupt file, a disallowed pickle global, or a structure that
            is not the benchmark's.
    """
    p = Path(path)
    _, units = _nb201_units(p)
    yield from _flatten(units, str(p))


def read_nats_tss_dir(path: str | os.PathLike[str]) -> Iterator[BenchmarkRecord]:
    """Records of a NATS-Bench topology directory, one cell file at a time.

    Raises:
        WsnasError: missing directory or meta file, a corrupt cell file, a disallowed pickle
            global, or a structure that is not the benchmark's.
    """
    p = Path(path)
    _, units = _nats_units(p)
    yield from _flatten(units, str(p))


def read_benchmark(source: str | os.PathLike[str]) -> Iterator[BenchmarkRecord]:
    """Records of ``source``: a NATS-Bench directory or a NAS-Bench-201 ``.pth`` file."""
    p = Path(source)
    return read_nats_tss_dir(p) if p.is_dir() else read_nb201_pth(p)


# --------------------------------------------------------------------------------------------
# the compact table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _open_text(path: Path, mode: str, gz: bool | None = None) -> IO[str]:
    if path.name.endswith(".gz") if gz is None else gz:
        return gzip.open(path, mode + "t", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8", newline="")


@contextmanager
def _text_writer(raw: IO[bytes], out: Path) -> Iterator[IO[str]]:
    """CSV text over the binary file ``raw`` that becomes ``out`` (gzip-compressed for ``.gz``);
    ``raw`` stays open for its owner to sync and rename."""
    gz = gzip.GzipFile(filename=out.name, mode="wb", fileobj=raw) if out.name.endswith(".gz") else None
    text = io.TextIOWrapper(gz or raw, encoding="utf-8", newline="")  # type: ignore[arg-type]
    yield text
    text.flush()
    text.detach()
    if gz is not None:
        gz.close()  # the gzip trailer; a GzipFile never closes the file it was given


@dataclass
class ConversionSummary:
    """What :func:`convert_benchmark` wrote."""

    out: str
    archs: int
    rows: int
    datasets: dict[str, int]
    hps: dict[int, int]


def convert_benchmark(
    source: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    progress: bool = False,
) -> ConversionSummary:
    """Convert the official results into the compact CSV table ``out_path``.

    ``source`` is a NAS-Bench-201 ``.pth`` file or a NATS-Bench topology directory. The table
    (gzip-compressed when ``out_path`` ends in ``.gz``) has the columns
    :data:`BENCHMARK_COLUMNS`; it is written to a temporary file and moved into place, so a
    failed conversion leaves no partial table. A source without a single result is refused
    (:class:`WsnasError`) and writes nothing.
    """
    from tqdm.auto import tqdm  # lazy: only the conversion needs it

    src, out = Path(source), Path(out_path)
    where = str(src)
    if src.is_dir():
        total, units = _nats_units(src)
        bar = tqdm(total=total, desc="convert", unit="cell", disable=not progress)
    else:
        _check_file(src, "NAS-Bench-201 file")
        size = src.stat().st_size
        with tqdm(total=size, desc="unpickle", unit="B", unit_scale=True,
                  disable=not progress) as load_bar:
            total, units = _nb201_units(src, load_bar.update)
        bar = tqdm(total=total, desc="convert", unit="arch", disable=not progress)
    datasets: dict[str, int] = {}
    hps: dict[int, int] = {}
    rows = archs = 0
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WsnasError(f"cannot write {str(out)!r}: cannot create its directory "
                         f"{str(out.parent)!r} ({exc.strerror})") from None
    try:
        with bar, atomic_write(out, "wb") as raw, _text_writer(raw, out) as fh:
            writer = csv.writer(fh)
            writer.writerow(BENCHMARK_COLUMNS)
            for unit in units:
                for record in _flatten(iter([unit]), where):
                    writer.writerow([_cell(v) for v in astuple(record)])
                    rows += 1
                    datasets[record.dataset] = datasets.get(record.dataset, 0) + 1
                    hps[record.hp] = hps.get(record.hp, 0) + 1
                archs += 1
                bar.update(1)
            if not rows:  # an empty table would read as a ground truth without a single architecture
                plural = "" if archs == 1 else "s"
                raise WsnasError(f"{where} holds no benchmark results ({archs} architecture{plural}, none "
                                 f"with a trained dataset), so {out} was not written; give the official "
                                 "NAS-Bench-201 .pth file or the NATS-Bench topology directory")
    except OSError as exc:
        if exc.errno in FULL_DISK:
            raise
        raise WsnasError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return ConversionSummary(out=str(out), archs=archs, rows=rows, datasets=datasets, hps=hps)


def read_benchmark_table(path: str | os.PathLike[str]) -> list[BenchmarkRecord]:
    """Read a table written by :func:`convert_benchmark`.

    Raises:
        WsnasError: missing file, wrong header, or a malformed row.
    """
    p = Path(path)
    _check_file(p, "benchmark table")
    types = {f.name: f.type for f in fields(BenchmarkRecord)}
    out: list[BenchmarkRecord] = []
    try:
        with _open_text(p, "r") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != BENCHMARK_COLUMNS:
                raise WsnasError(f"{p} is not a benchmark table: expected the header "
                                 f"{','.join(BENCHMARK_COLUMNS)} (convert the official file "
                                 "first with `wsnas benchmark convert`)")
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(BENCHMARK_COLUMNS):
                    raise WsnasError(f"{p}, line {line}: {len(row)} cells, expected "
                                     f"{len(BENCHMARK_COLUMNS)}")
                values: dict[str, Any] = {}
                for name, cell in zip(BENCHMARK_COLUMNS, row):
                    kind = types[name]
                    try:
                        if kind in ("int", int):
                            values[name] = int(cell)
                        elif kind in ("float", float):
                            values[name] = float(cell) if cell != "" else math.nan
                        else:
                            values[name] = cell
                    except ValueError:
                        raise WsnasError(f"{p}, line {line}: {name} {cell!r} is not a "
                                         "number") from None
                out.append(BenchmarkRecord(**values))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise WsnasError(f"cannot read benchmark table {p}: {exc} (convert the official file "
                         "first with `wsnas benchmark convert`)") from exc
    return out


def query_benchmark(table: str | os.PathLike[str], arch: str, *, dataset: str | None = None,
                    hp: int = 200) -> list[BenchmarkRecord]:
    """The rows of one architecture of a converted table (``wsnas benchmark query``).

    ``arch`` is an official architecture string or, when it is all digits, an index.
    ``dataset`` (case-insensitive) keeps one dataset; ``hp`` keeps one schedule (12 or 200
    epochs; 0 keeps every schedule). Rows are in the table's order.

    Raises:
        WsnasError: the table cannot be read (:func:`read_benchmark_table`), or it has no row
            of the architecture, of ``dataset`` for it, or of ``hp`` epochs for it.
    """
    name = str(table)
    records = read_benchmark_table(name)
    key = arch.strip()
    if key.isdigit():
        rows = [r for r in records if r.index == int(key)]
    else:
        rows = [r for r in records if r.arch == key]
    if not rows:
        raise WsnasError(f"architecture {arch!r} is not in {name!r}; give an official "
                         "architecture string or an integer index")
    if dataset:
        names = sorted({r.dataset for r in rows})
        rows = [r for r in rows if r.dataset.lower() == dataset.strip().lower()]
        if not rows:
            raise WsnasError(f"dataset {dataset!r} is not in {name!r} for this "
                             f"architecture (it has {', '.join(names)})")
    if hp:
        have = sorted({r.hp for r in rows})
        rows = [r for r in rows if r.hp == hp]
        if not rows:
            raise WsnasError(f"no {hp}-epoch results for this architecture in "
                             f"{name!r} (it has {', '.join(map(str, have))} epochs; "
                             "--hp 0 shows all)")
    return rows


def load_benchmark_truth(
    path: str | os.PathLike[str],
    dataset: str,
    hp: int = 200,
    metric: str = "test_acc",
) -> TruthTable:
    """A ground truth (space ``nb201``) from a converted table: one dataset, one schedule.

    Rows where ``metric`` is missing (e.g. ``valid_acc`` of ``cifar10``) are left out.

    Raises:
        WsnasError: unknown dataset, schedule or metric, or no row with a value.
    """
    if metric not in ("valid_acc", "test_acc"):
        raise WsnasError(f"benchmark metric {metric!r} is not known; use valid_acc or test_acc")
    records = read_benchmark_table(path)
    names = sorted({r.dataset for r in records}, key=_dataset_order)
    match = [n for n in names if n.lower() == dataset.strip().lower()]
    if not match:
        raise WsnasError(f"dataset {dataset!r} is not in the benchmark table {str(path)!r} "
                         f"(it has {', '.join(names) or 'none'})")
    name = match[0]
    rows = [r for r in records if r.dataset == name and r.hp == int(hp)]
    if not rows:
        have = sorted({r.hp for r in records if r.dataset == name})
        raise WsnasError(f"the benchmark table {str(path)!r} has no {hp}-epoch results for "
                         f"{name} (it has {', '.join(map(str, have))} epochs)")
    rows = [r for r in rows if not math.isnan(getattr(r, metric))]
    if not rows:
        hint = "; cifar10 has no validation split, use cifar10-valid" if name == "cifar10" else ""
        raise WsnasError(f"the benchmark table {str(path)!r} has no {metric} for {name} at "
                         f"{hp} epochs{hint}")
    return TruthTable(space="nb201", dataset=name, archs=[r.arch for r in rows],
                      indices=[r.index for r in rows],
                      accuracy=np.array([getattr(r, metric) for r in rows], dtype=float),
                      source=f"nb201-{name}:{path}")

