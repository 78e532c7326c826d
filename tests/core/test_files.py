"""Tests of core/files.py: atomic writes and the guard that keeps outputs off a results store."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat

import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.core.files import atomic_write, check_output, refuse_store


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def sqlite_store(path):
    """An SQLite file in WAL mode, held open so that its -wal and -shm files exist."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    return conn


@pytest.fixture
def no_replace_in_dev(monkeypatch):
    """Fail, rather than replace a device: a regression must not clobber /dev/full (tests may run as root)."""
    real = os.replace

    def guarded(src, dst, *args, **kwargs):
        assert not os.path.realpath(dst).startswith("/dev/"), f"os.replace over {dst}"
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", guarded)


def test_atomic_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with atomic_write(target, newline="") as fh:
        fh.write("a,b\r\n1,2\n")
        assert target.read_text() == "old\n"  # nothing visible until the block ends
    assert target.read_bytes() == b"a,b\r\n1,2\n"
    with atomic_write(tmp_path / "new.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "new.bin").read_bytes() == b"\x00\x01"
    assert leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n" and leftovers(tmp_path) == []


def test_a_full_disk_names_the_target(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(OSError) as info, atomic_write(target) as fh:
        fh.write("x")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write that found the disk full
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)

    def full(fd):  # the disk fills up when the data is synced
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info, atomic_write(target) as fh:
        fh.write("y")
    assert info.value.errno == errno.EDQUOT and info.value.filename == str(target)
    assert target.read_text() == "old\n" and leftovers(tmp_path) == []


def test_torch_save_into_a_full_device_is_an_oserror(no_replace_in_dev):
    if not os.path.exists("/dev/full") or not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no /dev/full")
    with pytest.raises(OSError) as info, atomic_write("/dev/full", "wb", buffering=0) as fh:
        torch.save({"w": torch.zeros(64)}, fh)  # written in place: a device is never renamed over
    assert info.value.errno == errno.ENOSPC and info.value.filename == "/dev/full"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_link_is_followed_not_replaced(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with atomic_write(link) as fh:
        fh.write("new\n")
    assert link.is_symlink() and real.read_text() == "new\n"


def test_a_store_and_its_side_files_are_refused(tmp_path):
    store = tmp_path / "g.db"
    conn = sqlite_store(store)
    try:
        assert (tmp_path / "g.db-wal").exists() and (tmp_path / "g.db-shm").exists()
        link = tmp_path / "link.csv"
        link.symlink_to(store)
        for path, fragment in [(store, "it is the results store"), (tmp_path / "g.db-wal", "the wal file"),
                               (tmp_path / "g.db-shm", "the shm file"), (link, "it is the results store"),
                               (tmp_path / "g.db-journal", "the journal file")]:
            with pytest.raises(WsnasError, match=fragment) as info:
                check_output(path, stores=[store])
            assert str(path) in str(info.value)
        # without being told which store: any SQLite database, and the files beside one
        for path in (store, link, tmp_path / "g.db-wal"):
            with pytest.raises(WsnasError, match="SQLite database"):
                refuse_store(path)
            with pytest.raises(WsnasError, match="SQLite database"), atomic_write(path) as fh:
                fh.write("x")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
        assert leftovers(tmp_path) == []
        check_output(tmp_path / "g.csv", stores=[store])  # beside it is fine
    finally:
        conn.close()


def test_check_output_refuses_a_missing_folder_and_a_folder(tmp_path):
    (tmp_path / "afile").write_text("")
    for path, fragment in [(tmp_path / "nope" / "t.csv", "directory .*nope' does not exist"),
                           (tmp_path / "afile" / "t.csv", "afile' is not a directory"),
                           (tmp_path, "is a directory")]:
        with pytest.raises(WsnasError, match=fragment):
            check_output(path)
    assert not (tmp_path / "nope").exists()
