"""`wsnas groundtruth`: a real subprocess killed mid-run, then rerun, completes the table."""

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import float32, tensorboard_scalars

from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.store import Store

ARCHS = "111,222,333,444,121,212,343,414"
SMALL = ["--space-option", "channels=4", "--space-option", "stem_channels=8", "--epochs", "1",
         "--batch-size", "128", "--no-progress", "--threads", "1", "--data-option", "limit=200"]


def _rows(db):
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM groundtruth").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _start(db, seeds="1"):
    cmd = [sys.executable, "-m", "wsnas", "groundtruth", "--archs", ARCHS, "--seeds", seeds,
           "--store", str(db), *SMALL]
    # the child must see Ctrl-C even when this test runs where SIGINT is ignored (a shell's
    # background job): an ignored SIGINT is inherited, and Python then installs no handler
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_run_resumes_without_loss_or_duplicates(tmp_path, sig):
    db = tmp_path / "gt.db"
    proc = _start(db, seeds="2")
    while _rows(db) < 3 and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate()
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert "interrupted; finished results are kept" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    kept = _rows(db)
    assert 3 <= kept < 16
    with Store(db) as store:
        before = {(r["arch"], r["seed"]): r["test_acc"] for r in store.groundtruth()}

    proc = _start(db, seeds="2")
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert f"{16 - kept} trained, {kept} already in" in out
    with Store(db) as store:
        rows = store.groundtruth()
        keys = [(r["arch"], r["seed"]) for r in rows]
        assert len(keys) == len(set(keys)) == 16
        assert {a for a, _ in keys} == set(ARCHS.split(","))
        assert all(r["test_acc"] == before[(r["arch"], r["seed"])] for r in rows if (r["arch"], r["seed"]) in before)
    assert "Kendall tau between the rankings of seeds 0 and 1" in out


def test_rerun_is_a_no_op_and_reports_seed_tau(tmp_path, capsys):
    db = tmp_path / "gt.db"
    args = ["groundtruth", "--archs", "111,222,333", "--seeds", "2", "--store", str(db), *SMALL]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "6 trained, 0 already" in first
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "0 trained, 6 already" in second
    assert first.splitlines()[2:] == second.splitlines()[2:]  # same tau and best architectures
    assert main([*args, "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["trained"] == 0 and out["complete_seeds"] == [0, 1] and "0-1" in out["seed_tau"]


def test_tensorboard_scalars_of_each_training_continue_over_reruns(tmp_path, capsys):
    """--tensorboard DIR: each finished training's accuracies in DIR/groundtruth/<config hash>, in the order
    they finished; a rerun with another seed continues the count; the seed-to-seed tau at the end."""
    db, tb = tmp_path / "gt.db", tmp_path / "tb"
    # batches of 32: the children's accuracies differ after one epoch, so the seeds' tau is a number
    args = ["groundtruth", "--archs", "111,222,333,444", "--store", str(db), "--tensorboard", str(tb), "--json",
            *SMALL, "--batch-size", "32"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--seeds", "2"]) == 0  # the first seed's trainings are skipped, the second's added
    out = json.loads(capsys.readouterr().out)
    folder = tb / "groundtruth" / out["config_hash"]
    assert [p.parent for p in tb.rglob("events.*")] == [folder, folder]
    got = tensorboard_scalars(folder)
    with Store(db) as store:
        rows = sorted(store.groundtruth(), key=lambda r: (r["seed"], r["arch"]))  # seed-major, as they trained
    for column in ("test_acc", "valid_acc", "train_acc", "train_loss"):
        assert got[f"groundtruth/{column}"] == list(zip(range(1, 9), float32([r[column] for r in rows]))), column
    assert got["groundtruth/mean_seed_tau"] == [(8, pytest.approx(out["mean_seed_tau"], abs=1e-4))]
    assert main(args) == 0  # nothing to train: nothing written
    assert len(list(tb.rglob("events.*"))) == 2


def test_same_seed_gives_the_same_result(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["groundtruth", "--archs", "234", "--store", str(tmp_path / f"{name}.db"), *SMALL]) == 0
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        ra, rb = a.groundtruth()[0], b.groundtruth()[0]
        for k in ("test_acc", "valid_acc", "train_loss", "test_loss"):
            assert ra[k] == rb[k]


@pytest.mark.parametrize("args, fragment", [
    (["--archs", "151"], "bad op '5' on edge 0->2"),
    (["--space", "nb999"], "unknown space 'nb999'; accepted: tiny64"),
    (["--data", "mnist"], "unknown dataset 'mnist'"),
    (["--data", "cifar10", "--data-dir", "/nonexistent/cifar"], "/nonexistent/cifar"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--space-option", "dil"], "must look like KEY=VALUE"),
    (["--device", "tpu"], "device"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, fragment):
    code = main(["groundtruth", "--store", str(tmp_path / "x.db"), "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert fragment in err and "\n" not in err and "Traceback" not in err


def test_a_store_locked_past_the_timeout_is_one_line_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    db = tmp_path / "gt.db"
    Store(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    monkeypatch.setenv("WSNAS_STORE_TIMEOUT", "0.3")
    argv = ["groundtruth", "--archs", "111", "--store", str(db), *SMALL]
    try:
        assert main(argv) == 2
    finally:
        other.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"wsnas groundtruth: error: results store '{db}' is locked by another process")
    assert main(argv) == 0  # the lock is gone: the rerun trains and stores the job
    assert "1 trained, 0 already in" in capsys.readouterr().out
    assert _rows(db) == 1


def test_a_diverging_training_is_recorded_but_never_ground_truth(tmp_path, capsys):
    from wsnas.groundtruth.truth import load_truth

    db = tmp_path / "gt.db"
    argv = ["groundtruth", "--archs", "111,222", "--lr", "1e30", "--store", str(db), *SMALL]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for arch in ("111", "222"):
        assert re.search(rf"^arch {arch} seed 0 diverged at epoch 1 \(loss (nan|-?inf)\); not stored as ground truth$",
                         out, re.MULTILINE)
    assert "2 trained (2 diverged)" in out and "none: every training diverged" in out
    with Store(db, read_only=True) as store:
        rows = [(r["arch"], r["status"], r["valid_acc"], r["test_acc"], r["train_acc"]) for r in store.groundtruth()]
        assert rows == [("111", "diverged", None, None, None), ("222", "diverged", None, None, None)]
    with pytest.raises(WsnasError, match="has no test_acc values"):
        load_truth(str(db))  # --truth gt.db: no ground truth to rank against
    assert main(argv) == 0  # a rerun does not train them again
    assert "0 trained, 2 already in" in capsys.readouterr().out
