"""The connection a store is built on: opening the file, closing it, one write transaction.

:class:`StoreBase` holds the SQLite connection that the readers (``reader.py``), the writer
(``writer.py``) and the exports (``export.py``) share; :class:`wsnas.store.Store` combines them.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from wsnas.core.errors import WsnasError
from wsnas.store.schema import check_header, configure, open_schema, transaction

_S = TypeVar("_S", bound="StoreBase")


def full_disk(exc: sqlite3.Error, path: Path) -> OSError | None:
    """SQLite's "database or disk is full" as the OSError of a full disk naming the store, else None."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or str(exc) == "database or disk is full":
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return None


class StoreBase:
    """An open results store: the file checked, configured and at the current schema version.

    Arguments as for :class:`wsnas.store.Store`.
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
            check_header(self.path)
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
            configure(self._conn, self.path, busy_timeout)
            open_schema(self._conn, self.path)
        except sqlite3.DatabaseError as exc:
            self.close()
            full = full_disk(exc, self.path)
            if full is not None:
                raise full from exc
            raise WsnasError(f"cannot open the results store {name!r}: {exc}; it is not a "
                             "readable SQLite database, or it is locked or read-only") from None
        except BaseException:
            self.close()
            raise

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
    def conn(self) -> sqlite3.Connection:
        """The open SQLite connection (autocommit; writes go through ``_write``)."""
        if self._conn is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (:func:`wsnas.store.schema.transaction`): commits when the block
        ends, rolls back if it raises. A full disk raises the OSError of one (``ENOSPC``, naming
        the store), with nothing of the transaction written."""
        try:
            with transaction(self.conn) as conn:
                yield conn
        except sqlite3.OperationalError as exc:
            full = full_disk(exc, self.path)
            if full is None:
                raise
            raise full from exc

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
