"""Nothing lost, no traceback: outputs never replace the store, a missing folder is refused, a
full disk and a closed pipe end in one line (or none) instead of a traceback."""

from __future__ import annotations

import csv
import errno
import os
import sqlite3
import stat
import subprocess
import sys

import pytest
from conftest import gt_row, pred

import wsnas
from wsnas import cli
from wsnas.store import Store


@pytest.fixture
def wsnas_main(monkeypatch):
    """``wsnas.cli.main`` with only the commands these tests call registered."""
    monkeypatch.setattr(cli, "COMMANDS", {name: cli.COMMANDS[name] for name in ("store", "benchmark")})
    return cli.main


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "g.db"
    with Store(path) as s:
        s.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.75)])
        s.ensure_run("r", "supernet", {})
        s.add_predictions("r", [pred("epoch:1", "111", 0, 0.5)])
    return path


def contents(path):
    """The store's integrity check and its rows, read without wsnas."""
    with sqlite3.connect(path) as conn:
        return (conn.execute("PRAGMA integrity_check").fetchone()[0],
                conn.execute("SELECT arch, test_acc FROM groundtruth ORDER BY arch").fetchall(),
                conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0])


def one_line(capsys, *fragments):
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    for fragment in fragments:
        assert fragment in captured.err, captured.err
    return captured.err


@pytest.fixture
def no_replace_in_dev(monkeypatch):
    """Fail, rather than replace a device: a regression must not clobber /dev/full (tests may run as root)."""
    if not os.path.exists("/dev/full") or not stat.S_ISCHR(os.stat("/dev/full").st_mode):
        pytest.skip("no /dev/full")
    real = os.replace

    def guarded(src, dst, *args, **kwargs):
        assert not os.path.realpath(dst).startswith("/dev/"), f"os.replace over {dst}"
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", guarded)


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("target", ["g.db", "g.db-wal", "g.db-shm", "link.csv"])
def test_export_never_replaces_the_store(tmp_path, store, wsnas_main, capsys, target, wide):
    before = contents(store)
    (tmp_path / "link.csv").symlink_to(store)
    out = tmp_path / target
    args = ["predictions", "--run", "r", "--wide"] if wide else ["groundtruth"]
    assert wsnas_main(["store", "--store", str(store), "export", *args, "--out", str(out)]) == 2
    one_line(capsys, "wsnas store: error: refusing to write", repr(str(out)), "results store")
    assert contents(store) == before


def test_export_into_a_missing_folder_is_refused(tmp_path, store, wsnas_main, capsys):
    out = tmp_path / "nope" / "gt.csv"
    assert wsnas_main(["store", "--store", str(store), "export", "groundtruth", "--out", str(out)]) == 2
    one_line(capsys, repr(str(tmp_path / "nope")), "does not exist")
    assert not (tmp_path / "nope").exists()


def test_convert_refuses_a_missing_folder_a_file_as_folder_and_a_store(tmp_path, store, wsnas_main, capsys):
    source = tmp_path / "NAS-Bench-201.pth"  # never read: the output is checked first
    source.write_bytes(b"")
    (tmp_path / "afile").write_text("")
    for out, fragment in [(tmp_path / "nope" / "t.csv.gz", "does not exist"),
                          (tmp_path / "afile" / "t.csv", "is not a directory"),
                          (store, "SQLite database")]:
        assert wsnas_main(["benchmark", "convert", str(source), "--out", str(out), "--no-progress"]) == 2
        one_line(capsys, "wsnas benchmark: error:", repr(str(out)), fragment)
    assert not (tmp_path / "nope").exists() and contents(store)[0] == "ok"


def test_a_full_disk_during_an_export_is_one_line_and_keeps_the_old_file(tmp_path, store, wsnas_main, capsys,
                                                                         monkeypatch):
    out = tmp_path / "gt.csv"
    out.write_text("old\n")
    real = csv.writer

    def filling_writer(handle, **kwargs):
        inner = real(handle, **kwargs)

        class Writer:
            rows = 0

            def writerow(self, row):
                self.rows += 1
                if self.rows == 2:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return inner.writerow(row)

        return Writer()

    monkeypatch.setattr(csv, "writer", filling_writer)
    assert wsnas_main(["store", "--store", str(store), "export", "groundtruth", "--out", str(out)]) == 1
    one_line(capsys, f"wsnas store: error: cannot write {str(out)!r}: no space left on device")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_output_to_dev_full_is_one_line(tmp_path, store, wsnas_main, capsys, no_replace_in_dev):
    assert wsnas_main(["store", "--store", str(store), "export", "groundtruth", "--out", "/dev/full"]) == 1
    one_line(capsys, "cannot write '/dev/full': no space left on device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_closed_pipe_ends_quietly():
    """``wsnas spaces --space nb201 --list | head -1``: no traceback, status 141 (128 + SIGPIPE)."""
    src = os.path.dirname(os.path.dirname(wsnas.__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "wsnas", "spaces", "--space", "nb201", "--list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away after one line, as head -1 does
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert first.startswith(b"0\t|") and err == ""
