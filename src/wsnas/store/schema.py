"""The store's schema: its tables, their version, the steps that upgrade older files, and opening.

* ``_MIGRATIONS`` defines every table; :data:`SCHEMA_VERSION` is the number of its steps.
* :func:`open_schema` creates the schema in a new file or upgrades an older file in place, in one
  transaction; :func:`read_schema_version` refuses a file from a newer wsnas.
* :func:`configure` sets what crash safety rests on: the WAL journal and ``synchronous=FULL``;
  :func:`transaction` is the one way the store writes (``BEGIN IMMEDIATE``, all or nothing).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import wsnas
from wsnas.core.errors import WsnasError
from wsnas.store.provenance import code_version, utc_now

_SQLITE_HEADER = b"SQLite format 3\x00"
_CREATE_TABLE = re.compile(r"\s*CREATE TABLE (\w+)", re.IGNORECASE)

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
        # groundtruth_done, groundtruth() and groundtruth_values() filter on these columns.
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
    # 3 -> 4: a ground-truth training whose loss became NaN or infinite is recorded as
    # 'diverged' (no accuracy), so a rerun skips it and no ranking reads it as a value.
    (
        "ALTER TABLE groundtruth ADD COLUMN status TEXT NOT NULL DEFAULT 'done'",
    ),
    # 4 -> 5: the candidates of an evolutionary or random search on a trained supernet, and a
    # cache of architecture costs (parameters, MFLOPs, measured latency) shared by every search.
    (
        # one row per architecture a search evaluated, in evaluation order (`position`): its
        # generation, how it was made (random, mutation, crossover, exhaustive), its score with
        # shared weights, its costs, and whether it is on the search's Pareto front
        """CREATE TABLE candidates (
            run_id TEXT NOT NULL REFERENCES runs (run_id),
            arch TEXT NOT NULL,
            arch_index INTEGER,
            generation INTEGER NOT NULL,
            position INTEGER NOT NULL,
            origin TEXT NOT NULL,
            score REAL,
            loss REAL,
            params INTEGER,
            mflops REAL,
            latency_ms REAL,
            on_front INTEGER NOT NULL DEFAULT 0,
            seconds REAL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, arch),
            UNIQUE (run_id, position)
        )""",
        # `key` hashes what the value depends on (`config_json`: the space's settings and the
        # input shape; for latency also the device, threads and timing protocol)
        """CREATE TABLE arch_costs (
            key TEXT NOT NULL,
            arch TEXT NOT NULL,
            metric TEXT NOT NULL,
            value REAL NOT NULL,
            config_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (key, arch, metric)
        )""",
    ),
    # 5 -> 6: the command that created a run and its effective options (JSON: {"command":
    # "supernet", "options": {...}}), which `wsnas store config` prints as a --config file; a
    # record beside the run's identity (config_json), never compared; NULL for older runs.
    (
        "ALTER TABLE runs ADD COLUMN command_json TEXT",
    ),
]
SCHEMA_VERSION = len(_MIGRATIONS)

#: Status values a run can have; a new run starts as ``created``.
RUN_STATUSES = ("created", "running", "done", "failed", "interrupted", "diverged")

#: Status values of a ground-truth row: ``done`` (a measurement) or ``diverged`` (the training's
#: loss became NaN or infinite: no accuracy, never part of a ground truth).
GT_STATUSES = ("done", "diverged")

#: Ground-truth accuracy columns (fractions in [0, 1]); a ground truth ranks by one of them.
ACCURACY_METRICS = ("valid_acc", "test_acc", "train_acc")

GT_COLUMNS = (
    "space", "arch", "arch_index", "dataset", "seed", "epochs", "config_hash", "config_json",
    "valid_acc", "valid_loss", "test_acc", "test_loss", "train_acc", "train_loss", "seconds",
    "code_version", "created_at", "status",
)
GT_FLOATS = ("valid_loss", "test_loss", "train_loss", "seconds")
PRED_COLUMNS = (
    "run_id", "checkpoint", "epoch", "step", "arch", "arch_index", "accuracy", "loss",
    "created_at",
)
PRED_METRICS = ("accuracy", "loss")

STEP_COLUMNS = ("run_id", "step", "epoch", "arch", "arch_index", "loss", "accuracy")
INTERFERENCE_COLUMNS = ("run_id", "step", "trained_index", "other_index", "trained_arch",
                         "other_arch", "d_loss", "d_acc", "cosine")
METRIC_COLUMNS = ("run_id", "name", "step", "epoch", "value")
SELECTION_COLUMNS = ("run_id", "method", "arch", "arch_index", "truth", "truth_rank", "truth_source",
                      "seconds", "created_at")
CANDIDATE_COLUMNS = ("run_id", "arch", "arch_index", "generation", "position", "origin", "score", "loss",
                     "params", "mflops", "latency_ms", "on_front", "seconds", "created_at")
#: How a search made a candidate.
CANDIDATE_ORIGINS = ("random", "mutation", "crossover", "exhaustive")
#: The costs cached in ``arch_costs``.
COST_METRICS = ("params", "mflops", "latency_ms")
COST_COLUMNS = ("key", "arch", "metric", "value", "config_json", "created_at")


# ----------------------------------------------------------------------------------------------
# Opening a file
# ----------------------------------------------------------------------------------------------


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: commits when the block ends, rolls back if it raises.

    ``BEGIN IMMEDIATE`` takes the write lock up front, so the reads inside the block see the
    state the writes apply to.
    """
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        yield conn


