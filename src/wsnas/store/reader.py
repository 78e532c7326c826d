"""The store's readers: runs, ground truth, predictions and the per-step tables, as plain rows.

Every reader is a query on the open connection; none writes. Each row is checked as it is read
(``StoreBase._rows``): a numeric column that holds anything but a number is a one-line error
naming the table, the column and the row. Ground-truth rows are turned into a ranking by
:func:`wsnas.groundtruth.truth.truth_from_store`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.store.base import StoreBase
from wsnas.store.schema import (
    ACCURACY_METRICS,
    CANDIDATE_COLUMNS,
    GT_COLUMNS,
    INTERFERENCE_COLUMNS,
    METRIC_COLUMNS,
    PRED_COLUMNS,
    PRED_METRICS,
    SELECTION_COLUMNS,
    STEP_COLUMNS,
)


def where_clause(**filters: Any) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or ``""``) that keeps rows equal to every filter that is not None."""
    used = {k: v for k, v in filters.items() if v is not None}
    if not used:
        return "", []
    return " WHERE " + " AND ".join(f"{k} = ?" for k in used), list(used.values())


# the columns that name a row in a message about a damaged value
RUN_KEY = ("run_id",)
GT_KEY = ("space", "arch", "dataset", "seed", "epochs")
PRED_KEY = ("run_id", "checkpoint", "arch")


