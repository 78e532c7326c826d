"""`wsnas insights`: killed at any point and rerun, it ends with the numbers of an uninterrupted run."""

import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from wsnas.cli import main
from wsnas.store import Store

TINY = ["--space-option", "channels=4", "--space-option", "stem_channels=8", "--gt-seeds", "2",
        "--gt-epochs", "1", "--epochs", "2", "--batch-size", "128", "--seeds", "2", "--orders", "1",
        "--shuffles", "1", "--dense-last", "4", "--finetune-steps", "2", "--no-progress",
        "--threads", "1", "--data-option", "limit=200"]


def _cmd(run_dir, *extra):
    return [sys.executable, "-m", "wsnas", "insights", "--run-dir", str(run_dir), *TINY, *extra]


def _count(db, table):
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _snapshot(db):
    with Store(db) as store:
        gt = sorted((r["arch"], r["seed"], r["test_acc"], r["valid_loss"]) for r in store.groundtruth())
        preds = {}
        for run in store.list_runs():
            if run["kind"] in ("supernet", "finetune"):
                labels, archs, matrix = store.prediction_matrix(run["run_id"])
                preds[run["run_id"]] = (sorted(labels), archs, matrix[np.argsort(labels)])
        return gt, preds


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted study (with its report): its directory and its numbers."""
    run_dir = tmp_path_factory.mktemp("ref")
    out = subprocess.run(_cmd(run_dir), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return run_dir, _snapshot(run_dir / "results.db")


def _kill_when(run_dir, table, rows):
    """Start the study and SIGKILL it once ``table`` holds ``rows`` rows."""
    db = run_dir / "results.db"
    proc = subprocess.Popen(_cmd(run_dir, "--no-report"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while _count(db, table) < rows and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"the study finished before {table} held {rows} rows: " + proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_study_resumes_to_identical_numbers(tmp_path, reference):
    """Killed while training the ground truth, rerun and killed again while the supernets'
    predictions are stored, then rerun to the end: the numbers of the uninterrupted study."""
    _kill_when(tmp_path, "groundtruth", 40)
    _kill_when(tmp_path, "predictions", 64 * 3 + 1)
    out = subprocess.run(_cmd(tmp_path, "--no-report"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    gt, preds = _snapshot(tmp_path / "results.db")
    ref_gt, ref_preds = reference[1]
    assert gt == ref_gt
    assert preds.keys() == ref_preds.keys()
    for run_id, (labels, archs, matrix) in preds.items():
        assert labels == ref_preds[run_id][0] and archs == ref_preds[run_id][1], run_id
        np.testing.assert_array_equal(matrix, ref_preds[run_id][2], err_msg=run_id)


def test_report_and_rerun_without_work(reference, capsys):
    run_dir = reference[0]
    assert (run_dir / "report.html").exists() and (run_dir / "report.md").exists()
    md = (run_dir / "report.md").read_text()
    counts = {t: _count(run_dir / "results.db", t) for t in ("groundtruth", "predictions", "train_steps")}
    assert main(["insights", "--run-dir", str(run_dir), *TINY]) == 0  # all in the store: nothing new
    out = capsys.readouterr().out
    assert "HOLDS" in out or "DOES NOT HOLD" in out or "UNDECIDED" in out
    assert counts == {t: _count(run_dir / "results.db", t) for t in counts}
    assert (run_dir / "report.md").read_text() == md


@pytest.mark.parametrize("args, fragment", [
    (["--space-option", "combine=max"], "unknown combine 'max'"),
    (["--seeds", "0", "--orders", "0", "--shuffles", "0"], "no supernet instances"),
    (["--truth", "nb201-imaginary"], "nb201-imaginary"),
    (["--bn-mode", "recal", "--recal-batches", "0"], "recal_batches must be at least 1"),
    (["--prefix-epochs", "5"], "--prefix-epochs needs --sweep sharing"),
    (["--sweep", "sharing", "--sweep-settings", "prefix:1", "--prefix-epochs", "0"],
     "--prefix-epochs must be at least 1, got 0"),
])
def test_bad_input(tmp_path, capsys, args, fragment):
    assert main(["insights", "--run-dir", str(tmp_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_sharing_sweep_beside_the_main_study(reference, capsys):
    run_dir = reference[0]
    gt_rows = _count(run_dir / "results.db", "groundtruth")
    sweep = ["insights", "--run-dir", str(run_dir), *TINY, "--seeds", "0", "--orders", "0", "--shuffles", "0",
             "--finetune-steps", "0", "--sweep", "sharing", "--sweep-settings", "full,group:2,group:2:random,prefix:1",
             "--prefix-epochs", "3"]
    assert main(sweep) == 0
    out = capsys.readouterr().out
    assert _count(run_dir / "results.db", "groundtruth") == gt_rows  # the ground truth is reused
    assert (run_dir / "sharing" / "report.md").exists()
    md = (run_dir / "sharing" / "report.md").read_text()
    assert "Table 3 of the paper" in md and "group:2:random" in md
    assert "reducing sharing" in out or "prefix sharing" in out or "similarity partition" in out
    with Store(run_dir / "results.db") as store:
        runs = {r["run_id"]: r for r in store.list_runs("supernet") if r["run_id"].startswith("sharing/")}
        assert set(runs) == {"sharing/sharing/full", "sharing/sharing/group:2:similarity",
                             "sharing/sharing/group:2:random", "sharing/sharing/prefix:1"}
        assert all(r["status"] == "done" for r in runs.values())
        assert runs["sharing/sharing/group:2:random"]["config"]["sharing"]["groups"] == 2
        # the prefix row trains for its own budget (--prefix-epochs), the others for --epochs
        assert runs["sharing/sharing/prefix:1"]["config"]["supernet"]["train"]["epochs"] == 3
        assert runs["sharing/sharing/full"]["config"]["supernet"]["train"]["epochs"] == 2
        assert len(store.checkpoints("sharing/sharing/prefix:1")) > len(store.checkpoints("sharing/sharing/full"))
        sweep_cfg = store.get_run("sharing")["config"]["sweep"]
        assert sweep_cfg["prefix:1"]["compute"] == 1.5 and sweep_cfg["prefix:1"]["epochs"] == 3
    assert main(["report", str(run_dir / "sharing")]) == 0
    assert "sharing/report.html" in capsys.readouterr().out
