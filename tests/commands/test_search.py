"""`wsnas search`: search, selection and the selected architectures' ground truth, from the command line."""

import json
import math

import numpy as np
import pytest
from conftest import float32, tensorboard_scalars

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
    (["--strategy", "gdas", "--kl-weight", "-0.5"], "--kl-weight must be 0 or more (0 turns it off), got -0.5"),
    (["--lr-schedule-epochs", "0"], "lr_schedule_epochs must be a positive integer (the cosine's period in epochs), "
                                    "got 0"),
    (["--lr-schedule-epochs", "1"], "lr_schedule_epochs 1 is shorter than the run's 2 epochs; accepted: at least"),
    (["--preset", "gaea"], "unknown preset 'gaea'; accepted: gaea-nb201"),
    (["--preset", "gaea-nb201", "--study"], "--preset gaea-nb201 configures one search, not --study"),
    (["--warmup-epochs", "-1"], "the warm-up must be a non-negative number of epochs, got -1"),
    (["--strategy", "gdas", "--warmup-epochs", "-1"], "the warm-up must be a non-negative number of epochs, got -1"),
    (["--warmup-epochs", "2"], "a warm-up of 2 epochs covers the whole 2-epoch search"),
    (["--strategy", "pcdarts"], "a warm-up of 15 epochs covers the whole 2-epoch search, so the architecture would "
                                "never be updated; accepted: --warmup-epochs below --epochs"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, fragment):
    assert main([*BASE, "--store", str(tmp_path / "r.db"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_search_study_writes_its_report(tmp_path, capsys):
    args = ["search", "--study", "--quick", "--study-dir", str(tmp_path), "--space-option", "channels=4",
            "--space-option", "stem_channels=8", "--epochs", "1", "--no-progress", "--threads", "1",
            "--data-option", "limit=200", "--tensorboard", str(tmp_path / "tb")]
    assert main(args) == 0
    out = capsys.readouterr().out
    md = (tmp_path / "search" / "report.md").read_text()
    assert "## Comparison" in md and "fixed-alpha" in md and "darts-gaea" in md and "pcdarts-softmax" in md
    assert "perturbation-based selection" in out and "GAEA" in out
    with Store(tmp_path / "results.db") as store:
        runs = store.list_runs("search")
        assert len(runs) == 7 and store.get_run("search")["status"] == "done"
        assert len(store.groundtruth()) == 64 * 2
        chash = store.groundtruth()[0]["config_hash"]
        entropy = {r["run_id"]: store.run_metrics(r["run_id"], name="entropy") for r in runs}
    # every search's curves in DIR/<run id> (its entropy as the store holds it), the ground truth's beside them
    folders = {p.relative_to(tmp_path / "tb").parent.as_posix() for p in (tmp_path / "tb").rglob("events.*")}
    assert folders == {r["run_id"] for r in runs} | {f"groundtruth/{chash}"}
    for run_id, rows in entropy.items():
        assert tensorboard_scalars(tmp_path / "tb" / run_id)["strategy/entropy"] == [
            (r["step"], float(np.float32(r["value"]))) for r in rows]
    assert [s for s, _ in tensorboard_scalars(tmp_path / "tb" / "groundtruth" / chash)["groundtruth/test_acc"]] \
        == list(range(1, 64 * 2 + 1))
    # `wsnas report STUDY_DIR/search` writes the same report again, from the store alone
    assert json.loads((tmp_path / "search" / "experiment.json").read_text())["experiment"] == "search"
    (tmp_path / "search" / "report.md").unlink()
    assert main(["report", str(tmp_path / "search")]) == 0
    assert f"report: {tmp_path / 'search' / 'report.html'}" in capsys.readouterr().out
    assert (tmp_path / "search" / "report.md").read_text() == md


def test_tensorboard_curves_of_a_search(tmp_path, capsys):
    """--tensorboard DIR: the search's loss per step and its architecture weights' entropy per epoch (mean and
    per edge), read back from DIR/<run id>, are what the store holds."""
    db, tb = str(tmp_path / "r.db"), tmp_path / "tb"
    assert main([*BASE, "--select", "magnitude", "--data-option", "limit=200", "--store", db, "--run-dir",
                 str(tmp_path / "run"), "--tensorboard", str(tb)]) == 0
    run_id = "search/tiny64/darts-softmax/0"
    got = tensorboard_scalars(tb / run_id)
    with Store(db) as store:
        stored = {}
        for row in store.run_metrics(run_id):
            stored.setdefault(row["name"], []).append((row["step"], float(np.float32(row["value"]))))
        steps = store.train_steps(run_id)
    edges = ("0->1", "0->2", "1->2")  # tiny64's choices, one weighted edge each
    assert {f"entropy/{e}" for e in edges} <= set(stored)
    for name in ("entropy", "param_free_ops", "argmax_index", *(f"entropy/{e}" for e in edges)):
        assert got[f"strategy/{name}"] == stored[name] and len(stored[name]) == 2, name
    for epoch in range(2):  # the mean of the edges' entropies is the entropy
        mean = np.mean([got[f"strategy/entropy/{e}"][epoch][1] for e in edges])
        assert got["strategy/entropy"][epoch][1] == pytest.approx(mean, rel=1e-5)
    assert got["train/loss"] == list(zip([r["step"] for r in steps], float32([r["loss"] for r in steps])))
    assert [s for s, _ in got["epoch/lr"]] == [s for s, _ in stored["entropy"]]
    assert not any(tag.startswith(("eval/", "dense/")) for tag in got)  # a search scores no children on the way


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


SMALL = ["search", "--space-option", "channels=4", "--space-option", "stem_channels=8", "--no-progress", "--threads",
         "1", "--select", "magnitude"]


@pytest.fixture
def untrained(monkeypatch):
    """The search stores its run's config as usual but trains no epoch: the settings, not the training."""
    from wsnas.training.trainer import SupernetTrainer

    monkeypatch.setattr(SupernetTrainer, "train", lambda self, **kw: {})


def _stored(db, run_id):
    with Store(db) as store:
        return store.get_run(run_id)["config"]


def test_pcdarts_searches_with_its_authors_recipe_unless_a_flag_says_otherwise(tmp_path, capsys, untrained):
    db = str(tmp_path / "r.db")
    assert main([*SMALL, "--strategy", "pcdarts", "--store", db, "--run-dir", str(tmp_path / "a")]) == 0
    config = _stored(db, "search/tiny64/pcdarts-softmax/0")
    train = config["supernet"]["train"]
    # yuhuixu1993/PC-DARTS train_search.py: batch 256, lr 0.1 cosine to 0, Adam 6e-4, 15 warm-up epochs
    assert (train["batch_size"], train["lr"], train["lr_min"]) == (256, 0.1, 0.0)
    assert (train["epochs"], train["momentum"], train["weight_decay"], train["grad_clip"]) == (20, 0.9, 3e-4, 5.0)
    assert "lr_schedule_epochs" not in train
    assert (config["strategy"]["arch_lr"], config["strategy"]["warmup_epochs"]) == (6e-4, 15)
    # every flag given wins over the recipe
    assert main([*SMALL, "--strategy", "pcdarts", "--store", db, "--run", "b", "--run-dir", str(tmp_path / "b"),
                 "--batch-size", "32", "--lr", "0.05", "--lr-min", "0.001", "--arch-lr", "3e-4",
                 "--warmup-epochs", "0", "--epochs", "3", "--lr-schedule-epochs", "6"]) == 0
    config = _stored(db, "b")
    train = config["supernet"]["train"]
    assert (train["batch_size"], train["lr"], train["lr_min"], train["epochs"]) == (32, 0.05, 0.001, 3)
    assert train["lr_schedule_epochs"] == 6
    assert config["strategy"]["arch_lr"] == 3e-4 and "warmup_epochs" not in config["strategy"]
    # DARTS keeps its own (and its runs' identity): no arch_lr, no warm-up, batch 64, lr 0.025 to 0.001
    assert main([*SMALL, "--store", db, "--run-dir", str(tmp_path / "c")]) == 0
    config = _stored(db, "search/tiny64/darts-softmax/0")
    train = config["supernet"]["train"]
    assert (train["batch_size"], train["lr"], train["lr_min"], train["epochs"]) == (64, 0.025, 0.001, 20)
    assert config["strategy"]["arch_lr"] is None and "warmup_epochs" not in config["strategy"]


def test_help_prints_each_strategys_effective_defaults(capsys):
    with pytest.raises(SystemExit) as done:
        main(["search", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    rows = {tuple(line.split()[:2]): line.split() for line in out.splitlines()
            if line.split()[:1] in (["darts"], ["gdas"], ["pcdarts"])}
    # strategy, param: epochs (cifar10/digits), batch, lr, lr_min, architecture step, warm-up
    expected = {
        ("darts", "softmax"): ["50/20", "64", "0.025", "0.001", "Adam", "0.0003,", "wd", "0.001", "0"],
        ("darts", "gaea"): ["50/20", "64", "0.025", "0.001", "EG", "0.1", "0"],
        ("gdas", "softmax"): ["50/20", "64", "0.025", "0.001", "Adam", "0.0003,", "wd", "0.001", "0"],
        ("gdas", "gaea"): ["50/20", "64", "0.025", "0.001", "EG", "0.01", "0"],
        ("pcdarts", "softmax"): ["50/20", "256", "0.1", "0", "Adam", "0.0006,", "wd", "0.001", "15"],
        ("pcdarts", "gaea"): ["50/20", "256", "0.1", "0", "EG", "0.1", "0"],
    }
    assert set(rows) == set(expected)
    for key, values in expected.items():
        assert rows[key][2:2 + len(values)] == values, key
    assert "yuhuixu1993/PC-DARTS train_search.py" in " ".join(rows[("pcdarts", "softmax")])
    assert "gaea-nb201: " in out and "--lr-schedule-epochs 50" in out and "--lr-schedule-epochs N" in out


def test_the_gaea_nb201_preset_sets_the_published_configuration(tmp_path, capsys, untrained):
    db = str(tmp_path / "r.db")
    assert main(["search", "--preset", "gaea-nb201", "--no-progress", "--threads", "1", "--select", "magnitude",
                 "--store", db, "--run-dir", str(tmp_path / "a")]) == 0
    assert "run search/nb201/darts-gaea-single/0" in capsys.readouterr().out
    config = _stored(db, "search/nb201/darts-gaea-single/0")
    assert config["space"] == {"space": "nb201", "channels": 24, "cells_per_stage": 5, "affine": False,
                               "track_running_stats": True, "bn_momentum": 0.1}
    s = config["strategy"]
    assert (s["strategy"], s["param"], s["single_level"], s["exclude"]) == ("darts", "gaea", True, ["none"])
    assert s["arch_lr"] is None and "warmup_epochs" not in s  # GAEA's own eta 0.1
    train = config["supernet"]["train"]
    assert (train["epochs"], train["lr_schedule_epochs"], train["batch_size"], train["lr"], train["lr_min"]) == \
        (25, 50, 64, 0.025, 0.001)
    assert (train["momentum"], train["weight_decay"], train["grad_clip"]) == (0.9, 3e-4, 5.0)
    # flags given explicitly override the preset
    assert main(["search", "--preset", "gaea-nb201", "--no-progress", "--threads", "1", "--select", "magnitude",
                 "--store", db, "--run", "b", "--run-dir", str(tmp_path / "b"), "--space-option", "channels=8",
                 "--no-single-level", "--exclude", "", "--epochs", "3", "--lr-schedule-epochs", "4",
                 "--lr", "0.05"]) == 0
    config = _stored(db, "b")
    assert config["space"]["channels"] == 8 and config["space"]["affine"] is False
    s, train = config["strategy"], config["supernet"]["train"]
    assert (s["param"], s["single_level"], s["exclude"]) == ("gaea", False, [])
    assert (train["epochs"], train["lr_schedule_epochs"], train["lr"], train["batch_size"]) == (3, 4, 0.05, 64)


def test_a_pcdarts_search_with_batch_256_runs_on_digits_with_the_valid_split_for_the_architecture(tmp_path):
    """The recipe's batch of 256: five steps an epoch over digits' 1079 training images, the
    architecture batches cycling over the 359-image valid split (the bilevel half is tested with
    the trainer); with a 1-epoch warm-up the architecture stays, then moves."""
    db = str(tmp_path / "r.db")
    assert main([*SMALL, "--strategy", "pcdarts", "--epochs", "2", "--warmup-epochs", "1", "--arch-split", "valid",
                 "--store", db, "--run", "v", "--run-dir", str(tmp_path / "v")]) == 0
    with Store(db) as store:
        steps = store.train_steps("v")
        entropy = [r["value"] for r in store.run_metrics("v", name="entropy")]
        config = store.get_run("v")["config"]
    assert config["supernet"]["train"]["batch_size"] == 256 and config["strategy"]["warmup_epochs"] == 1
    assert len(steps) == 2 * 5
    assert len(entropy) == 2 and entropy[1] != entropy[0]