class StoreReader(StoreBase):
    """The queries of a store (mixed into :class:`wsnas.store.Store`)."""

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (always the current one once opened)."""
        return int(self.meta()["schema_version"])

    def meta(self) -> dict[str, str]:
        """The ``meta`` table: ``schema_version``, ``created_by``, ``created_at``, ..."""
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    # -- runs ----------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run with this id (as :meth:`ensure_run` returns it), or None."""
        rows = self._rows("runs", "SELECT * FROM runs WHERE run_id = ?", (run_id,), key=RUN_KEY)
        return self._run_dict(rows[0]) if rows else None

    def list_runs(self, kind: str | None = None) -> list[dict[str, Any]]:
        """All runs, or those of one kind, oldest first."""
        where, params = where_clause(kind=kind)
        rows = self._rows("runs", f"SELECT * FROM runs{where} ORDER BY created_at, rowid", params, key=RUN_KEY)
        return [self._run_dict(r) for r in rows]

    # -- ground truth --------------------------------------------------------------------------

    def groundtruth_done(self, space: str, dataset: str, epochs: int,
                         config_hash: str) -> set[tuple[str, int]]:
        """The ``(arch, seed)`` pairs already recorded for this space, dataset and config (those that
        diverged included: a rerun does not train them again)."""
        rows = self._rows(
            "groundtruth", "SELECT arch, seed FROM groundtruth WHERE space = ? AND dataset = ? AND epochs = ? "
            "AND config_hash = ?", (space, dataset, epochs, config_hash), key=GT_KEY)
        return {(r["arch"], int(r["seed"])) for r in rows}

    def groundtruth(self, space: str | None = None, dataset: str | None = None,
                    config_hash: str | None = None, epochs: int | None = None
                    ) -> list[dict[str, Any]]:
        """Ground-truth rows (all columns), optionally filtered, by config then arch_index."""
        where, params = where_clause(space=space, dataset=dataset, config_hash=config_hash,
                               epochs=epochs)
        return self._rows(
            "groundtruth", f"SELECT {', '.join(GT_COLUMNS)} FROM groundtruth{where} "
            "ORDER BY space, dataset, config_hash, epochs, arch_index, arch, seed", params, key=GT_KEY)

    def groundtruth_summary(self, space: str | None = None, dataset: str | None = None,
                            config_hash: str | None = None, epochs: int | None = None
                            ) -> list[dict[str, Any]]:
        """One entry per (space, dataset, config_hash, epochs): the archs and seeds measured
        (``archs``, ``seeds``: rows that did not diverge), ``rows`` and ``diverged`` rows."""
        where, params = where_clause(space=space, dataset=dataset, config_hash=config_hash,
                               epochs=epochs)
        rows = self.conn.execute(
            "SELECT space, dataset, config_hash, epochs, "
            "COUNT(DISTINCT CASE WHEN status = 'done' THEN arch END) AS archs, "
            "COUNT(DISTINCT CASE WHEN status = 'done' THEN seed END) AS seeds, COUNT(*) AS rows, "
            f"SUM(status = 'diverged') AS diverged FROM groundtruth{where} "
            "GROUP BY space, dataset, config_hash, epochs "
            "ORDER BY space, dataset, config_hash, epochs", params)
        return [dict(r) for r in rows]

    def groundtruth_values(self, metric: str, space: str | None = None, dataset: str | None = None,
                           config_hash: str | None = None, epochs: int | None = None
                           ) -> list[dict[str, Any]]:
        """Every stored value of one accuracy ``metric`` as ``arch, arch_index, seed, value``,
        optionally filtered, by arch_index, arch then seed; rows without a value and trainings
        that diverged are left out."""
        if metric not in ACCURACY_METRICS:
            raise WsnasError(f"ground-truth metric {metric!r} is not one of "
                             f"{', '.join(ACCURACY_METRICS)}")
        where, params = where_clause(space=space, dataset=dataset, config_hash=config_hash,
                               epochs=epochs)
        where += " AND" if where else " WHERE"
        return self._rows(
            "groundtruth", f"SELECT arch, arch_index, seed, {metric} AS value FROM groundtruth{where} "
            f"{metric} IS NOT NULL AND status = 'done' ORDER BY arch_index, arch, seed", params,
            aliases={"value": metric}, key=GT_KEY)

    # -- predictions ---------------------------------------------------------------------------

    def predictions(self, run_id: str, checkpoint: str | None = None) -> list[dict[str, Any]]:
        """A run's prediction rows (all columns), optionally of one checkpoint, as inserted."""
        self._require_run(run_id)
        where, params = where_clause(run_id=run_id, checkpoint=checkpoint)
        return self._rows("predictions", f"SELECT {', '.join(PRED_COLUMNS)} FROM predictions{where} ORDER BY rowid",
                          params, key=PRED_KEY)

    def checkpoints(self, run_id: str) -> list[str]:
        """A run's checkpoint labels in the order they were first recorded."""
        self._require_run(run_id)
        rows = self.conn.execute(
            "SELECT checkpoint FROM predictions WHERE run_id = ? GROUP BY checkpoint "
            "ORDER BY MIN(rowid)", (run_id,))
        return [r[0] for r in rows]

    def _matrix(self, run_id: str, metric: str) -> tuple[list[str], list[str], list[int],
                                                         np.ndarray]:
        if metric not in PRED_METRICS:
            raise WsnasError(f"prediction metric {metric!r} is not one of "
                             f"{', '.join(PRED_METRICS)}")
        labels = self.checkpoints(run_id)
        if not labels:
            raise WsnasError(f"run {run_id!r} in {str(self.path)!r} has no predictions yet")
        columns = self._rows(
            "predictions", "SELECT arch, MIN(arch_index) AS arch_index FROM predictions WHERE run_id = ? "
            "GROUP BY arch ORDER BY arch_index, arch", (run_id,), key=PRED_KEY)
        archs = [r["arch"] for r in columns]
        indices = [int(r["arch_index"]) for r in columns]
        row_of = {c: i for i, c in enumerate(labels)}
        col_of = {a: j for j, a in enumerate(archs)}
        matrix = np.full((len(labels), len(archs)), np.nan)
        for r in self._rows(
                "predictions", f"SELECT run_id, checkpoint, arch, {metric} AS value FROM predictions "
                "WHERE run_id = ?", (run_id,), aliases={"value": metric}, key=PRED_KEY):
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

    # -- training steps ------------------------------------------------------------------------

    def train_steps(self, run_id: str) -> list[dict[str, Any]]:
        """A run's training steps in step order."""
        self._require_run(run_id)
        return self._rows("train_steps", f"SELECT {', '.join(STEP_COLUMNS)} FROM train_steps WHERE run_id = ? "
                          "ORDER BY step", (run_id,), key=("run_id", "step"))

    # -- interference --------------------------------------------------------------------------

    def interference(self, run_id: str) -> list[dict[str, Any]]:
        """A run's interference rows by step then other_index (NULL values read back as None)."""
        self._require_run(run_id)
        return self._rows("interference", f"SELECT {', '.join(INTERFERENCE_COLUMNS)} FROM interference "
                          "WHERE run_id = ? ORDER BY step, other_index", (run_id,),
                          key=("run_id", "step", "other_index"))

    # -- run metrics ---------------------------------------------------------------------------

    def run_metrics(self, run_id: str, name: str | None = None) -> list[dict[str, Any]]:
        """A run's metric rows (all names, or one), by name then step."""
        self._require_run(run_id)
        where, params = where_clause(run_id=run_id, name=name)
        return self._rows("run_metrics", f"SELECT {', '.join(METRIC_COLUMNS)} FROM run_metrics{where} "
                          "ORDER BY name, step", params, key=("run_id", "name", "step"))

    # -- selections ----------------------------------------------------------------------------

    def selections(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Selections of one search run, or of all, by run then method."""
        where, params = where_clause(run_id=run_id)
        return self._rows("selections", f"SELECT {', '.join(SELECTION_COLUMNS)} FROM selections{where} "
                          "ORDER BY run_id, method", params, key=("run_id", "method"))

    # -- search candidates and architecture costs -----------------------------------------------

    def candidates(self, run_id: str) -> list[dict[str, Any]]:
        """The candidates of one search run in evaluation order (``on_front`` as a bool)."""
        self._require_run(run_id)
        rows = self.conn.execute(
            f"SELECT {', '.join(CANDIDATE_COLUMNS)} FROM candidates WHERE run_id = ? ORDER BY position", (run_id,))
        return [{**dict(r), "on_front": bool(r["on_front"])} for r in rows]

    def arch_costs(self, key: str) -> dict[str, dict[str, float]]:
        """The cached costs under ``key``: architecture -> metric -> value."""
        out: dict[str, dict[str, float]] = {}
        for r in self.conn.execute("SELECT arch, metric, value FROM arch_costs WHERE key = ?", (key,)):
            out.setdefault(r["arch"], {})[r["metric"]] = float(r["value"])
        return out

    # -- generic -------------------------------------------------------------------------------

    def tables(self) -> dict[str, int]:
        """Every results table (not ``meta``) with its row count, in creation order."""
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta' "
            "AND substr(name, 1, 7) != 'sqlite_' ORDER BY rowid")]
        return {n: self.conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}

    def overview(self) -> dict[str, Any]:
        """The whole store at a glance (what ``wsnas store info`` shows).

        ``path`` (resolved), ``schema_version``, ``meta`` (:meth:`meta`), ``tables`` (each with its
        row count, :meth:`tables`), ``groundtruth`` (the ground-truth sets,
        :meth:`groundtruth_summary`) and ``runs`` (:meth:`list_runs`).
        """
        return {"path": self.path.resolve(), "schema_version": self.schema_version, "meta": self.meta(),
                "tables": self.tables(), "groundtruth": self.groundtruth_summary(), "runs": self.list_runs()}
