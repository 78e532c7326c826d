"""Tests of the SQLite results store and the ``wsnas store`` command."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import wsnas
import wsnas.store.schema as store_schema
from wsnas import cli
from wsnas.core.errors import WsnasError
from wsnas.store import SCHEMA_VERSION, Store, code_version, config_hash

CONFIG = {"lr": 0.1, "epochs": 3, "data": {"name": "digits", "split_seed": 0}}
HASH = config_hash(CONFIG)


def gt_row(arch: str, index: int, seed: int, test_acc: float, **extra) -> dict:
    row = {"space": "tiny64", "arch": arch, "arch_index": index, "dataset": "digits",
           "seed": seed, "epochs": 3, "config": CONFIG, "test_acc": test_acc,
           "valid_acc": test_acc / 2, "test_loss": 1.0 - test_acc, "seconds": 1.5}
    row.update(extra)
    return row


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "wsnas.db") as s:
        yield s


# ----------------------------------------------------------------------------- opening, schema


def test_new_store_creates_folders_file_and_schema(tmp_path):
    path = tmp_path / "a" / "b" / "results.db"
    with Store(path) as s:
        assert path.is_file()
        meta = s.meta()
        assert meta["schema_version"] == str(SCHEMA_VERSION) == "3"
        assert meta["created_by"] == f"wsnas {code_version()}"
        assert s.schema_version == 3
        assert s.tables() == {"runs": 0, "groundtruth": 0, "predictions": 0, "train_steps": 0,
                              "interference": 0, "run_metrics": 0, "selections": 0}
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert s.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    with pytest.raises(RuntimeError, match="closed"):
        s.tables()


def test_reopening_keeps_data_and_meta(tmp_path):
    path = tmp_path / "wsnas.db"
    with Store(path) as s:
        s.add_groundtruth(gt_row("111", 0, 0, 0.5))
        created = s.meta()["created_at"]
    with Store(path, create=False) as s:
        assert s.meta()["created_at"] == created
        assert s.tables()["groundtruth"] == 1


def test_create_false_refuses_a_missing_file_without_creating_it(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(WsnasError, match="missing.db.*does not exist"):
        Store(path, create=False)
    assert not path.exists()


def test_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(WsnasError) as info:
        Store(path)
    message = str(info.value)
    assert "future.db" in message and "99" in message and f"version {SCHEMA_VERSION}" in message
    assert "\n" not in message


def test_non_sqlite_file_is_refused_by_name(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 20)
    with pytest.raises(WsnasError, match=r"notes\.txt.*not an SQLite database"):
        Store(path)
    assert path.read_text().startswith("these are my notes")  # untouched


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    conn.close()
    with pytest.raises(WsnasError, match=r"other\.db.*not a wsnas results store.*customers"):
        Store(path)


@pytest.mark.parametrize("kind", ["zero-bytes", "sqlite-without-tables"])
def test_empty_existing_file_is_initialised(tmp_path, kind):
    path = tmp_path / "empty.db"
    if kind == "zero-bytes":
        path.write_bytes(b"")
    else:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE scratch (x)")
        conn.execute("DROP TABLE scratch")
        conn.commit()
        conn.close()
        assert path.read_bytes().startswith(b"SQLite format 3\x00")
    with Store(path, create=False) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert set(s.tables()) == {"runs", "groundtruth", "predictions", "train_steps", "interference",
                                   "run_metrics", "selections"}


def test_older_file_is_upgraded_in_place(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    with Store(path) as s:
        s.add_groundtruth(gt_row("111", 0, 0, 0.5))
    step = ("CREATE TABLE notes (run_id TEXT REFERENCES runs (run_id), text TEXT)",)
    monkeypatch.setattr(store_schema, "_MIGRATIONS", [*store_schema._MIGRATIONS, step])
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION + 1
        assert s.tables() == {"runs": 0, "groundtruth": 1, "predictions": 0, "train_steps": 0,
                              "interference": 0, "run_metrics": 0, "selections": 0, "notes": 0}
        assert "upgraded_by" in s.meta()


# ----------------------------------------------------------------------------- configs, versions


def test_config_hash_is_stable_and_sensitive():
    assert HASH == config_hash({"epochs": 3, "data": {"split_seed": 0, "name": "digits"},
                                "lr": 0.1})
    assert len(HASH) == 16 and int(HASH, 16) >= 0
    assert config_hash({**CONFIG, "lr": 0.2}) != HASH
    assert config_hash({"a": 1}) != config_hash({"a": 1.0})
    assert config_hash({"root": Path("/data")}) == config_hash({"root": "/data"})
    assert config_hash({"n": np.int64(3)}) == config_hash({"n": 3})
    with pytest.raises(WsnasError, match="JSON"):
        config_hash({"x": object()})
    with pytest.raises(WsnasError, match="JSON"):
        config_hash({"x": float("nan")})


def test_code_version_names_the_package_version_and_is_cached():
    version = code_version()
    assert version == wsnas.__version__ or version.startswith(wsnas.__version__ + "+")
    assert code_version() is version


# ----------------------------------------------------------------------------- runs


def test_runs_round_trip(store):
    run = store.ensure_run("uniform-s0", "supernet", {"strategy": "uniform", "lr": 0.05}, seed=0)
    assert run["run_id"] == "uniform-s0" and run["kind"] == "supernet" and run["seed"] == 0
    assert run["config"] == {"strategy": "uniform", "lr": 0.05}
    assert run["status"] == "created" and run["code_version"] == code_version()
    # idempotent: same id, kind and config (any key order) returns the stored run
    again = store.ensure_run("uniform-s0", "supernet", {"lr": 0.05, "strategy": "uniform"}, 0)
    assert again == run
    assert store.get_run("uniform-s0") == run
    assert store.get_run("nope") is None

    store.ensure_run("gt", "groundtruth", {})
    assert [r["run_id"] for r in store.list_runs()] == ["uniform-s0", "gt"]
    assert [r["run_id"] for r in store.list_runs(kind="groundtruth")] == ["gt"]

    store.set_run_status("uniform-s0", "done")
    assert store.get_run("uniform-s0")["status"] == "done"
    with pytest.raises(WsnasError, match="'finished' is not one of created, running, done"):
        store.set_run_status("uniform-s0", "finished")
    with pytest.raises(WsnasError, match="run 'ghost' is not in the results store"):
        store.set_run_status("ghost", "done")


def test_ensure_run_with_a_different_config_is_refused(store):
    store.ensure_run("r1", "supernet", {"lr": 0.1, "epochs": 10}, seed=1)
    with pytest.raises(WsnasError) as info:
        store.ensure_run("r1", "supernet", {"lr": 0.05, "epochs": 10}, seed=1)
    message = str(info.value)
    assert "'r1'" in message and "lr: 0.1 -> 0.05" in message and "new run id" in message
    with pytest.raises(WsnasError, match="kind 'supernet'"):
        store.ensure_run("r1", "groundtruth", {"lr": 0.1, "epochs": 10}, seed=1)
    with pytest.raises(WsnasError, match="seed 1"):
        store.ensure_run("r1", "supernet", {"lr": 0.1, "epochs": 10}, seed=2)
    assert len(store.list_runs()) == 1


# ----------------------------------------------------------------------------- ground truth


def test_groundtruth_round_trip_and_idempotent_upsert(store):
    assert store.add_groundtruth(gt_row("111", 0, 0, 0.5)) is True
    assert store.add_groundtruth(gt_row("111", 0, 0, 0.9)) is False  # existing row unchanged
    rows = store.groundtruth()
    assert len(rows) == 1
    row = rows[0]
    assert row["test_acc"] == 0.5 and row["valid_acc"] == 0.25 and row["test_loss"] == 0.5
    assert row["train_acc"] is None and row["seconds"] == 1.5
    assert row["config_hash"] == HASH and json.loads(row["config_json"]) == CONFIG
    assert row["code_version"] == code_version() and row["created_at"].endswith("Z")

    # another seed, epochs or config is another job
    assert store.add_groundtruth(gt_row("111", 0, 1, 0.6)) is True
    assert store.add_groundtruth(gt_row("111", 0, 0, 0.6, epochs=4)) is True
    assert store.add_groundtruth(gt_row("111", 0, 0, 0.6, config={**CONFIG, "lr": 0.2})) is True
    assert len(store.groundtruth()) == 4
    assert len(store.groundtruth(config_hash=HASH)) == 3
    assert len(store.groundtruth(config_hash=HASH, epochs=3)) == 2
    assert store.groundtruth(dataset="cifar10") == []


def test_groundtruth_accepts_config_json_with_a_matching_hash(store):
    # the form the ground-truth runner writes: the hash plus the config's JSON text
    row = gt_row("112", 1, 0, 0.7)
    del row["config"]
    row.update(config_hash=HASH, config_json=json.dumps(CONFIG, sort_keys=True))
    assert store.add_groundtruth(row) is True
    assert store.add_groundtruth(gt_row("112", 1, 0, 0.7)) is False  # same identity
    with pytest.raises(WsnasError, match="config_hash 'deadbeefdeadbeef'.*hashes to"):
        store.add_groundtruth({**row, "config_hash": "deadbeefdeadbeef"})


def test_groundtruth_many_is_one_transaction(store):
    rows = [gt_row(f"a{i}", i, 0, i / 10) for i in range(5)]
    assert store.add_groundtruth_many(rows) == 5
    assert store.add_groundtruth_many(rows + [gt_row("a9", 9, 0, 0.9)]) == 1
    # a row that fails validation: nothing of the batch is written
    bad = [gt_row("b0", 10, 0, 0.5), {**gt_row("b1", 11, 0, 0.5), "test_acc": 93.5}]
    with pytest.raises(WsnasError, match=r"test_acc 93\.5 must be an accuracy as a fraction"):
        store.add_groundtruth_many(bad)
    assert len(store.groundtruth()) == 6
    # a failure inside the database after the first insert: the transaction rolls back
    store.conn.execute("CREATE TEMP TRIGGER fail BEFORE INSERT ON groundtruth "
                       "WHEN NEW.arch = 'b1' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
        store.add_groundtruth_many([gt_row("b0", 10, 0, 0.5), gt_row("b1", 11, 0, 0.5)])
    assert len(store.groundtruth()) == 6
    assert store.add_groundtruth(gt_row("b0", 10, 0, 0.5)) is True  # the store is still usable
    assert store.add_groundtruth_many([]) == 0


@pytest.mark.parametrize(("change", "pattern"), [
    ({"test_accuracy": 0.5}, r"unknown field\(s\) 'test_accuracy'; accepted fields: space"),
    ({"seed": 1.5}, r"seed 1\.5 must be an integer"),
    ({"arch": ""}, "architecture '' must be a non-empty string"),
    ({"config": None}, "config must be a dict"),
])
def test_groundtruth_rows_are_validated(store, change, pattern):
    with pytest.raises(WsnasError, match=pattern):
        store.add_groundtruth({**gt_row("111", 0, 0, 0.5), **change})
    row = gt_row("111", 0, 0, 0.5)
    del row["epochs"]
    with pytest.raises(WsnasError, match="lacks the field 'epochs'"):
        store.add_groundtruth(row)
    assert store.groundtruth() == []


def test_groundtruth_done(store):
    store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.6),
                                gt_row("111", 0, 1, 0.55), gt_row("113", 2, 0, 0.7, epochs=9)])
    assert store.groundtruth_done("tiny64", "digits", 3, HASH) == {
        ("111", 0), ("112", 0), ("111", 1)}
    assert store.groundtruth_done("tiny64", "digits", 9, HASH) == {("113", 0)}
    assert store.groundtruth_done("tiny64", "cifar10", 3, HASH) == set()
    assert store.groundtruth_done("tiny64", "digits", 3, "0" * 16) == set()


def test_truth_table_means_per_seed_and_order(store):
    # inserted out of index order; arch 113 has no seed-1 result
    store.add_groundtruth_many([
        gt_row("113", 7, 0, 0.9), gt_row("111", 2, 0, 0.5), gt_row("112", 4, 0, 0.6),
        gt_row("111", 2, 1, 0.7), gt_row("112", 4, 1, 0.8),
    ])
    table = store.truth_table()
    assert (table.space, table.dataset) == ("tiny64", "digits")
    assert table.archs == ["111", "112", "113"]
    assert table.indices == [2, 4, 7]
    np.testing.assert_allclose(table.accuracy, [0.6, 0.7, 0.9])
    assert sorted(table.per_seed) == [0, 1]
    np.testing.assert_allclose(table.per_seed[0], [0.5, 0.6, 0.9])
    np.testing.assert_allclose(table.per_seed[1], [0.7, 0.8, np.nan])
    assert table.position("112") == 1 and table.position(7) == 2
    assert HASH in table.source and "2 seeds" in table.source

    valid = store.truth_table(metric="valid_acc")
    np.testing.assert_allclose(valid.accuracy, [0.3, 0.35, 0.45])
    with pytest.raises(WsnasError, match="'test_loss' is not one of valid_acc, test_acc"):
        store.truth_table(metric="test_loss")
    with pytest.raises(WsnasError, match="no train_acc values"):
        store.truth_table(metric="train_acc")


def test_truth_table_ambiguity_and_empty_errors(store):
    with pytest.raises(WsnasError, match="no ground truth yet"):
        store.truth_table()
    store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("111", 0, 0, 0.6,
                                                                  dataset="cifar10")])
    with pytest.raises(WsnasError) as info:
        store.truth_table(space="tiny64")
    message = str(info.value)
    assert "2 combinations" in message
    assert f"(tiny64, cifar10, {HASH}, 3 epochs)" in message
    assert f"(tiny64, digits, {HASH}, 3 epochs)" in message
    assert "choose one with the dataset option" in message
    assert store.truth_table(dataset="cifar10").accuracy.tolist() == [0.6]

    with pytest.raises(WsnasError) as info:
        store.truth_table(space="nb201", dataset="cifar10")
    message = str(info.value)
    assert "space='nb201', dataset='cifar10', config_hash=any" in message
    assert "the store has space='tiny64'" in message


# ----------------------------------------------------------------------------- predictions


def pred(checkpoint, arch, index, accuracy, epoch=0, step=0, loss=None):
    return {"checkpoint": checkpoint, "epoch": epoch, "step": step, "arch": arch,
            "arch_index": index, "accuracy": accuracy, "loss": loss}


def test_predictions_round_trip_upsert_and_order(store):
    store.ensure_run("r", "supernet", {"strategy": "uniform"})
    with pytest.raises(WsnasError, match="run 'ghost' is not in the results store.*known runs: r"):
        store.add_predictions("ghost", [pred("epoch:1", "111", 0, 0.5)])
    # checkpoints come back in insertion order, not sorted: epoch:2 before epoch:10
    assert store.add_predictions("r", [pred("epoch:2", "b", 5, 0.5, 2, 20, 1.2),
                                       pred("epoch:2", "a", 2, 0.25, 2, 20, 1.5)]) == 2
    assert store.add_predictions("r", [pred("epoch:10", "a", 2, 0.75, 10, 100)]) == 1
    # upsert: the same (run, checkpoint, arch) replaces the values, keeps one row and its order
    assert store.add_predictions("r", [pred("epoch:2", "b", 5, 0.55, 2, 20, 1.1)]) == 1
    assert store.tables()["predictions"] == 3
    assert store.checkpoints("r") == ["epoch:2", "epoch:10"]
    rows = store.predictions("r", "epoch:2")
    assert [(p["arch"], p["accuracy"], p["loss"]) for p in rows] == [
        ("b", 0.55, 1.1), ("a", 0.25, 1.5)]
    assert rows[0]["run_id"] == "r" and rows[0]["epoch"] == 2 and rows[0]["step"] == 20
    assert len(store.predictions("r")) == 3

    labels, archs, matrix = store.prediction_matrix("r")
    assert labels == ["epoch:2", "epoch:10"] and archs == ["a", "b"]
    np.testing.assert_allclose(matrix, [[0.25, 0.55], [0.75, np.nan]])
    _, _, losses = store.prediction_matrix("r", metric="loss")
    np.testing.assert_allclose(losses, [[1.5, 1.1], [np.nan, np.nan]])
    with pytest.raises(WsnasError, match="'acc' is not one of accuracy, loss"):
        store.prediction_matrix("r", metric="acc")

    store.ensure_run("empty", "supernet", {})
    with pytest.raises(WsnasError, match="'empty'.*has no predictions yet"):
        store.prediction_matrix("empty")
    with pytest.raises(WsnasError, match=r"accuracy 55\.0 must be an accuracy as a fraction"):
        store.add_predictions("r", [pred("epoch:3", "a", 2, 55.0)])
    assert store.checkpoints("r") == ["epoch:2", "epoch:10"]


# ----------------------------------------------------------------------------- export


def read_text(path: Path) -> str:
    with open(path, newline="", encoding="utf-8") as handle:
        return handle.read()


def test_export_csv(store, tmp_path):
    store.add_groundtruth_many([gt_row("112", 1, 0, 0.75), gt_row("111", 0, 0, 0.5)])
    out = tmp_path / "out" / "gt.csv"
    assert store.export_csv("groundtruth", out) == 2
    with open(out, newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(store_schema._GT_COLUMNS)
    first = dict(zip(lines[0], lines[1], strict=True))
    assert first["arch"] == "112" and first["arch_index"] == "1" and first["test_acc"] == "0.75"
    assert first["train_acc"] == "" and first["config_hash"] == HASH
    assert json.loads(first["config_json"]) == CONFIG

    store.ensure_run("r1", "supernet", {"lr": 0.1})
    store.ensure_run("r2", "supernet", {"lr": 0.2})
    store.add_predictions("r1", [pred("epoch:1", "111", 0, 0.5)])
    store.add_predictions("r2", [pred("epoch:1", "111", 0, 0.25), pred("epoch:1", "112", 1, 0.5)])
    assert store.export_csv("predictions", tmp_path / "p.csv") == 3
    assert store.export_csv("predictions", tmp_path / "p2.csv", run_id="r2") == 2
    assert store.export_csv("runs", tmp_path / "runs.csv", run_id="r1") == 1
    header = read_text(tmp_path / "p2.csv").splitlines()[0]
    assert header == "run_id,checkpoint,epoch,step,arch,arch_index,accuracy,loss,created_at"

    with pytest.raises(WsnasError, match="unknown table 'results'.*runs, groundtruth, predictions"):
        store.export_csv("results", tmp_path / "x.csv")
    with pytest.raises(WsnasError, match="'groundtruth' has no run_id column"):
        store.export_csv("groundtruth", tmp_path / "x.csv", run_id="r1")
    with pytest.raises(WsnasError, match="run 'r3' is not in the results store"):
        store.export_csv("predictions", tmp_path / "x.csv", run_id="r3")
    assert not (tmp_path / "x.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_export_prediction_matrix_csv_wide_format(store, tmp_path):
    store.ensure_run("r", "supernet", {})
    store.add_predictions("r", [pred("epoch:2", "b", 5, 0.5), pred("epoch:2", "a", 2, 0.25)])
    store.add_predictions("r", [pred("epoch:10", "a", 2, 0.75)])
    out = tmp_path / "matrix.csv"
    assert store.export_prediction_matrix_csv("r", out) == 2
    assert read_text(out) == ",2,5\nepoch:2,0.25,0.5\nepoch:10,0.75,\n"


# ----------------------------------------------------------------------------- crash safety

CHILD = """
import json, sys, time
from wsnas.store import Store
rows = json.load(open(sys.argv[2]))
with Store(sys.argv[1]) as store:
    for row in rows:
        store.add_groundtruth(row)   # one transaction per row
        time.sleep(0.004)
