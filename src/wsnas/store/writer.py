"""The results store: one SQLite file, the single source of truth for results.

Everything wsnas measures lands here: runs and their configs, ground-truth trainings, and the
supernet's predictions at every checkpoint. Metrics and reports read only this file.

Guarantees:

* **One writer.** Only the driver process writes (workers send results back to it). SQLite runs
  in WAL mode, so readers (``wsnas store info``, a report) never block the writer.
* **Crash safety.** Every write is one transaction with ``synchronous=FULL``: a kill or a power
  cut mid-write leaves the whole batch or none of it, never half a row.
* **Idempotence.** Ground truth is keyed by the job's full identity ``(space, arch, dataset,
  seed, epochs, config_hash)``; predictions by ``(run_id, checkpoint, arch)``. A rerun after a
  crash neither loses nor duplicates rows, and :meth:`Store.groundtruth_done` tells it what to
  skip.
* **Versioned schema.** The ``meta`` table records ``schema_version``; files written by an older
  wsnas are upgraded in place by ``_MIGRATIONS``; a file from a newer wsnas is refused.

Typical use::

    with Store("wsnas.db") as store:
        done = store.groundtruth_done("tiny64", "digits", 10, config_hash(config))
        ...
        store.add_groundtruth({"space": "tiny64", "arch": "123", "arch_index": 5, ...})
        table = store.truth_table(space="tiny64", dataset="digits")
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import math
import operator
import os
import secrets
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import wsnas
from wsnas.core.errors import WsnasError
from wsnas.groundtruth.table import TruthTable

_SQLITE_HEADER = b"SQLite format 3\x00"

# _MIGRATIONS[v] upgrades a file from schema version v to v + 1; the current version is the
# number of migrations. Never edit a released step: append a new one (ALTER TABLE, new tables,
# new indices), so that every older file can be brought forward in place.
_MIGRATIONS: list[tuple[str, ...]] = [
    # 0 -> 1: runs, ground truth and predictions.
    (
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            config_json TEXT NOT NULL,
            seed INTEGER,
            code_version TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX runs_by_kind ON runs (kind)",
        """CREATE TABLE groundtruth (
            space TEXT NOT NULL,
            arch TEXT NOT NULL,
            arch_index INTEGER NOT NULL,
            dataset TEXT NOT NULL,
            seed INTEGER NOT NULL,
            epochs INTEGER NOT NULL,
            config_hash TEXT NOT NULL,
            config_json TEXT NOT NULL,
            valid_acc REAL,
            valid_loss REAL,
            test_acc REAL,
            test_loss REAL,
            train_acc REAL,
            train_loss REAL,
            seconds REAL,
            code_version TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (space, arch, dataset, seed, epochs, config_hash)
        )""",
        # groundtruth_done, groundtruth() and truth_table() filter on these columns.
        "CREATE INDEX groundtruth_by_config ON groundtruth (space, dataset, config_hash, epochs)",
        """CREATE TABLE predictions (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            checkpoint TEXT NOT NULL,
            epoch INTEGER,
            step INTEGER,
            arch TEXT NOT NULL,
            arch_index INTEGER NOT NULL,
            accuracy REAL,
            loss REAL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, checkpoint, arch)
        )""",
        # which child each mini-batch of a supernet run trained, with its batch loss/accuracy
        """CREATE TABLE train_steps (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            step INTEGER NOT NULL,
            epoch INTEGER NOT NULL,
            arch TEXT,
            arch_index INTEGER,
            loss REAL,
            accuracy REAL,
            PRIMARY KEY (run_id, step)
        )""",
    ),
    # 1 -> 2: interference between children, and generic per-step run metrics.
    (
        # after the mini-batch of `step` trained child `trained_index`, the change of another
        # child's loss and accuracy on a fixed probe batch, and the cosine of their gradients
        """CREATE TABLE interference (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            step INTEGER NOT NULL,
            trained_index INTEGER NOT NULL,
            other_index INTEGER NOT NULL,
            trained_arch TEXT,
            other_arch TEXT,
            d_loss REAL,
            d_acc REAL,
            cosine REAL,
            PRIMARY KEY (run_id, step, other_index)
        )""",
        # one named scalar per step of a run (gradient variance, entropy, ...)
        """CREATE TABLE run_metrics (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            name TEXT NOT NULL,
            step INTEGER NOT NULL,
            epoch INTEGER,
            value REAL,
            PRIMARY KEY (run_id, name, step)
        )""",
    ),
    # 2 -> 3: the architectures selected after a search, with their ground truth.
    (
        """CREATE TABLE selections (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            method TEXT NOT NULL,
            arch TEXT NOT NULL,
            arch_index INTEGER,
            truth REAL,
            truth_rank INTEGER,
            truth_source TEXT,
            seconds REAL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, method)
        )""",
    ),
]
SCHEMA_VERSION = len(_MIGRATIONS)

#: Status values a run can have; a new run starts as ``created``.
RUN_STATUSES = ("created", "running", "done", "failed", "interrupted")

#: Ground-truth metrics that :meth:`Store.truth_table` can rank by.
ACCURACY_METRICS = ("valid_acc", "test_acc", "train_acc")

_GT_COLUMNS = (
    "space", "arch", "arch_index", "dataset", "seed", "epochs", "config_hash", "config_json",
    "valid_acc", "valid_loss", "test_acc", "test_loss", "train_acc", "train_loss", "seconds",
    "code_version", "created_at",
)
_GT_FLOATS = ("valid_loss", "test_loss", "train_loss", "seconds")
_PRED_COLUMNS = (
    "run_id", "checkpoint", "epoch", "step", "arch", "arch_index", "accuracy", "loss",
    "created_at",
)
_PRED_METRICS = ("accuracy", "loss")


# ----------------------------------------------------------------------------------------------
# Configs and code versions
# ----------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """Plain JSON for the non-JSON values that configs commonly hold."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON serializable")


