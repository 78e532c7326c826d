"""The store's writer: every insert and upsert, with the validation of its rows.

Rows are validated completely before anything is written, then written in one transaction
(``BEGIN IMMEDIATE``, ``synchronous=FULL``): a batch lands whole or not at all. Accuracies are
fractions in [0, 1]; a wrong field, a missing one, a bad type or an out-of-range value is a
one-line :class:`~wsnas.core.errors.WsnasError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any

from wsnas.core.errors import WsnasError
from wsnas.store.base import StoreBase
from wsnas.store.provenance import canonical_json, code_version, utc_now
from wsnas.store.schema import (
    ACCURACY_METRICS,
    CANDIDATE_COLUMNS,
    CANDIDATE_ORIGINS,
    COST_COLUMNS,
    COST_METRICS,
    GT_COLUMNS,
    GT_FLOATS,
    GT_STATUSES,
    INTERFERENCE_COLUMNS,
    METRIC_COLUMNS,
    PRED_COLUMNS,
    RUN_STATUSES,
    SELECTION_COLUMNS,
    STEP_COLUMNS,
)

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


def _check_run_row(what: str, article: str, row: Any, accepted: Iterable[str], run_id: str) -> None:
    """``row`` is a dict of ``accepted`` fields whose ``run_id`` (if it has one) is ``run_id``."""
    if not isinstance(row, Mapping):
        raise WsnasError(f"{article} {what} row must be a dict, not {type(row).__name__}")
    _unknown_keys(f"{what} row", row, accepted)
    if row.get("run_id", run_id) != run_id:
        raise WsnasError(f"{what} row for run {row['run_id']!r} given to run {run_id!r}")


def _groundtruth_record(row: Mapping[str, Any]) -> tuple:
    """One validated ground-truth row as a tuple in ``GT_COLUMNS`` order."""
    if not isinstance(row, Mapping):
        raise WsnasError(f"a ground-truth row must be a dict, not {type(row).__name__}")
    _unknown_keys("ground-truth row", row, (*GT_COLUMNS, "config"))
    for key in ("space", "arch", "arch_index", "dataset", "seed", "epochs"):
        if key not in row:
            raise WsnasError(f"ground-truth row {dict(row)!r} lacks the field {key!r}")
    if "config" in row:
        canonical = canonical_json(row["config"])
        if "config_json" in row and canonical_json(_parse_config(row["config_json"])) != canonical:
            raise WsnasError("ground-truth row gives both 'config' and a different 'config_json'; "
                             "give one of them")
    elif "config_json" in row:
        canonical = canonical_json(_parse_config(row["config_json"]))
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
        "created_at": row.get("created_at") or utc_now(),
    }
    for key in ACCURACY_METRICS:
        values[key] = _fraction(key, row.get(key))
    for key in GT_FLOATS:
        values[key] = _real(key, row.get(key))
    status = row.get("status") or GT_STATUSES[0]
    if status not in GT_STATUSES:
        raise WsnasError(f"ground-truth status {status!r} is not one of {', '.join(GT_STATUSES)}")
    if status == "diverged":
        measured = [key for key in ACCURACY_METRICS if values[key] is not None]
        if measured:
            raise WsnasError(f"a diverged ground-truth training has no accuracy, but {measured[0]} is "
                             f"{values[measured[0]]!r}")
    values["status"] = status
    return tuple(values[c] for c in GT_COLUMNS)


def _parse_config(text: Any) -> Any:
    if not isinstance(text, str):
        raise WsnasError(f"config_json must be JSON text, not {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WsnasError(f"config_json {text[:60]!r} is not valid JSON ({exc.msg})") from None


def _command_json(command: Mapping[str, Any]) -> str:
    """``{"command": NAME, "options": {...}}`` as JSON text (the options keep their order)."""
    if not (isinstance(command, Mapping) and isinstance(command.get("command"), str)
            and isinstance(command.get("options"), Mapping)):
        raise WsnasError(f"a run's command must be {{'command': NAME, 'options': {{...}}}}, not {command!r}")
    try:
        return json.dumps({"command": command["command"], "options": dict(command["options"])})
    except (TypeError, ValueError) as exc:
        raise WsnasError(f"the options of command {command['command']!r} cannot be stored as JSON: {exc}") from None


def _prediction_record(run_id: str, row: Mapping[str, Any]) -> tuple:
    """One validated prediction row as a tuple in ``PRED_COLUMNS`` order."""
    _check_run_row("prediction", "a", row, PRED_COLUMNS, run_id)
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
        "created_at": row.get("created_at") or utc_now(),
    }
    return tuple(values[c] for c in PRED_COLUMNS)


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


# ----------------------------------------------------------------------------------------------
# The writer
# ----------------------------------------------------------------------------------------------


class StoreWriter(StoreBase):
    """The inserts and upserts of a store (mixed into :class:`wsnas.store.Store`)."""

    # -- runs ----------------------------------------------------------------------------------

    def ensure_run(self, run_id: str, kind: str, config: Mapping[str, Any],
                   seed: int | None = None, *, command: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Create a run, or return it when it already exists with the same kind, config and seed.

        Rerunning a command with the same run id therefore resumes it. A run id that exists
        with another kind, config or seed is an error: results of different configurations
        never mix under one id. ``command`` (``{"command": NAME, "options": {...}}``, the
        command line that creates the run) is stored with a new run, and with an existing one
        that has none; it is no part of the run's identity.

        Returns:
            The run: ``run_id, kind, config (dict), seed, code_version, status, created_at,
            updated_at``.
        """
        run_id = _name("run id", run_id)
        kind = _name("run kind", kind)
        canonical = canonical_json(config)
        seed = _integer("seed", seed, optional=True)
        command_json = None if command is None else _command_json(command)
        with self._write() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                now = utc_now()
                values = {"run_id": run_id, "kind": kind, "config_json": canonical, "seed": seed,
                          "code_version": code_version(), "status": RUN_STATUSES[0], "created_at": now,
                          "updated_at": now}
                if command_json is not None:
                    values["command_json"] = command_json
                conn.execute(f"INSERT INTO runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                             tuple(values.values()))
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
                if command_json is not None and row["command_json"] is None:  # made before commands were kept
                    conn.execute("UPDATE runs SET command_json = ? WHERE run_id = ?", (command_json, run_id))
                    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return self._run_dict(row)

    def set_run_status(self, run_id: str, status: str) -> None:
        """Record a run's status: one of :data:`RUN_STATUSES`."""
        if status not in RUN_STATUSES:
            raise WsnasError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        with self._write() as conn:
            self._require_run(run_id)
            conn.execute("UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?",
                         (status, utc_now(), run_id))

    # -- ground truth --------------------------------------------------------------------------

    _GT_INSERT = (
        f"INSERT INTO groundtruth ({', '.join(GT_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(GT_COLUMNS))}) "
        "ON CONFLICT (space, arch, dataset, seed, epochs, config_hash) DO NOTHING"
    )

    def add_groundtruth(self, row: Mapping[str, Any]) -> bool:
        """Record one from-scratch training; True if new, False if it was already recorded.

        ``row`` holds ``space, arch, arch_index, dataset, seed, epochs``, the training config as
        ``config`` (a dict) or ``config_json`` (its JSON text; ``config_hash`` is derived and, if
        also given, checked), and any of ``valid_acc, valid_loss, test_acc, test_loss,
        train_acc, train_loss, seconds`` (accuracies as fractions in [0, 1]). ``status`` is
        ``done`` (default) or ``diverged``: a training whose loss became NaN or infinite, kept so
        that a rerun skips it, with no accuracy, and never read as ground truth.
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

    # -- predictions ---------------------------------------------------------------------------

    _PRED_UPSERT = (
        f"INSERT INTO predictions ({', '.join(PRED_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(PRED_COLUMNS))}) "
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

    def _replace_rows(self, table: str, columns: tuple[str, ...], records: list[tuple]) -> int:
        """``INSERT OR REPLACE`` validated records into ``table`` in one transaction; their count."""
        if not records:
            return 0
        with self._write() as conn:
            conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
                             f"VALUES ({', '.join('?' * len(columns))})", records)
        return len(records)

    # -- training steps ------------------------------------------------------------------------

    def add_train_steps(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record which child each mini-batch trained (``step``, ``epoch``, ``arch``,
        ``arch_index``, ``loss``, ``accuracy``) in one transaction; a repeated step is replaced."""
        self._require_run(run_id)
        records = []
        for row in rows:
            _unknown_keys("train step row", row, STEP_COLUMNS)
            records.append((
                run_id, _integer("step", row.get("step"), minimum=0),
                _integer("epoch", row.get("epoch"), minimum=0),
                None if row.get("arch") is None else _name("architecture", row["arch"]),
                _integer("arch_index", row.get("arch_index"), optional=True, minimum=0),
                _real("loss", row.get("loss")), _fraction("accuracy", row.get("accuracy")),
            ))
        return self._replace_rows("train_steps", STEP_COLUMNS, records)

    # -- interference --------------------------------------------------------------------------

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
            _check_run_row("interference", "an", row, INTERFERENCE_COLUMNS, run_id)
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
        return self._replace_rows("interference", INTERFERENCE_COLUMNS, records)

    # -- run metrics ---------------------------------------------------------------------------

    def add_run_metrics(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record named per-step scalars of a run (``name``, ``step``, ``epoch``, ``value``) in
        one transaction; a repeated (name, step) is replaced. NaN is stored as NULL."""
        self._require_run(run_id)
        records = []
        for row in rows:
            _check_run_row("run-metric", "a", row, METRIC_COLUMNS, run_id)
            for key in ("name", "step"):
                if key not in row:
                    raise WsnasError(f"run-metric row {dict(row)!r} lacks the field {key!r}")
            records.append((
                run_id, _name("metric name", row["name"]), _integer("step", row["step"], minimum=0),
                _integer("epoch", row.get("epoch"), optional=True, minimum=0),
                _finite_or_none("value", row.get("value")),
            ))
        return self._replace_rows("run_metrics", METRIC_COLUMNS, records)

    # -- selections ----------------------------------------------------------------------------

    def add_selection(self, run_id: str, row: Mapping[str, Any]) -> None:
        """Record the architecture ``method`` selected after search run ``run_id`` (replaces an
        earlier one): ``arch``, ``arch_index``, ``truth`` (its ground-truth accuracy, if known),
        ``truth_rank`` (1 = best), ``truth_source`` and ``seconds`` (the selection's time)."""
        self._require_run(run_id)
        _unknown_keys("selection row", row, SELECTION_COLUMNS)
        record = (run_id, _name("selection method", row.get("method")), _name("architecture", row.get("arch")),
                  _integer("arch_index", row.get("arch_index"), optional=True, minimum=0),
                  _finite_or_none("truth", row.get("truth")),
                  _integer("truth_rank", row.get("truth_rank"), optional=True, minimum=1),
                  None if row.get("truth_source") is None else str(row["truth_source"]),
                  _finite_or_none("seconds", row.get("seconds")), utc_now())
        self._replace_rows("selections", SELECTION_COLUMNS, [record])

    # -- search candidates ---------------------------------------------------------------------

    def add_candidates(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Record architectures a search evaluated, in one transaction; returns the rows written.

        Each row holds ``arch``, ``generation``, ``position`` (the evaluation order within the
        run, from 0), ``origin`` (one of ``random, mutation, crossover, exhaustive``) and any of
        ``arch_index``, ``score`` (its accuracy with shared weights, a fraction), ``loss``,
        ``params``, ``mflops``, ``latency_ms``, ``on_front`` (bool) and ``seconds``. A row with
        the same (run, arch) or (run, position) as a stored one replaces it.
        """
        self._require_run(run_id)
        records = []
        for row in rows:
            _check_run_row("candidate", "a", row, CANDIDATE_COLUMNS, run_id)
            for key in ("arch", "generation", "position", "origin"):
                if key not in row:
                    raise WsnasError(f"candidate row {dict(row)!r} lacks the field {key!r}")
            if row["origin"] not in CANDIDATE_ORIGINS:
                raise WsnasError(f"candidate origin {row['origin']!r} is not one of {', '.join(CANDIDATE_ORIGINS)}")
            records.append((
                run_id, _name("architecture", row["arch"]),
                _integer("arch_index", row.get("arch_index"), optional=True, minimum=0),
                _integer("generation", row["generation"], minimum=0),
                _integer("position", row["position"], minimum=0), row["origin"],
                _fraction("score", row.get("score")), _finite_or_none("loss", row.get("loss")),
                _integer("params", row.get("params"), optional=True, minimum=0),
                _finite_or_none("mflops", row.get("mflops")), _finite_or_none("latency_ms", row.get("latency_ms")),
                int(bool(row.get("on_front", False))), _finite_or_none("seconds", row.get("seconds")),
                row.get("created_at") or utc_now(),
            ))
        return self._replace_rows("candidates", CANDIDATE_COLUMNS, records)

    def set_front(self, run_id: str, archs: Iterable[str]) -> int:
        """Mark exactly ``archs`` as the Pareto front of search run ``run_id`` (``on_front``),
        every other candidate of the run as off it; returns how many are on it."""
        self._require_run(run_id)
        front = sorted(set(archs))
        with self._write() as conn:
            conn.execute("UPDATE candidates SET on_front = 0 WHERE run_id = ?", (run_id,))
            conn.executemany("UPDATE candidates SET on_front = 1 WHERE run_id = ? AND arch = ?",
                             [(run_id, a) for a in front])
            n = conn.execute("SELECT COUNT(*) FROM candidates WHERE run_id = ? AND on_front = 1",
                             (run_id,)).fetchone()[0]
        if n != len(front):
            raise WsnasError(f"{len(front) - n} architecture(s) of the front are not candidates of run {run_id!r}")
        return n

    # -- architecture costs ----------------------------------------------------------------------

    def add_arch_costs(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Cache costs of architectures: ``key`` (the hash of what the value depends on),
        ``arch``, ``metric`` (``params``, ``mflops`` or ``latency_ms``), ``value`` and ``config``
        (a dict: those settings) or ``config_json``; a repeated (key, arch, metric) is replaced."""
        records = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise WsnasError(f"a cost row must be a dict, not {type(row).__name__}")
            _unknown_keys("cost row", row, (*COST_COLUMNS, "config"))
            if row.get("metric") not in COST_METRICS:
                raise WsnasError(f"cost metric {row.get('metric')!r} is not one of {', '.join(COST_METRICS)}")
            value = _real("value", row.get("value"))
            if value is None or not math.isfinite(value) or value < 0:
                raise WsnasError(f"cost {row['metric']} {row.get('value')!r} must be a finite non-negative number")
            config = row["config"] if "config" in row else _parse_config(row.get("config_json"))
            records.append((_name("cost key", row.get("key")), _name("architecture", row.get("arch")), row["metric"],
                            value, canonical_json(config), row.get("created_at") or utc_now()))
        return self._replace_rows("arch_costs", COST_COLUMNS, records)
