"""Tests of the store's writer: rows validated, written in one transaction, read back as written;
a killed writer loses and duplicates nothing."""

from __future__ import annotations

import errno
import json
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import CONFIG, HASH, gt_row, pred

from wsnas.core.errors import WsnasError
from wsnas.store import Store, code_version


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


def test_a_run_keeps_the_command_that_made_it_outside_its_identity(store):
    command = {"command": "supernet", "options": {"seed": 0, "threads": 1, "space_option": ["channels=4"]}}
    run = store.ensure_run("r", "supernet", {"lr": 0.1}, seed=0, command=command)
    assert run["command"] == command and list(run["command"]["options"]) == ["seed", "threads", "space_option"]
    other = {"command": "supernet", "options": {"seed": 0, "threads": 2}}
    assert store.ensure_run("r", "supernet", {"lr": 0.1}, seed=0, command=other)["command"] == command  # the first
    assert store.ensure_run("old", "supernet", {"lr": 0.1})["command"] is None  # none given: none kept
    assert store.ensure_run("old", "supernet", {"lr": 0.1}, command=other)["command"] == other  # filled in once
    assert store.get_run("old")["command"] == other
    with pytest.raises(WsnasError, match="a run's command must be"):
        store.ensure_run("new", "supernet", {}, command={"options": {}})
    with pytest.raises(WsnasError, match="cannot be stored as JSON"):
        store.ensure_run("new", "supernet", {}, command={"command": "x", "options": {"a": object()}})
    assert store.get_run("new") is None
    store.conn.execute("UPDATE runs SET command_json = '[1]' WHERE run_id = 'r'")
    with pytest.raises(WsnasError, match="column command_json, row with run_id 'r' is not a command"):
        store.get_run("r")
    store.conn.execute("UPDATE runs SET command_json = '{' WHERE run_id = 'r'")
    with pytest.raises(WsnasError, match="column command_json, row with run_id 'r' is not JSON"):
        store.get_run("r")


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
    ({"status": "failed"}, "ground-truth status 'failed' is not one of done, diverged"),
    ({"status": "diverged"}, "a diverged ground-truth training has no accuracy, but valid_acc is 0.25"),
])
def test_groundtruth_rows_are_validated(store, change, pattern):
    with pytest.raises(WsnasError, match=pattern):
        store.add_groundtruth({**gt_row("111", 0, 0, 0.5), **change})
    row = gt_row("111", 0, 0, 0.5)
    del row["epochs"]
    with pytest.raises(WsnasError, match="lacks the field 'epochs'"):
        store.add_groundtruth(row)
    assert store.groundtruth() == []


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
        deadline = time.monotonic() + 600  # a guard against a hang, not a speed limit
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


def test_a_full_disk_rolls_the_write_back_and_names_the_store(tmp_path):
    path = tmp_path / "full.db"
    with Store(path) as store:
        store.add_groundtruth_many([gt_row("111", 0, 0, 0.5)])
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
        rows = [gt_row(f"{a}{b}{c}", 16 * (a - 1) + 4 * (b - 1) + c - 1, 1, 0.5, code_version="x" * 3000)
                for a in range(1, 5) for b in range(1, 5) for c in range(1, 5)]
        with pytest.raises(OSError) as info:
            store.add_groundtruth_many(rows)
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
        assert "No space left on device" in str(info.value)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT arch, seed FROM groundtruth").fetchall() == [("111", 0)]
    with Store(path) as store:  # space again: the same rows go in
        assert store.add_groundtruth_many(rows) == 64