def check_header(path: Path) -> None:
    """Refuse an existing file that is not an SQLite database (an empty file is accepted)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise WsnasError(f"cannot read the results store {str(path)!r}: "
                         f"{exc.strerror}") from None
    if head and head != _SQLITE_HEADER:
        raise WsnasError(f"{str(path)!r} is not an SQLite database, so not a wsnas "
                         "results store; give another --store path (a new file is created)")


def configure(conn: sqlite3.Connection, path: Path) -> None:
    """WAL journal, ``synchronous=FULL`` and foreign keys, for a connection that writes.

    Call it only once the file is known to be a wsnas store or empty
    (:func:`read_schema_version`): switching the journal changes the file.
    """
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise WsnasError(f"results store {str(path)!r} cannot use SQLite's WAL journal "
                         f"(got {mode!r}); put it on a local file system")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def schema_tables() -> list[str]:
    """The tables of the current schema, ``meta`` first, in the order the migrations create them."""
    return ["meta", *(m.group(1) for step in _MIGRATIONS for statement in step
                      if (m := _CREATE_TABLE.match(statement)))]


def check_tables(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a store of the current version that lacks a table of its schema (dropped, damaged)."""
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in schema_tables() if t not in present]
    if missing:
        raise WsnasError(f"results store {str(path)!r} is damaged: its table{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))} {'are' if len(missing) > 1 else 'is'} missing "
                         f"(schema version {SCHEMA_VERSION} has {', '.join(schema_tables())}); restore it from a "
                         "backup or give another --store path")


def read_schema_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The file's schema version; None for a database without tables (a new file)."""
    names = sorted(r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master "
        "WHERE type = 'table' AND substr(name, 1, 7) != 'sqlite_'"))
    if not names:
        return None
    name = str(path)
    if "meta" not in names:
        raise WsnasError(f"{name!r} is an SQLite database but not a wsnas results store "
                         f"(tables {', '.join(names)} and no 'meta'); give another --store "
                         "path")
    if not {"key", "value"} <= {r[1] for r in conn.execute("PRAGMA table_info(meta)")}:
        raise WsnasError(f"{name!r} has a 'meta' table that is not a wsnas one; it is not a "
                         "wsnas results store: give another --store path")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
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


def open_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new file, or upgrade an older one, in one transaction."""
    if read_schema_version(conn, path) == SCHEMA_VERSION:
        return
    with transaction(conn):
        version = read_schema_version(conn, path)  # again, now under the write lock
        if version is None:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                ("schema_version", "0"), ("created_by", f"wsnas {code_version()}"),
                ("created_at", utc_now())])
            version = 0
        elif version < SCHEMA_VERSION:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                         ("upgraded_by", f"wsnas {code_version()}"))
        for step in _MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION),))
