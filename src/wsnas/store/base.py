"""The connection a store is built on: opening the file, closing it, one write transaction.

:class:`StoreBase` holds the SQLite connection that the readers (``reader.py``), the writer
(``writer.py``) and the exports (``export.py``) share; :class:`wsnas.store.Store` combines them.

Every statement goes through one guard (:class:`StoreConnection`), so no command handles
SQLite's errors itself:

* **Locks.** A statement that finds the file locked by another process is retried with a
  growing pause (SQLite's own busy wait, then up to 2 s between tries) for ``timeout`` seconds
  in all (:data:`TIMEOUT_ENV`, else :data:`DEFAULT_TIMEOUT`). The rows being written stay in
  memory meanwhile, so a lock released within the window loses nothing; past it,
  :class:`StoreLocked` names the file in one line, and what was already written stays, so
  a rerun continues from it.
* **Damage.** Any other SQLite error while opening or querying becomes one
  :class:`~wsnas.core.errors.WsnasError` line naming the file: a missing table by its name,
  a damaged file ("database disk image is malformed") with what ``PRAGMA quick_check``
  found.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from wsnas.core.errors import WsnasError
from wsnas.store.schema import (
    SCHEMA_VERSION,
    check_header,
    check_tables,
    configure,
    open_schema,
    read_schema_version,
    transaction,
)

_S = TypeVar("_S", bound="StoreBase")
_T = TypeVar("_T")

#: The environment variable with the seconds a store waits for another process's lock.
TIMEOUT_ENV = "WSNAS_STORE_TIMEOUT"
#: Seconds a store waits for another process's lock when neither the caller nor
#: :data:`TIMEOUT_ENV` says otherwise.
DEFAULT_TIMEOUT = 60.0

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26
_ADVICE = "restore it from a backup or give another --store path"


class StoreLocked(WsnasError):
    """The results store stayed locked by another process for longer than its timeout."""


def store_timeout(timeout: float | None = None) -> float:
    """The lock timeout in seconds: ``timeout``, else :data:`TIMEOUT_ENV`, else the default."""
    what = "the results store's lock timeout"
    if timeout is None:
        text = os.environ.get(TIMEOUT_ENV, "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        what = f"{TIMEOUT_ENV}={text!r}"
        try:
            timeout = float(text)
        except ValueError:
            raise WsnasError(f"{what} is not a number of seconds; give e.g. {TIMEOUT_ENV}=60") from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            math.isfinite(timeout) and timeout > 0):
        raise WsnasError(f"{what} must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _is_lock(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _is_damage(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return "malformed" in str(exc) or "not a database" in str(exc)


def _translatable(exc: BaseException) -> bool:
    """SQLite's errors about the file (locks, damage, I/O); not those of a wrong statement."""
    return isinstance(exc, (sqlite3.OperationalError, sqlite3.DataError)) or type(exc) is sqlite3.DatabaseError


class StoreConnection(sqlite3.Connection):
    """An SQLite connection whose statements retry on another process's lock and whose errors
    are one-line :class:`~wsnas.core.errors.WsnasError`\\ s naming the file.

    Made by :func:`sqlite3.connect` (``factory=``); :attr:`store_path` and :attr:`timeout` are
    set right after.
    """

    store_path: str = "?"
    timeout: float = DEFAULT_TIMEOUT

    # -- statements ----------------------------------------------------------------------------

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or StoreCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    def retrying(self, op: Callable[[], _T]) -> _T:
        """``op()``, tried again while another process holds the lock, for :attr:`timeout` s."""
        start = time.monotonic()  # each try first waits in SQLite's busy handler (connect's timeout)
        pause = 0.05
        while True:
            try:
                return op()
            except sqlite3.Error as exc:
                if not _translatable(exc):
                    raise
                waited = time.monotonic() - start
                if not _is_lock(exc) or waited + 1e-3 >= self.timeout:
                    raise self.failure(exc, waited=waited) from None
            time.sleep(min(pause, max(self.timeout - waited, 0.0)))
            pause = min(pause * 2, 2.0)

    def guarded(self, op: Callable[[], _T]) -> _T:
        """``op()`` (reading rows of a statement already run) with its errors as one line."""
        try:
            return op()
        except sqlite3.Error as exc:
            if not _translatable(exc):
                raise
            raise self.failure(exc) from None

    # -- errors --------------------------------------------------------------------------------

    def failure(self, exc: sqlite3.Error, *, waited: float = 0.0) -> WsnasError | OSError:
        """The one-line error for SQLite's ``exc`` on this store (a full disk: the OSError of one,
        naming the store, which the command line reports in one line)."""
        full = full_disk(exc, Path(self.store_path))
        if full is not None:
            return full
        name, message = repr(self.store_path), str(exc)
        if _is_lock(exc):
            return StoreLocked(
                f"results store {name} is locked by another process and stayed locked through {waited:.1f} s "
                f"of retries ({message}); everything written before is kept and a rerun continues from it: "
                f"rerun when the other process is done, or wait longer with {TIMEOUT_ENV}=SECONDS")
        if message.startswith("no such table:"):
            table = message.partition(":")[2].strip()
            return WsnasError(f"results store {name} is damaged: its table {table!r} is missing; {_ADVICE}")
        if _is_damage(exc):
            return WsnasError(f"results store {name} is damaged ({message}); PRAGMA quick_check: "
                              f"{self.quick_check()}; {_ADVICE}")
        return WsnasError(f"cannot use the results store {name}: {message}")

    def quick_check(self, limit: int = 3) -> str:
        """What ``PRAGMA quick_check`` finds (at most ``limit`` problems), as one line."""
        try:
            found = [str(r[0]) for r in sqlite3.Connection.execute(self, f"PRAGMA quick_check({int(limit)})")]
        except sqlite3.Error as exc:
            return f"could not complete ({exc})"
        text = "; ".join(" ".join(line.split()) for line in found) or "no result"
        return text if len(text) <= 400 else text[:400] + " ..."


