"""The results store: one SQLite file, the single source of truth for results.

Everything wsnas measures lands here: runs and their configs, ground-truth trainings, and the
supernet's predictions at every checkpoint. Metrics and reports read only this file.

Guarantees:

* **One writer.** Only the driver process writes (workers send results back to it). SQLite runs
  in WAL mode, so readers (``wsnas store info``, a report) never block the writer.
* **Crash safety.** Every write is one transaction with ``synchronous=FULL``: a kill or a power
  cut mid-write leaves the whole batch or none of it, never half a row.
* **Locks and damage** (``base.py``). A write that finds the file locked by another process
  retries with backoff for ``timeout`` seconds before one line (:class:`StoreLocked`); a
  damaged file (a missing table, "database disk image is malformed", text in a numeric
  column) is one line naming the file and what is wrong, from whichever command met it.
* **Read-only opens.** ``Store(path, read_only=True)`` (``wsnas store``, ``wsnas report``, a
  store given as ``--truth``) never writes: no schema in an empty file, no journal change in
  another program's database.
* **Idempotence.** Ground truth is keyed by the job's full identity ``(space, arch, dataset,
  seed, epochs, config_hash)``; predictions by ``(run_id, checkpoint, arch)``. A rerun after a
  crash neither loses nor duplicates rows, and :meth:`Store.groundtruth_done` tells it what to
  skip.
* **Versioned schema.** The ``meta`` table records ``schema_version``; files written by an older
  wsnas are upgraded in place by ``schema._MIGRATIONS``; a file from a newer wsnas is refused.

The package: ``schema.py`` (tables, schema version, upgrade steps, opening a file), ``base.py``
(the connection and its write transaction), ``writer.py`` (inserts and upserts with their
validation), ``reader.py`` (queries), ``export.py`` (CSV exports) and ``provenance.py``
(:func:`config_hash`, :func:`code_version`); :class:`Store` combines them.

Typical use::

    with Store("wsnas.db") as store:
        done = store.groundtruth_done("tiny64", "digits", 10, config_hash(config))
        ...
        store.add_groundtruth({"space": "tiny64", "arch": "123", "arch_index": 5, ...})
        rows = store.groundtruth(space="tiny64", dataset="digits")

The ground truth as a ranking is built from these rows in the layer above, by
:func:`wsnas.groundtruth.truth.truth_from_store`; the store imports nothing above it.
"""

from __future__ import annotations

from wsnas.store.base import DEFAULT_TIMEOUT, TIMEOUT_ENV, StoreLocked
from wsnas.store.export import StoreExports
from wsnas.store.provenance import code_version, config_hash
from wsnas.store.schema import ACCURACY_METRICS, RUN_STATUSES, SCHEMA_VERSION
from wsnas.store.writer import StoreWriter

__all__ = ["ACCURACY_METRICS", "DEFAULT_TIMEOUT", "RUN_STATUSES", "SCHEMA_VERSION", "TIMEOUT_ENV", "Store",
           "StoreLocked", "code_version", "config_hash"]


class Store(StoreWriter, StoreExports):
    """A wsnas results store in one SQLite file.

    Args:
        path: the database file. Its parent folders and the file are created when missing.
        create: when False, a missing file is an error instead (for commands that add to an
            existing store).
        read_only: open the file read-only (``mode=ro``), for commands that only read: a
            missing or empty file is an error, nothing is created, and another program's
            database is refused untouched (its journal mode included). A wsnas store of an older
            schema version is still upgraded in place first.
        timeout: seconds to keep retrying while another process holds the lock (default
            ``$WSNAS_STORE_TIMEOUT``, else 60); then :class:`StoreLocked`.

    Use it as a context manager, or call :meth:`close`. One connection per store object; use it
    from the thread that created it.
    """