def _canonical_json(config: Any) -> str:
    """Canonical JSON of a config: sorted keys, no whitespace, ASCII only, no NaN."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise WsnasError(f"a config must be a dict of settings, not {type(config).__name__} "
                         f"{config!r}")
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise WsnasError(f"config cannot be stored as JSON: {exc}; use numbers, strings, "
                         "booleans, None, lists and dicts with string keys") from None


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable identity of a config: the first 16 hex digits of sha256 of its canonical JSON.

    Key order does not matter; types do (``1`` and ``1.0`` hash differently), as do all values.
    Paths, numpy scalars and arrays, sets and dataclasses are converted to plain JSON first.
    """
    return hashlib.sha256(_canonical_json(config).encode("ascii")).hexdigest()[:16]


def _git(args: list[str], cwd: Path) -> str | None:
    """Output of a read-only git command, or None when git is missing or the command fails."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take the index lock
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.cache
def code_version() -> str:
    """The wsnas version, plus the short git commit when running from a git checkout.

    ``0.1.0`` for an installed package; ``0.1.0+6d54006`` from a clean checkout;
    ``0.1.0+6d54006+dirty`` when the package's source files have uncommitted changes (files
    outside the package, such as tests, do not count). Computed once per process.
    """
    package_dir = Path(wsnas.__file__).resolve().parent
    # Only a checkout that tracks the package's own files says which code ran; a git repository
    # that merely contains an installed copy (e.g. a virtualenv inside a project) does not.
    if _git(["ls-files", "--error-unmatch", "__init__.py"], package_dir) is None:
        return wsnas.__version__
    head = (_git(["rev-parse", "--short", "HEAD"], package_dir) or "").strip()
    if not head:
        return wsnas.__version__
    status = _git(["status", "--porcelain", "--", "."], package_dir)
    dirty = "+dirty" if status and status.strip() else ""
    return f"{wsnas.__version__}+{head}{dirty}"


def _now() -> str:
    """The current UTC time as ISO 8601 with milliseconds, e.g. ``2026-05-09T07:35:25.123Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------------------------------
# Validation of incoming rows
# ----------------------------------------------------------------------------------------------