class StoreCursor(sqlite3.Cursor):
    """A cursor of a :class:`StoreConnection`: statements retried on a lock, errors as one line."""

    connection: StoreConnection

    def execute(self, sql: str, parameters: Any = (), /) -> StoreCursor:  # type: ignore[override]
        return self.connection.retrying(lambda: sqlite3.Cursor.execute(self, sql, parameters))

    def executemany(self, sql: str, parameters: Any, /) -> StoreCursor:  # type: ignore[override]
        rows = list(parameters)  # kept in memory, so a retry writes them all
        return self.connection.retrying(lambda: sqlite3.Cursor.executemany(self, sql, rows))

    def fetchone(self) -> Any:
        return self.connection.guarded(lambda: sqlite3.Cursor.fetchone(self))

    def fetchmany(self, size: int | None = None) -> list:
        size = self.arraysize if size is None else size
        return self.connection.guarded(lambda: sqlite3.Cursor.fetchmany(self, size))

    def fetchall(self) -> list:
        return self.connection.guarded(lambda: sqlite3.Cursor.fetchall(self))

    def __next__(self) -> Any:
        return self.connection.guarded(lambda: sqlite3.Cursor.__next__(self))


def _connect(path: Path, *, read_only: bool, timeout: float) -> StoreConnection:
    if read_only:  # never writes the file: no schema, no journal change (SQLite's own -shm aside)
        target = "file:" + urllib.parse.quote(str(path.resolve()), safe="/") + "?mode=ro"
    else:
        target = str(path)
    conn = sqlite3.connect(target, timeout=min(timeout, 1.0), isolation_level=None, uri=read_only,
                           factory=StoreConnection)
    conn.store_path, conn.timeout = str(path), timeout
    conn.row_factory = sqlite3.Row
    return conn


