"""Tests of opening a results store: the file checks, the schema, its version and upgrades."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import gt_row

import wsnas.store.schema as store_schema
from wsnas.core.errors import WsnasError
from wsnas.store import SCHEMA_VERSION, Store, code_version


def test_new_store_creates_folders_file_and_schema(tmp_path):
    path = tmp_path / "a" / "b" / "results.db"
    with Store(path) as s:
        assert path.is_file()
        meta = s.meta()
        assert meta["schema_version"] == str(SCHEMA_VERSION) == "6"
        assert meta["created_by"] == f"wsnas {code_version()}"
        assert s.schema_version == 6
        assert s.tables() == {"runs": 0, "groundtruth": 0, "predictions": 0, "train_steps": 0,
                              "interference": 0, "run_metrics": 0, "selections": 0, "candidates": 0,
                              "arch_costs": 0}
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
                                   "run_metrics", "selections", "candidates", "arch_costs"}


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
                              "interference": 0, "run_metrics": 0, "selections": 0, "candidates": 0,
                              "arch_costs": 0, "notes": 0}
        assert "upgraded_by" in s.meta()


def version_3_store(path) -> None:
    """A store as wsnas wrote it at schema version 3 (before ground-truth rows had a status)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", "3"), ("created_by", "wsnas 0.1.0")])
    for step in store_schema._MIGRATIONS[:3]:
        for statement in step:
            conn.execute(statement)
    conn.execute("INSERT INTO groundtruth (space, arch, arch_index, dataset, seed, epochs, config_hash, config_json, "
                 "test_acc, code_version, created_at) VALUES ('tiny64', '111', 0, 'digits', 0, 3, 'h', '{}', 0.5, "
                 "'0.1.0', '2025-01-01T00:00:00Z')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_version_3_store_reads_its_ground_truth_as_done(tmp_path, read_only):
    path = tmp_path / "v3.db"
    version_3_store(path)
    with Store(path, read_only=read_only) as s:
        assert s.schema_version == SCHEMA_VERSION == 6
        [row] = s.groundtruth()
        assert row["status"] == "done" and row["test_acc"] == 0.5
        assert [r["value"] for r in s.groundtruth_values("test_acc")] == [0.5]
