"""Tests of the connection under every store: another process's lock (retried, then one line),
a damaged file (one line naming it and what is wrong), and read-only opens that write nothing."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest
from conftest import gt_row, pred

from wsnas.core.errors import WsnasError
from wsnas.groundtruth.truth import load_truth
from wsnas.store import TIMEOUT_ENV, Store, StoreLocked


def filled(path, predictions: int = 0):
    with Store(path) as s:
        s.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.75)])
        s.ensure_run("r", "supernet", {"strategy": "uniform"}, seed=0)
        s.add_predictions("r", [pred(f"step:{i}", "111", 0, 0.5, step=i, loss=1.0) for i in range(predictions)])
    return path


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message and "Traceback" not in message
    return message


# -- locks -------------------------------------------------------------------------------------


def hold_lock(path):
    """Another process's connection holding the write lock (``BEGIN EXCLUSIVE``)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_a_lock_held_past_the_timeout_is_one_line_and_loses_what_was_written(tmp_path):
    path = filled(tmp_path / "s.db")
    other = hold_lock(path)
    try:
        with Store(path, timeout=0.2) as s:
            assert len(s.groundtruth()) == 2  # WAL: reading goes on under the other's lock
            with pytest.raises(StoreLocked) as info:
                s.add_groundtruth(gt_row("113", 2, 0, 0.6))
    finally:
        other.close()
    message = one_line(info.value)
    assert str(path) in message and "locked by another process" in message and TIMEOUT_ENV in message
    with Store(path) as s:  # what was written before is there; the refused row can be written now
        assert len(s.groundtruth()) == 2
        assert s.add_groundtruth(gt_row("113", 2, 0, 0.6))


def test_a_lock_released_within_the_timeout_loses_nothing(tmp_path):
    path = filled(tmp_path / "s.db")
    locked, release = threading.Event(), threading.Event()

    def other_process():
        other = hold_lock(path)
        locked.set()
        release.wait(30)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    assert locked.wait(30)
    with Store(path, timeout=120) as s:
        # the writer is blocked by the lock; release it while the write retries
        threading.Timer(0.3, release.set).start()
        assert s.add_groundtruth_many([gt_row("113", 2, 0, 0.6), gt_row("114", 3, 0, 0.7)]) == 2
        assert len(s.groundtruth()) == 4
    thread.join(30)


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan"])
def test_a_bad_timeout_in_the_environment_is_one_line(tmp_path, monkeypatch, value):
    monkeypatch.setenv(TIMEOUT_ENV, value)
    with pytest.raises(WsnasError, match=TIMEOUT_ENV) as info:
        Store(tmp_path / "s.db")
    one_line(info.value)
    assert not (tmp_path / "s.db").exists()


def test_the_timeout_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    with Store(tmp_path / "s.db") as s:
        assert s.timeout == 2.5
    with Store(tmp_path / "s.db", timeout=7) as s:
        assert s.timeout == 7


# -- damage ------------------------------------------------------------------------------------


def test_garbage_in_the_middle_of_the_file_is_one_line_with_quick_check(tmp_path):
    path = filled(tmp_path / "s.db", predictions=2000)
    size = path.stat().st_size
    assert size > 100_000 and not (tmp_path / "s.db-wal").exists()
    with open(path, "r+b") as handle:
        handle.seek(size // 3)
        handle.write(b"\xde\xad\xbe\xef" * (size // 12))  # the middle third
    for read_only in (True, False):
        with pytest.raises(WsnasError) as info, Store(path, read_only=read_only) as s:
            s.predictions("r")
        message = one_line(info.value)
        assert repr(str(path)) in message and "is damaged" in message
        assert "malformed" in message and "PRAGMA quick_check:" in message


def test_a_dropped_table_is_named(tmp_path):
    path = filled(tmp_path / "s.db")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE predictions")
    conn.close()
    for read_only in (True, False):
        with pytest.raises(WsnasError) as info:
            Store(path, read_only=read_only)
        message = one_line(info.value)
        assert repr(str(path)) in message and "table 'predictions' is missing" in message


def test_text_in_a_numeric_column_names_table_column_and_row(tmp_path):
    path = filled(tmp_path / "s.db", predictions=3)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE groundtruth SET test_acc = 'n/a' WHERE arch = '112'")
        conn.execute("UPDATE predictions SET loss = 'high' WHERE checkpoint = 'step:1'")
    conn.close()
    with pytest.raises(WsnasError) as info:
        load_truth(str(path))  # the ground truth of a store file, as --truth reads it
    message = one_line(info.value)
    assert repr(str(path)) in message and "table groundtruth, column test_acc" in message
    assert "arch '112'" in message and "'n/a', not a number" in message
    with Store(path, read_only=True) as s:
        assert len(s.groundtruth_values("valid_acc")) == 2  # the other columns still read
        with pytest.raises(WsnasError, match="table predictions, column loss, row with run_id 'r', "
                                             "checkpoint 'step:1', arch '111' holds 'high'"):
            s.prediction_matrix("r", "loss")
        assert s.prediction_matrix("r", "accuracy")[2].shape == (3, 1)


def test_damaged_run_config_is_one_line(tmp_path):
    path = filled(tmp_path / "s.db")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET config_json = '{broken' WHERE run_id = 'r'")
    conn.close()
    with Store(path, read_only=True) as s, pytest.raises(WsnasError, match="column config_json, row with run_id 'r'"):
        s.list_runs()


# -- read-only opens ---------------------------------------------------------------------------


def test_read_only_never_writes_an_empty_file(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(WsnasError, match=r"empty\.db' is empty: it has no wsnas tables") as info:
        Store(path, read_only=True)
    one_line(info.value)
    assert path.read_bytes() == b"" and os.listdir(tmp_path) == ["empty.db"]
    with pytest.raises(WsnasError, match="does not exist"):
        Store(tmp_path / "missing.db", read_only=True)
    assert os.listdir(tmp_path) == ["empty.db"]


@pytest.mark.parametrize("read_only", [True, False])
def test_another_programs_database_is_refused_untouched(tmp_path, read_only):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
        conn.execute("INSERT INTO customers VALUES ('ada')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(WsnasError, match="not a wsnas results store"):
        Store(path, read_only=read_only)
    assert path.read_bytes() == before  # the journal mode (header bytes 18-19) included
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_a_read_only_store_reads_and_refuses_to_write(tmp_path):
    path = filled(tmp_path / "s.db")
    before = path.read_bytes()
    with Store(path, read_only=True) as s:
        assert len(s.groundtruth()) == 2 and s.get_run("r")["status"] == "created"
        with pytest.raises(WsnasError, match="open read-only"):
            s.set_run_status("r", "done")
    assert path.read_bytes() == before
