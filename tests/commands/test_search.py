"""`wsnas search`: search, selection and the selected architectures' ground truth, from the command line."""

import math

import pytest

from wsnas.cli import main
from wsnas.groundtruth.truth import load_truth
from wsnas.store import Store

BASE = ["search", "--space-option", "channels=4", "--space-option", "stem_channels=8", "--epochs", "2",
        "--no-progress", "--threads", "1", "--pt-interval", "1"]


def test_search_stores_selections_with_truth_and_diagnostics(tmp_path, capsys):
    args = [*BASE, "--store", str(tmp_path / "r.db"), "--run-dir", str(tmp_path / "run"), "--truth", "tiny64-cifar10",
            "--param", "gaea"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 epochs" in out and "\nmagnitude: " in out and "\npt: " in out and "from tiny64-cifar10" in out
    with Store(tmp_path / "r.db") as store:
        run_id = "search/tiny64/darts-gaea/0"
        rows = store.selections(run_id)
        assert [r["method"] for r in rows] == ["magnitude", "pt"]
        truth = load_truth("tiny64-cifar10")  # each selection carries its architecture's row of the table
        for r in rows:
            pos = truth.position(r["arch"])
            assert len(r["arch"]) == 3 and r["truth_source"] == "tiny64-cifar10"
            assert r["truth"] == pytest.approx(truth.accuracy[pos]) and r["truth_rank"] == truth.ranks()[pos]
        run = store.get_run(run_id)
        assert run["kind"] == "search" and run["status"] == "done" and run["config"]["strategy"]["param"] == "gaea"
        entropy = store.run_metrics(run_id, name="entropy")
        assert len(entropy) == 2 and all(0 < r["value"] < 1.39 for r in entropy)
        assert len(store.run_metrics(run_id, name="argmax_index")) == 2
    assert main(args) == 0  # everything stored: nothing is run again
    again = capsys.readouterr().out
    assert "epochs" not in again and again.splitlines()[:2] == out.splitlines()[1:3]
    select = ["select", "--run", "search/tiny64/darts-gaea/0", "--store", str(tmp_path / "r.db"), "--run-dir",
              str(tmp_path / "run"), "--method", "magnitude,pt", "--pt-interval", "1", "--truth", "tiny64-cifar10",
              "--no-progress"]
    assert main(select) == 0  # from the stored run and its checkpoint: the same choices
    chosen = [line.split()[1] for line in capsys.readouterr().out.splitlines()]
    assert chosen == [line.split()[1] for line in out.splitlines()[1:3]]
    assert main([*select[:2], "search/none", *select[3:]]) == 2
    assert "no search run 'search/none'" in capsys.readouterr().err


@pytest.mark.parametrize("extra, fragment", [
    (["--fixed-alpha", "--select", "magnitude"], "--select pt"),
    (["--select", "best"], "unknown selection 'best'"),
    (["--exclude", "conv_9x9"], "cannot exclude unknown op 'conv_9x9'"),
    (["--strategy", "pcdarts", "--k", "3"], "must divide"),
    (["--data-option", "valid_size"], "must look like KEY=VALUE"),
    (["--data-option", "colour=red"], "colour"),
    (["--strategy", "gdas", "--warmup-epochs", "-1"], "--warmup-epochs must be 0 or more, got -1"),
    (["--strategy", "gdas", "--kl-weight", "-0.5"], "--kl-weight must be 0 or more (0 turns it off), got -0.5"),
    (["--warmup-epochs", "2"], "--warmup-epochs is a GDAS option; use it with --strategy gdas, not darts"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, fragment):
    assert main([*BASE, "--store", str(tmp_path / "r.db"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_search_study_writes_its_report(tmp_path, capsys):
    args = ["search", "--study", "--quick", "--study-dir", str(tmp_path), "--space-option", "channels=4",
            "--space-option", "stem_channels=8", "--epochs", "1", "--no-progress", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    md = (tmp_path / "search" / "report.md").read_text()
    assert "## Comparison" in md and "fixed-alpha" in md and "darts-gaea" in md and "pcdarts-softmax" in md
    assert "perturbation-based selection" in out and "GAEA" in out
    with Store(tmp_path / "results.db") as store:
        assert len(store.list_runs("search")) == 7 and store.get_run("search")["status"] == "done"
        assert len(store.groundtruth()) == 64 * 2


def test_pt_selects_from_a_search_whose_architecture_batches_come_from_the_valid_split(tmp_path, capsys):
    """The valid split is smaller than the training split: PT's tuning cycles its architecture batches
    as the search does, instead of running out of them (it used to fail with "darts needs an
    architecture batch every step")."""
    args = [*BASE, "--epochs", "1", "--store", str(tmp_path / "r.db"), "--run-dir", str(tmp_path / "run"),
            "--select", "pt", "--arch-split", "valid"]
    assert main(args) == 0
    assert "\npt: " in "\n" + capsys.readouterr().out
    with Store(tmp_path / "r.db") as store:
        rows = store.selections("search/tiny64/darts-softmax/0")
        assert [r["method"] for r in rows] == ["pt"] and len(rows[0]["arch"]) == 3
        assert store.get_run("search/tiny64/darts-softmax/0")["config"]["strategy"]["arch_split"] == "valid"


def test_gaea_gdas_warm_up_from_the_command_line_freezes_theta(tmp_path, capsys):
    """--warmup-epochs 1 of 2: theta (uniform at the start) is still uniform after epoch 1, entropy
    ln 4, and moves in epoch 2 (a large step size, so that three steps show); the stored settings
    carry the warm-up and the authors' KL weight."""
    args = [*BASE, "--store", str(tmp_path / "r.db"), "--run-dir", str(tmp_path / "run"), "--select", "magnitude",
            "--strategy", "gdas", "--param", "gaea", "--warmup-epochs", "1", "--arch-lr", "1.0"]
    assert main(args) == 0
    capsys.readouterr()
    with Store(tmp_path / "r.db") as store:
        run_id = "search/tiny64/gdas-gaea/0"
        strategy = store.get_run(run_id)["config"]["strategy"]
        assert strategy["warmup_epochs"] == 1 and strategy["kl_weight"] == 0.01
        entropy = [r["value"] for r in store.run_metrics(run_id, name="entropy")]
        assert len(entropy) == 2 and entropy[0] == pytest.approx(math.log(4), abs=1e-12)
        assert entropy[1] < math.log(4) - 1e-5
