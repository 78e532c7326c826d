"""The store's exports: a table, or a run's predictions in the wide layout, to a CSV file.

Files are written atomically (a temporary file renamed into place): a failed export leaves no
partial file, and an export never replaces the store itself or its ``-wal``/``-shm`` files.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wsnas.core.errors import WsnasError
from wsnas.core.files import atomic_write
from wsnas.store.reader import StoreReader, where_clause


def _write_csv(path: str | os.PathLike, header: list[Any], rows: Iterable[Iterable[Any]], *,
               store: Path) -> int:
    """Write a CSV atomically (:func:`wsnas.core.files.atomic_write`), never over ``store``;
    returns the data rows."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise WsnasError(f"output {str(target)!r} is a directory; give a file name such as "
                         f"{str(target / 'out.csv')!r}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WsnasError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    count = 0
    with atomic_write(target, "w", newline="", stores=[store]) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


class StoreExports(StoreReader):
    """The CSV exports of a store (mixed into :class:`wsnas.store.Store`)."""

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
            where, params = where_clause(run_id=run_id)
        rows = self.conn.execute(
            f"SELECT {', '.join(columns)} FROM \"{table}\"{where} ORDER BY rowid", params)
        return _write_csv(path, columns, (tuple(r) for r in rows), store=self.path)

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
        return _write_csv(path, ["", *indices], body, store=self.path)