"""


def crash_rows(n: int) -> list[dict]:
    return [gt_row(f"arch{i % 100:03d}", i % 100, i // 100, round((i % 97) / 97, 6),
                   train_loss=i / 7, train_acc=0.5) for i in range(n)]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_run_loses_and_duplicates_nothing(tmp_path):
    n = 400
    rows = crash_rows(n)
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(rows))
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(rows_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        count = 0
        while count < 30:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.01)
            try:
                with sqlite3.connect(path, timeout=5) as conn:
                    count = conn.execute("SELECT COUNT(*) FROM groundtruth").fetchone()[0]
                conn.close()
            except sqlite3.OperationalError:  # file or table not created yet
                count = 0
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    expected = {(r["arch"], r["seed"]): r for r in rows}
    with Store(path) as store:
        stored = store.groundtruth()
        assert 30 <= len(stored) < n
        keys = [(r["arch"], r["seed"]) for r in stored]
        assert len(set(keys)) == len(keys)  # no duplicates
        for got in stored:  # every row complete and exactly as written
            want = expected[(got["arch"], got["seed"])]
            for column in ("space", "arch_index", "dataset", "epochs", "test_acc", "valid_acc",
                           "test_loss", "train_loss", "train_acc", "seconds"):
                assert got[column] == want[column], column
            assert got["config_hash"] == HASH and got["code_version"] and got["created_at"]
        # rows were committed one by one in order: what survived is a prefix of the list
        done = store.groundtruth_done("tiny64", "digits", 3, HASH)
        assert done == {(r["arch"], r["seed"]) for r in rows[:len(stored)]}

        # the rerun adds exactly what is missing
        assert store.add_groundtruth_many(rows) == n - len(stored)
        assert store.add_groundtruth_many(rows) == 0
        final = store.groundtruth()
        assert len(final) == n
        assert {(r["arch"], r["seed"]) for r in final} == set(expected)
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ----------------------------------------------------------------------------- command line


@pytest.fixture
def wsnas_main(monkeypatch):
    """``wsnas.cli.main`` with only the store command registered, independent of the others."""
    monkeypatch.setattr(cli, "COMMANDS", {"store": cli.COMMANDS["store"]})
    return cli.main


def filled_store(path: Path) -> None:
    with Store(path) as s:
        s.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.75)])
        s.ensure_run("uniform-s0", "supernet", {"strategy": "uniform"}, seed=0)
        s.add_predictions("uniform-s0", [pred("epoch:1", "111", 0, 0.5),
                                         pred("epoch:1", "112", 1, 0.25)])
        s.set_run_status("uniform-s0", "done")


def test_cli_info(tmp_path, wsnas_main, capsys):
    path = tmp_path / "study.db"
    filled_store(path)
    assert wsnas_main(["store", "--store", str(path), "info"]) == 0
    out = capsys.readouterr().out
    assert f"store: {path.resolve()}" in out
    assert f"schema version: {SCHEMA_VERSION}" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["runs", "1"] in lines and ["groundtruth", "2"] in lines
    assert ["predictions", "2"] in lines
    assert ["tiny64", "digits", HASH, "3", "2", "1"] in lines
    run_line = next(line for line in lines if line and line[0] == "uniform-s0")
    assert run_line[1:3] == ["supernet", "done"]


def test_cli_info_of_an_empty_store(tmp_path, wsnas_main, capsys):
    path = tmp_path / "new.db"
    Store(path).close()
    assert wsnas_main(["store", "--store", str(path), "info"]) == 0
    assert "runs: none" in capsys.readouterr().out


def test_cli_export(tmp_path, wsnas_main, capsys):
    path = tmp_path / "study.db"
    filled_store(path)
    out = tmp_path / "gt.csv"
    assert wsnas_main(["store", "--store", str(path), "export", "groundtruth",
                       "--out", str(out)]) == 0
    assert "wrote 2 rows of groundtruth" in capsys.readouterr().out
    assert read_text(out).splitlines()[0] == ",".join(store_schema._GT_COLUMNS)

    wide = tmp_path / "wide.csv"
    assert wsnas_main(["store", "--store", str(path), "export", "predictions",
                       "--run", "uniform-s0", "--wide", "--out", str(wide)]) == 0
    assert "wrote 1 checkpoint of run 'uniform-s0'" in capsys.readouterr().out
    assert read_text(wide) == ",0,1\nepoch:1,0.5,0.25\n"

    assert wsnas_main(["store", "--store", str(path), "export", "groundtruth", "--wide",
                       "--out", str(wide)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wsnas store: error: --wide") and err.count("\n") == 1

    assert wsnas_main(["store", "--store", str(path), "export", "results",
                       "--out", str(wide)]) == 2
    assert "unknown table 'results'" in capsys.readouterr().err


def test_cli_missing_store_is_a_one_line_error(tmp_path, wsnas_main, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSNAS_STORE", raising=False)
    for argv in (["store", "info"], ["store", "export", "runs", "--out", "runs.csv"]):
        assert wsnas_main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert "wsnas store: error: results store 'wsnas.db' does not exist" in captured.err
    assert not (tmp_path / "wsnas.db").exists() and not (tmp_path / "runs.csv").exists()


def test_help_describes_the_command():
    from wsnas.commands import store as command

    assert "wsnas store export predictions --run" in command.__doc__


def test_selections_round_trip(tmp_path):
    with Store(tmp_path / "s.db") as s:
        s.ensure_run("search/1", "search", {"x": 1})
        s.add_selection("search/1", {"method": "pt", "arch": "333", "arch_index": 42, "truth": 0.91,
                                     "truth_rank": 3, "truth_source": "store", "seconds": 1.5})
        s.add_selection("search/1", {"method": "pt", "arch": "334", "arch_index": 43, "truth": float("nan")})
        s.add_selection("search/1", {"method": "magnitude", "arch": "111", "arch_index": 0})
        rows = s.selections("search/1")
        assert [(r["method"], r["arch"], r["truth"]) for r in rows] == [("magnitude", "111", None), ("pt", "334", None)]
        with pytest.raises(WsnasError, match="unknown"):
            s.add_selection("search/1", {"method": "pt", "arch": "1", "colour": "red"})
        with pytest.raises(WsnasError):
            s.add_selection("nope", {"method": "pt", "arch": "1"})