def full_disk(exc: sqlite3.Error, path: Path) -> OSError | None:
    """SQLite's "database or disk is full" as the OSError of a full disk naming the store, else None."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or str(exc) == "database or disk is full":
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return None


class StoreBase:
    """An open results store: the file checked, configured and at the current schema version.

    Arguments as for :class:`wsnas.store.Store`.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, read_only: bool = False,
                 timeout: float | None = None):
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self.timeout = store_timeout(timeout)
        self._conn: StoreConnection | None = None
        self._numeric: dict[str, frozenset[str]] = {}
        name = str(self.path)
        if self.path.is_dir():
            raise WsnasError(f"results store {name!r} is a directory; give a file such as "
                             f"{str(self.path / 'wsnas.db')!r}")
        if self.path.exists():
            check_header(self.path)
        elif not create or read_only:
            raise WsnasError(f"results store {name!r} does not exist; give the path of an existing "
                             "store with --store PATH")
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise WsnasError(f"cannot create the results store {name!r}: "
                                 f"{exc.strerror}") from None
        try:
            self._open()
        except sqlite3.Error as exc:
            failure = self._conn.failure(exc) if self._conn is not None and _translatable(exc) else None
            self.close()
            full = full_disk(exc, self.path)
            if full is not None:
                raise full from exc
            if failure is not None:
                raise failure from None
            if _translatable(exc):
                raise WsnasError(f"cannot open the results store {name!r}: {exc}; it is not a readable "
                                 "SQLite database, or it is locked or read-only") from None
            raise
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self._conn = conn = _connect(self.path, read_only=self.read_only, timeout=self.timeout)
        # refuse another program's database before anything changes it (the journal mode included)
        version = read_schema_version(conn, self.path)
        if self.read_only:
            if version is None:
                raise WsnasError(f"results store {str(self.path)!r} is empty: it has no wsnas tables yet (a "
                                 "command that records results creates them); nothing to read")
            if version < SCHEMA_VERSION:  # an older wsnas store is brought forward, then read
                conn.close()
                self._conn = None
                StoreBase(self.path, create=False, timeout=self.timeout).close()
                self._conn = conn = _connect(self.path, read_only=True, timeout=self.timeout)
        else:
            configure(conn, self.path)
            open_schema(conn, self.path)
        check_tables(conn, self.path)

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self: _S) -> _S:
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
    def conn(self) -> StoreConnection:
        """The open SQLite connection (autocommit; writes go through ``_write``)."""
        if self._conn is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (:func:`wsnas.store.schema.transaction`): commits when the block
        ends, rolls back if it raises; SQLite's errors (the commit's too) as one line."""
        if self.read_only:
            raise WsnasError(f"results store {str(self.path)!r} is open read-only; this command cannot "
                             "write it")
        conn = self.conn
        try:
            with transaction(conn):
                yield conn
        except sqlite3.Error as exc:
            if not _translatable(exc):
                raise
            raise conn.failure(exc) from None

    # -- rows ----------------------------------------------------------------------------------

    def _numeric_columns(self, table: str) -> frozenset[str]:
        """The columns of ``table`` declared INTEGER or REAL."""
        if table not in self._numeric:
            self._numeric[table] = frozenset(
                r["name"] for r in self.conn.execute(f'PRAGMA table_info("{table}")')
                if str(r["type"]).upper() in ("INTEGER", "REAL"))
        return self._numeric[table]

    def _rows(self, table: str, sql: str, params: Any = (), *, aliases: dict[str, str] | None = None,
              key: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The rows of a query on ``table`` as dicts, every numeric column checked to hold a number.

        ``aliases`` maps a result column to the table column it reads (``value`` -> ``test_acc``);
        ``key`` names the columns that identify a row in an error message.
        """
        aliases = aliases or {}
        numeric = self._numeric_columns(table)
        out = []
        for r in self.conn.execute(sql, params):
            row = dict(r)
            for column, value in row.items():
                if (value is None or isinstance(value, (int, float))
                        or aliases.get(column, column) not in numeric):
                    continue
                where = ", ".join(f"{k} {row[k]!r}" for k in key if k in row) or "a row"
                raise WsnasError(
                    f"results store {str(self.path)!r} is damaged: table {table}, column "
                    f"{aliases.get(column, column)}, row with {where} holds {value!r}, not a number; "
                    f"{_ADVICE}")
            out.append(row)
        return out

    # -- runs ----------------------------------------------------------------------------------

    def _run_dict(self, row: sqlite3.Row | dict) -> dict[str, Any]:
        out = dict(row)
        try:
            out["config"] = json.loads(out.pop("config_json"))
        except (TypeError, json.JSONDecodeError):
            raise WsnasError(f"results store {str(self.path)!r} is damaged: table runs, column config_json, "
                             f"row with run_id {out.get('run_id')!r} is not JSON; {_ADVICE}") from None
        command = out.pop("command_json", None)
        try:
            out["command"] = None if command is None else json.loads(command)
        except (TypeError, json.JSONDecodeError):
            raise WsnasError(f"results store {str(self.path)!r} is damaged: table runs, column command_json, "
                             f"row with run_id {out.get('run_id')!r} is not JSON; {_ADVICE}") from None
        if out["command"] is not None and not (isinstance(out["command"], dict)
                                               and isinstance(out["command"].get("command"), str)
                                               and isinstance(out["command"].get("options"), dict)):
            raise WsnasError(f"results store {str(self.path)!r} is damaged: table runs, column command_json, "
                             f"row with run_id {out.get('run_id')!r} is not a command and its options; {_ADVICE}")
        return out

    def _require_run(self, run_id: str) -> None:
        if self.conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
            return
        known = [r[0] for r in self.conn.execute(
            "SELECT run_id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 6")]
        hint = (f"known runs: {', '.join(known[:5])}{', ...' if len(known) > 5 else ''}"
                if known else "the store has no runs")
        raise WsnasError(f"run {run_id!r} is not in the results store {str(self.path)!r}; {hint}")