def _name(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise WsnasError(f"{what} {value!r} must be a non-empty string without surrounding "
                         "spaces")
    return value


def _integer(what: str, value: Any, *, optional: bool = False, minimum: int | None = None
             ) -> int | None:
    if value is None and optional:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise WsnasError(f"{what} {value!r} must be an integer") from None
    if minimum is not None and number < minimum:
        raise WsnasError(f"{what} {number} must be at least {minimum}")
    return number


def _real(what: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise WsnasError(f"{what} {value!r} must be a number") from None


def _fraction(what: str, value: Any) -> float | None:
    number = _real(what, value)
    if number is not None and not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise WsnasError(f"{what} {number!r} must be an accuracy as a fraction in [0, 1] "
                         "(e.g. 0.93, not 93)")
    return number


def _finite_or_none(what: str, value: Any) -> float | None:
    """A number, with NaN (undefined, e.g. the cosine of a zero gradient) stored as None."""
    number = _real(what, value)
    return None if number is None or math.isnan(number) else number


def _unknown_keys(what: str, row: Mapping[str, Any], accepted: Iterable[str]) -> None:
    accepted = list(accepted)
    extra = sorted(set(row) - set(accepted))
    if extra:
        raise WsnasError(f"{what} has unknown field(s) {', '.join(map(repr, extra))}; accepted "
                         f"fields: {', '.join(accepted)}")


def _groundtruth_record(row: Mapping[str, Any]) -> tuple:
    """One validated ground-truth row as a tuple in ``_GT_COLUMNS`` order."""
    if not isinstance(row, Mapping):
        raise WsnasError(f"a ground-truth row must be a dict, not {type(row).__name__}")
    _unknown_keys("ground-truth row", row, (*_GT_COLUMNS, "config"))
    for key in ("space", "arch", "arch_index", "dataset", "seed", "epochs"):
        if key not in row:
            raise WsnasError(f"ground-truth row {dict(row)!r} lacks the field {key!r}")
    if "config" in row:
        canonical = _canonical_json(row["config"])
        if "config_json" in row and _canonical_json(_parse_config(row["config_json"])) != canonical:
            raise WsnasError("ground-truth row gives both 'config' and a different 'config_json'; "
                             "give one of them")
    elif "config_json" in row:
        canonical = _canonical_json(_parse_config(row["config_json"]))
    else:
        raise WsnasError("ground-truth row lacks its training config; give 'config' (a dict) or "
                         "'config_json' (its JSON text)")
    chash = hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]
    if row.get("config_hash") is not None and row["config_hash"] != chash:
        raise WsnasError(f"ground-truth row has config_hash {row['config_hash']!r} but its config "
                         f"hashes to {chash!r}; compute it with wsnas.store.config_hash(config)")
    values = {
        "space": _name("space", row["space"]),
        "arch": _name("architecture", row["arch"]),
        "arch_index": _integer("arch_index", row["arch_index"], minimum=0),
        "dataset": _name("dataset", row["dataset"]),
        "seed": _integer("seed", row["seed"]),
        "epochs": _integer("epochs", row["epochs"], minimum=0),
        "config_hash": chash,
        "config_json": canonical,
        "code_version": row.get("code_version") or code_version(),
        "created_at": row.get("created_at") or _now(),
    }
    for key in ACCURACY_METRICS:
        values[key] = _fraction(key, row.get(key))
    for key in _GT_FLOATS:
        values[key] = _real(key, row.get(key))
    return tuple(values[c] for c in _GT_COLUMNS)


def _parse_config(text: Any) -> Any:
    if not isinstance(text, str):
        raise WsnasError(f"config_json must be JSON text, not {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WsnasError(f"config_json {text[:60]!r} is not valid JSON ({exc.msg})") from None


def _prediction_record(run_id: str, row: Mapping[str, Any]) -> tuple:
    """One validated prediction row as a tuple in ``_PRED_COLUMNS`` order."""
    if not isinstance(row, Mapping):
        raise WsnasError(f"a prediction row must be a dict, not {type(row).__name__}")
    _unknown_keys("prediction row", row, _PRED_COLUMNS)
    if row.get("run_id", run_id) != run_id:
        raise WsnasError(f"prediction row for run {row['run_id']!r} given to run {run_id!r}")
    for key in ("checkpoint", "arch", "arch_index"):
        if key not in row:
            raise WsnasError(f"prediction row {dict(row)!r} lacks the field {key!r}")
    checkpoint = row["checkpoint"]
    if isinstance(checkpoint, int) and not isinstance(checkpoint, bool):
        checkpoint = str(checkpoint)
    values = {
        "run_id": run_id,
        "checkpoint": _name("checkpoint label", checkpoint),
        "epoch": _integer("epoch", row.get("epoch"), optional=True),
        "step": _integer("step", row.get("step"), optional=True),
        "arch": _name("architecture", row["arch"]),
        "arch_index": _integer("arch_index", row["arch_index"], minimum=0),
        "accuracy": _fraction("accuracy", row.get("accuracy")),
        "loss": _real("loss", row.get("loss")),
        "created_at": row.get("created_at") or _now(),
    }
    return tuple(values[c] for c in _PRED_COLUMNS)


def _where(**filters: Any) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or ``""``) that keeps rows equal to every filter that is not None."""
    used = {k: v for k, v in filters.items() if v is not None}
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{k} = ?" for k in used), list(used.values())


def _describe_filters(**filters: Any) -> str:
    return ", ".join(f"{k}={'any' if v is None else repr(v)}" for k, v in filters.items())


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix or "(config)": value}


def _config_diff(old: Any, new: Any, limit: int = 4) -> str:
    """The settings that differ between two configs, e.g. ``lr: 0.1 -> 0.05``."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k, ...) != b.get(k, ...))
    parts = [f"{k}: {json.dumps(a[k]) if k in a else '(absent)'} -> "
             f"{json.dumps(b[k]) if k in b else '(absent)'}" for k in keys[:limit]]
    if len(keys) > limit:
        parts.append(f"and {len(keys) - limit} more")
    return ", ".join(parts)


def _write_csv(path: str | os.PathLike, header: list[Any], rows: Iterable[Iterable[Any]]) -> int:
    """Write a CSV atomically (a temporary file renamed into place); returns the data rows."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise WsnasError(f"output {str(target)!r} is a directory; give a file name such as "
                         f"{str(target / 'out.csv')!r}")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # os.open with mode 0o666 lets the umask decide the permissions, as for a plain open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise WsnasError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    count = 0
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


# ----------------------------------------------------------------------------------------------
# The store
# ----------------------------------------------------------------------------------------------


class Store:
    """A wsnas results store in one SQLite file.

    Args:
        path: the database file. Its parent folders and the file are created when missing.
        create: when False, a missing file is an error instead (for read-only commands).
        busy_timeout: seconds to wait for another connection's lock before giving up.

    Use it as a context manager, or call :meth:`close`. One connection per store object; use it
    from the thread that created it.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True,
                 busy_timeout: float = 30.0):
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        name = str(self.path)
        if self.path.is_dir():
            raise WsnasError(f"results store {name!r} is a directory; give a file such as "
                             f"{str(self.path / 'wsnas.db')!r}")
        if self.path.exists():
            self._check_header()
        elif not create:
            raise WsnasError(f"results store {name!r} does not exist; give the path of an existing "
                             "store with --store PATH")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WsnasError(f"cannot create the results store {name!r}: "
                                 f"{exc.strerror}") from None
        try:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._configure(busy_timeout)
            self._open_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise WsnasError(f"cannot open the results store {name!r}: {exc}; it is not a "
                             "readable SQLite database, or it is locked or read-only") from None
        except BaseException:
            self.close()
            raise

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def close(self) -> None:
        """Close the connection (SQLite then folds the write-ahead log into the file)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        """The open SQLite connection (autocommit; writes go through ``_write``)."""
        if self._conn is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: commits when the block ends, rolls back if it raises.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so the reads inside the block see the
        state the writes apply to.
        """
        conn = self.conn
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            yield conn

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise WsnasError(f"cannot read the results store {str(self.path)!r}: "
                             f"{exc.strerror}") from None
        if head and head != _SQLITE_HEADER:
            raise WsnasError(f"{str(self.path)!r} is not an SQLite database, so not a wsnas "
                             "results store; give another --store path (a new file is created)")

    def _configure(self, busy_timeout: float) -> None:
        conn = self.conn
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise WsnasError(f"results store {str(self.path)!r} cannot use SQLite's WAL journal "
                             f"(got {mode!r}); put it on a local file system")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")

    def _read_schema_version(self) -> int | None:
        """The file's schema version; None for a database without tables (a new file)."""
        conn = self.conn
        names = sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'table' AND substr(name, 1, 7) != 'sqlite_'"))
        if not names:
            return None
        name = str(self.path)
        if "meta" not in names:
            raise WsnasError(f"{name!r} is an SQLite database but not a wsnas results store "
                             f"(tables {', '.join(names)} and no 'meta'); give another --store "
                             "path")
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError:
            raise WsnasError(f"{name!r} has a 'meta' table that is not a wsnas one; it is not a "
                             "wsnas results store: give another --store path") from None
        value = str(meta.get("schema_version", ""))
        if not value.isdigit():
            raise WsnasError(f"results store {name!r} has no valid schema_version in its meta "
                             f"table (found {meta.get('schema_version')!r}); it is damaged or not "
                             "a wsnas store")
        version = int(value)
        if version > SCHEMA_VERSION:
            raise WsnasError(
                f"results store {name!r} has schema version {version} (written by "
                f"{meta.get('created_by', 'an unknown wsnas')}), newer than version "
                f"{SCHEMA_VERSION} that wsnas {wsnas.__version__} reads; upgrade wsnas")
        return version

    def _open_schema(self) -> None:
        """Create the schema in a new file, or upgrade an older one, in one transaction."""
        if self._read_schema_version() == SCHEMA_VERSION:
            return
        with self._write() as conn:
            version = self._read_schema_version()  # again, now under the write lock
            if version is None:
                conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                    ("schema_version", "0"), ("created_by", f"wsnas {code_version()}"),
                    ("created_at", _now())])
                version = 0
            elif version < SCHEMA_VERSION:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             ("upgraded_by", f"wsnas {code_version()}"))
            for step in _MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                         (str(SCHEMA_VERSION),))

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (always the current one once opened)."""
        return int(self.meta()["schema_version"])

    def meta(self) -> dict[str, str]:
        """The ``meta`` table: ``schema_version``, ``created_by``, ``created_at``, ..."""
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    # -- runs ----------------------------------------------------------------------------------

    @staticmethod
    def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        out["config"] = json.loads(out.pop("config_json"))
        return out

    def _require_run(self, run_id: str) -> None:
        if self.conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
            return
        known = [r[0] for r in self.conn.execute(
            "SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 6")]
        hint = (f"known runs: {', '.join(known[:5])}{', ...' if len(known) > 5 else ''}"
                if known else "the store has no runs")
        raise WsnasError(f"run {run_id!r} is not in the results store {str(self.path)!r}; {hint}")

    def ensure_run(self, run_id: str, kind: str, config: Mapping[str, Any],
                   seed: int | None = None) -> dict[str, Any]:
        """Create a run, or return it when it already exists with the same kind, config and seed.

        Rerunning a command with the same run id therefore resumes it. A run id that exists
        with another kind, config or seed is an error: results of different configurations
        never mix under one id.

        Returns:
            The run: ``run_id, kind, config (dict), seed, code_version, status, created_at,
            updated_at``.
        """
        run_id = _name("run id", run_id)
        kind = _name("run kind", kind)
        canonical = _canonical_json(config)
        seed = _integer("seed", seed, optional=True)
        with self._write() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                now = _now()
                conn.execute(
                    "INSERT INTO runs (run_id, kind, config_json, seed, code_version, status, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, kind, canonical, seed, code_version(), RUN_STATUSES[0], now, now))
                row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            else:
                problems = []
                if row["kind"] != kind:
                    problems.append(f"kind {row['kind']!r} (not {kind!r})")
                if row["config_json"] != canonical:
                    diff = _config_diff(json.loads(row["config_json"]), json.loads(canonical))
                    problems.append(f"a different config ({diff})")
                if seed is not None and row["seed"] != seed:
                    problems.append(f"seed {row['seed']} (not {seed})")
                if problems:
                    raise WsnasError(
                        f"run {run_id!r} already exists in {str(self.path)!r} with "
                        f"{'; '.join(problems)}; use a new run id for a new configuration")
        return self._run_dict(row)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run with this id (as :meth:`ensure_run` returns it), or None."""
        row = self.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_dict(row)

    def list_runs(self, kind: str | None = None) -> list[dict[str, Any]]:
        """All runs, or those of one kind, oldest first."""
        where, params = _where(kind=kind)
        rows = self.conn.execute(f"SELECT * FROM runs{where} ORDER BY created_at, rowid", params)
        return [self._run_dict(r) for r in rows]

    def set_run_status(self, run_id: str, status: str) -> None:
        """Record a run's status: one of :data:`RUN_STATUSES`."""
        if status not in RUN_STATUSES:
            raise WsnasError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        with self._write() as conn:
            self._require_run(run_id)
            conn.execute("UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?",
                         (status, _now(), run_id))

    # -- ground truth --------------------------------------------------------------------------

    _GT_INSERT = (
        f"INSERT INTO groundtruth ({', '.join(_GT_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(_GT_COLUMNS))}) "
        "ON CONFLICT (space, arch, dataset, seed, epochs, config_hash) DO NOTHING"
    )

    def add_groundtruth(self, row: Mapping[str, Any]) -> bool:
        """Record one from-scratch training; True if new, False if it was already recorded.

        ``row`` holds ``space, arch, arch_index, dataset, seed, epochs``, the training config as
        ``config`` (a dict) or ``config_json`` (its JSON text; ``config_hash`` is derived and, if
        also given, checked), and any of ``valid_acc, valid_loss, test_acc, test_loss,
        train_acc, train_loss, seconds`` (accuracies as fractions in [0, 1]).
        ``code_version`` and ``created_at`` default to now and this code. An existing row with
        the same identity is left unchanged.
        """
        return self.add_groundtruth_many([row]) == 1

    def add_groundtruth_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record many trainings in one transaction (all or none); returns how many were new."""
        records = [_groundtruth_record(r) for r in rows]  # validate everything before writing
        if not records:
            return 0
        added = 0
        with self._write() as conn:
            for record in records:
                added += conn.execute(self._GT_INSERT, record).rowcount
        return added

    def groundtruth_done(self, space: str, dataset: str, epochs: int,
                         config_hash: str) -> set[tuple[str, int]]:
        """The ``(arch, seed)`` pairs already recorded for this space, dataset and config."""
        rows = self.conn.execute(
            "SELECT arch, seed FROM groundtruth WHERE space = ? AND dataset = ? AND epochs = ? "
            "AND config_hash = ?", (space, dataset, epochs, config_hash))
        return {(r["arch"], int(r["seed"])) for r in rows}

    def groundtruth(self, space: str | None = None, dataset: str | None = None,
                    config_hash: str | None = None, epochs: int | None = None
                    ) -> list[dict[str, Any]]:
        """Ground-truth rows (all columns), optionally filtered, by config then arch_index."""
        where, params = _where(space=space, dataset=dataset, config_hash=config_hash,
                               epochs=epochs)
        rows = self.conn.execute(
            f"SELECT {', '.join(_GT_COLUMNS)} FROM groundtruth{where} "
            "ORDER BY space, dataset, config_hash, epochs, arch_index, arch, seed", params)
        return [dict(r) for r in rows]

    def groundtruth_summary(self, space: str | None = None, dataset: str | None = None,
                            config_hash: str | None = None, epochs: int | None = None
                            ) -> list[dict[str, Any]]:
        """One entry per (space, dataset, config_hash, epochs): counts of archs, seeds, rows."""
        where, params = _where(space=space, dataset=dataset, config_hash=config_hash,
                               epochs=epochs)
        rows = self.conn.execute(
            "SELECT space, dataset, config_hash, epochs, COUNT(DISTINCT arch) AS archs, "
            f"COUNT(DISTINCT seed) AS seeds, COUNT(*) AS rows FROM groundtruth{where} "
            "GROUP BY space, dataset, config_hash, epochs "
            "ORDER BY space, dataset, config_hash, epochs", params)
        return [dict(r) for r in rows]

    def truth_table(self, space: str | None = None, dataset: str | None = None,
                    config_hash: str | None = None, metric: str = "test_acc", *,
                    epochs: int | None = None) -> TruthTable:
        """The stored ground truth as a :class:`TruthTable`: the mean over seeds per architecture.

        The filters must leave exactly one (space, dataset, config_hash, epochs) combination;
        ``per_seed`` holds each seed's accuracies (NaN where a seed lacks an architecture), rows
        are sorted by ``arch_index``. Rows without a value for ``metric`` are ignored.
        """
        if metric not in ACCURACY_METRICS:
            raise WsnasError(f"ground-truth metric {metric!r} is not one of "
                             f"{', '.join(ACCURACY_METRICS)}")
        filters = {"space": space, "dataset": dataset, "config_hash": config_hash,
                   "epochs": epochs}
        combos = self.groundtruth_summary(**filters)
        if not combos:
            available = self.groundtruth_summary()
            have = ("; the store has " + ", ".join(
                f"space={c['space']!r} dataset={c['dataset']!r} config_hash={c['config_hash']!r}"
                for c in available[:5]) + (", ..." if len(available) > 5 else "")
                if available else "; the store has no ground truth yet")
            raise WsnasError(f"no ground truth in {str(self.path)!r} matches "
                             f"{_describe_filters(**filters)}{have}")
        if len(combos) > 1:
            varying = [k for k in filters if len({c[k] for c in combos}) > 1]
            listed = ", ".join(
                f"({c['space']}, {c['dataset']}, {c['config_hash']}, {c['epochs']} epochs)"
                for c in combos[:6]) + (", ..." if len(combos) > 6 else "")
            raise WsnasError(
                f"ground truth in {str(self.path)!r} matching {_describe_filters(**filters)} has "
                f"{len(combos)} combinations of (space, dataset, config_hash, epochs): {listed}; "
                f"choose one with the {' and '.join(varying)} option")
        chosen = {k: combos[0][k] for k in filters}
        where, params = _where(**chosen)
        rows = self.conn.execute(
            f"SELECT arch, arch_index, seed, {metric} AS value FROM groundtruth{where} "
            f"AND {metric} IS NOT NULL ORDER BY arch_index, arch, seed", params).fetchall()
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
            source=(f"{self.path} (config_hash {chosen['config_hash']}, {chosen['epochs']} "
                    f"epochs, {metric}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''})"),
        )

    # -- predictions ---------------------------------------------------------------------------

    _PRED_UPSERT = (
        f"INSERT INTO predictions ({', '.join(_PRED_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(_PRED_COLUMNS))}) "
        "ON CONFLICT (run_id, checkpoint, arch) DO UPDATE SET epoch = excluded.epoch, "
        "step = excluded.step, arch_index = excluded.arch_index, "
        "accuracy = excluded.accuracy, loss = excluded.loss"
    )

    def add_predictions(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record a run's predictions in one transaction; returns the number of rows written.

        Each row holds ``checkpoint`` (a label such as ``"epoch-10"``), ``arch``, ``arch_index``
        and any of ``epoch, step, accuracy, loss``. A row with the same (run, checkpoint, arch)
        as a stored one replaces its values in place, keeping the checkpoint's position.
        """
        self._require_run(run_id)
        records = [_prediction_record(run_id, r) for r in rows]
        if not records:
            return 0
        with self._write() as conn:
            for record in records:
                conn.execute(self._PRED_UPSERT, record)
        return len(records)

    def predictions(self, run_id: str, checkpoint: str | None = None) -> list[dict[str, Any]]:
        """A run's prediction rows (all columns), optionally of one checkpoint, as inserted."""
        self._require_run(run_id)
        where, params = _where(run_id=run_id, checkpoint=checkpoint)
        rows = self.conn.execute(
            f"SELECT {', '.join(_PRED_COLUMNS)} FROM predictions{where} ORDER BY rowid", params)
        return [dict(r) for r in rows]

    def checkpoints(self, run_id: str) -> list[str]:
        """A run's checkpoint labels in the order they were first recorded."""
        self._require_run(run_id)
        rows = self.conn.execute(
            "SELECT checkpoint FROM predictions WHERE run_id = ? GROUP BY checkpoint "
            "ORDER BY MIN(rowid)", (run_id,))
        return [r[0] for r in rows]

    def _matrix(self, run_id: str, metric: str) -> tuple[list[str], list[str], list[int],
                                                         np.ndarray]:
        if metric not in _PRED_METRICS:
            raise WsnasError(f"prediction metric {metric!r} is not one of "
                             f"{', '.join(_PRED_METRICS)}")
        labels = self.checkpoints(run_id)
        if not labels:
            raise WsnasError(f"run {run_id!r} in {str(self.path)!r} has no predictions yet")
        columns = self.conn.execute(
            "SELECT arch, MIN(arch_index) AS arch_index FROM predictions WHERE run_id = ? "
            "GROUP BY arch ORDER BY arch_index, arch", (run_id,)).fetchall()
        archs = [r["arch"] for r in columns]
        indices = [int(r["arch_index"]) for r in columns]
        row_of = {c: i for i, c in enumerate(labels)}
        col_of = {a: j for j, a in enumerate(archs)}
        matrix = np.full((len(labels), len(archs)), np.nan)
        for r in self.conn.execute(
                f"SELECT checkpoint, arch, {metric} AS value FROM predictions WHERE run_id = ?",
                (run_id,)):
            if r["value"] is not None:
                matrix[row_of[r["checkpoint"]], col_of[r["arch"]]] = r["value"]
        return labels, archs, indices, matrix

    def prediction_matrix(self, run_id: str, metric: str = "accuracy"
                          ) -> tuple[list[str], list[str], np.ndarray]:
        """A run's predictions as (checkpoint labels, archs by arch_index, matrix).

        ``matrix[i, j]`` is ``metric`` (``accuracy`` or ``loss``) of ``archs[j]`` at checkpoint
        ``labels[i]``; NaN where it was not recorded.
        """
        labels, archs, _, matrix = self._matrix(run_id, metric)
        return labels, archs, matrix

    def _replace_rows(self, table: str, columns: tuple[str, ...], records: list[tuple]) -> int:
        """``INSERT OR REPLACE`` validated records into ``table`` in one transaction; their count."""
        if not records:
            return 0
        with self._write() as conn:
            conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
                             f"VALUES ({', '.join('?' * len(columns))})", records)
        return len(records)

    # -- training steps ------------------------------------------------------------------------

    _STEP_COLUMNS = ("run_id", "step", "epoch", "arch", "arch_index", "loss", "accuracy")

    def add_train_steps(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record which child each mini-batch trained (``step``, ``epoch``, ``arch``,
        ``arch_index``, ``loss``, ``accuracy``) in one transaction; a repeated step is replaced."""
        self._require_run(run_id)
        records = []
        for row in rows:
            _unknown_keys("train step row", row, self._STEP_COLUMNS)
            records.append((
                run_id, _integer("step", row.get("step"), minimum=0),
                _integer("epoch", row.get("epoch"), minimum=0),
                None if row.get("arch") is None else _name("architecture", row["arch"]),
                _integer("arch_index", row.get("arch_index"), optional=True, minimum=0),
                _real("loss", row.get("loss")), _fraction("accuracy", row.get("accuracy")),
            ))
        return self._replace_rows("train_steps", self._STEP_COLUMNS, records)

    def train_steps(self, run_id: str) -> list[dict[str, Any]]:
        """A run's training steps in step order."""
        self._require_run(run_id)
        rows = self.conn.execute(
            f"SELECT {', '.join(self._STEP_COLUMNS)} FROM train_steps WHERE run_id = ? "
            "ORDER BY step", (run_id,))
        return [dict(r) for r in rows]

    # -- interference --------------------------------------------------------------------------

    _INTERFERENCE_COLUMNS = ("run_id", "step", "trained_index", "other_index", "trained_arch",
                             "other_arch", "d_loss", "d_acc", "cosine")

    def add_interference(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record interference rows in one transaction; a repeated (step, other_index) is replaced.

        Each row holds ``step``, ``trained_index`` (the child the step trained), ``other_index``
        (the child measured), optionally ``trained_arch``/``other_arch`` (their names), and
        ``d_loss``, ``d_acc`` (change of the other child's probe loss and accuracy across the
        step) and ``cosine`` (of the two children's gradients); NaN is stored as NULL.
        """
        self._require_run(run_id)
        records = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise WsnasError(f"an interference row must be a dict, not {type(row).__name__}")
            _unknown_keys("interference row", row, self._INTERFERENCE_COLUMNS)
            if row.get("run_id", run_id) != run_id:
                raise WsnasError(f"interference row for run {row['run_id']!r} given to run {run_id!r}")
            for key in ("step", "trained_index", "other_index"):
                if key not in row:
                    raise WsnasError(f"interference row {dict(row)!r} lacks the field {key!r}")
            records.append((
                run_id, _integer("step", row["step"], minimum=0),
                _integer("trained_index", row["trained_index"], minimum=0),
                _integer("other_index", row["other_index"], minimum=0),
                None if row.get("trained_arch") is None else _name("architecture", row["trained_arch"]),
                None if row.get("other_arch") is None else _name("architecture", row["other_arch"]),
                *(_finite_or_none(key, row.get(key)) for key in ("d_loss", "d_acc", "cosine")),
            ))
        return self._replace_rows("interference", self._INTERFERENCE_COLUMNS, records)

    def interference(self, run_id: str) -> list[dict[str, Any]]:
        """A run's interference rows by step then other_index (NULL values read back as None)."""
        self._require_run(run_id)
        rows = self.conn.execute(
            f"SELECT {', '.join(self._INTERFERENCE_COLUMNS)} FROM interference WHERE run_id = ? "
            "ORDER BY step, other_index", (run_id,))
        return [dict(r) for r in rows]

    # -- run metrics ---------------------------------------------------------------------------

    _METRIC_COLUMNS = ("run_id", "name", "step", "epoch", "value")

    def add_run_metrics(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record named per-step scalars of a run (``name``, ``step``, ``epoch``, ``value``) in
        one transaction; a repeated (name, step) is replaced. NaN is stored as NULL."""
        self._require_run(run_id)
        records = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise WsnasError(f"a run-metric row must be a dict, not {type(row).__name__}")
            _unknown_keys("run-metric row", row, self._METRIC_COLUMNS)
            if row.get("run_id", run_id) != run_id:
                raise WsnasError(f"run-metric row for run {row['run_id']!r} given to run {run_id!r}")
            for key in ("name", "step"):
                if key not in row:
                    raise WsnasError(f"run-metric row {dict(row)!r} lacks the field {key!r}")
            records.append((
                run_id, _name("metric name", row["name"]), _integer("step", row["step"], minimum=0),
                _integer("epoch", row.get("epoch"), optional=True, minimum=0),
                _finite_or_none("value", row.get("value")),
            ))
        return self._replace_rows("run_metrics", self._METRIC_COLUMNS, records)

    def run_metrics(self, run_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """A run's metric rows (all names, or one), by name then step."""
        self._require_run(run_id)
        where, params = _where(run_id=run_id, name=name)
        rows = self.conn.execute(
            f"SELECT {', '.join(self._METRIC_COLUMNS)} FROM run_metrics{where} ORDER BY name, step",
            params)
        return [dict(r) for r in rows]

    # -- selections ----------------------------------------------------------------------------

    _SELECTION_COLUMNS = ("run_id", "method", "arch", "arch_index", "truth", "truth_rank", "truth_source",
                          "seconds", "created_at")

    def add_selection(self, run_id: str, row: Mapping[str, Any]) -> None:
        """Record the architecture ``method`` selected after search run ``run_id`` (replaces an
        earlier one): ``arch``, ``arch_index``, ``truth`` (its ground-truth accuracy, if known),
        ``truth_rank`` (1 = best), ``truth_source`` and ``seconds`` (the selection's time)."""
        self._require_run(run_id)
        _unknown_keys("selection row", row, self._SELECTION_COLUMNS)
        record = (run_id, _name("selection method", row.get("method")), _name("architecture", row.get("arch")),
                  _integer("arch_index", row.get("arch_index"), optional=True, minimum=0),
                  _finite_or_none("truth", row.get("truth")),
                  _integer("truth_rank", row.get("truth_rank"), optional=True, minimum=1),
                  None if row.get("truth_source") is None else str(row["truth_source"]),
                  _finite_or_none("seconds", row.get("seconds")), _now())
        self._replace_rows("selections", self._SELECTION_COLUMNS, [record])

    def selections(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Selections of one search run, or of all, by run then method."""
        where, params = _where(run_id=run_id)
        rows = self.conn.execute(
            f"SELECT {', '.join(self._SELECTION_COLUMNS)} FROM selections{where} ORDER BY run_id, method", params)
        return [dict(r) for r in rows]

    # -- generic -------------------------------------------------------------------------------

    def tables(self) -> dict[str, int]:
        """Every results table (not ``meta``) with its row count, in creation order."""
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' "
            "AND substr(name, 1, 7) != 'sqlite_' ORDER BY rowid")]
        return {n: self.conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}

    def export_csv(self, table: str, path: str | os.PathLike, *, run_id: str | None = None) -> int:
        """Write a table (all columns, a header line) to a CSV file; returns the rows written.

        ``run_id`` keeps only that run's rows, for tables with a ``run_id`` column.
        """
        known = list(self.tables())
        if table not in known:
            raise WsnasError(f"unknown table {table!r} in {str(self.path)!r}; choose one of "
                             f"{', '.join(known)}")
        columns = [r["name"] for r in self.conn.execute(f'PRAGMA table_info("{table}")')]
        where, params = "", []
        if run_id is not None:
            if "run_id" not in columns:
                with_run = [t for t in known if "run_id" in {
                    r["name"] for r in self.conn.execute(f'PRAGMA table_info("{t}")')}]
                raise WsnasError(f"table {table!r} has no run_id column; a run filter applies to "
                                 f"{', '.join(with_run)}")
            self._require_run(run_id)
            where, params = _where(run_id=run_id)
        rows = self.conn.execute(
            f"SELECT {', '.join(columns)} FROM \"{table}\"{where} ORDER BY rowid", params)
        return _write_csv(path, columns, (tuple(r) for r in rows))

    def export_prediction_matrix_csv(self, run_id: str, path: str | os.PathLike, *,
                                     metric: str = "accuracy") -> int:
        """Write a run's predictions in the wide format ``wsnas metrics --pred`` reads.

        The header is an empty cell then the arch indices; each further line is a checkpoint
        label then ``metric`` per architecture (empty where not recorded). Returns the number
        of checkpoints written.
        """
        labels, _, indices, matrix = self._matrix(run_id, metric)
        body = ([label, *("" if math.isnan(v) else repr(float(v)) for v in values)]
                for label, values in zip(labels, matrix, strict=True))
        return _write_csv(path, ["", *indices], body)
