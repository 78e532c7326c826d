import re

import numpy as np
import pytest
from conftest import float32, tensorboard_scalars

from wsnas import metrics
from wsnas.cli import main
from wsnas.groundtruth.truth import load_truth
from wsnas.store import Store

SMALL = ["--space-option", "channels=4", "--space-option", "stem_channels=8", "--batch-size", "128",
         "--no-progress", "--threads", "1"]


def test_train_rank_compare_and_resume(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    archs = "111,124,232,343,414,441,222,333"
    assert main(["groundtruth", "--archs", archs, "--epochs", "1", "--store", db, *SMALL]) == 0
    capsys.readouterr()
    args = ["supernet", "--strategy", "round_robin", "--archs", archs, "--epochs", "2", "--dense-last", "3",
            "--store", db, "--run-dir", str(tmp_path / "run"), "--truth", "store", *SMALL]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "run supernet/round_robin/0: 2 epochs, 8 children evaluated" in out
    assert "GT-Tau" in out and "T1R" in out
    with Store(db) as store:
        labels = store.checkpoints("supernet/round_robin/0")
        assert sum(lab.startswith("epoch:") for lab in labels) == 2
        assert sum(lab.startswith("step:") for lab in labels) == 3
        n_preds = len(store.predictions("supernet/round_robin/0"))
    assert main(args) == 0  # finished: resumes from the last checkpoint, trains nothing more
    out2 = capsys.readouterr().out
    assert "(resumed)" in out2
    assert out.splitlines()[1:] == out2.splitlines()[1:]
    with Store(db) as store:
        assert len(store.predictions("supernet/round_robin/0")) == n_preds


def test_a_diverging_supernet_is_one_line_and_its_run_is_marked_diverged(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    code = main(["supernet", "--strategy", "uniform", "--archs", "111,222,333", "--epochs", "2", "--lr", "1e30",
                 "--store", db, "--run-dir", str(tmp_path / "run"), "--data-option", "limit=200", *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert re.match(r"wsnas supernet: error: supernet run 'supernet/uniform/0' diverged at epoch 1 "
                    r"\(train loss (nan|-?inf)\)", err)
    with Store(db, read_only=True) as store:
        assert store.get_run("supernet/uniform/0")["status"] == "diverged"
        assert store.checkpoints("supernet/uniform/0") == [] and store.train_steps("supernet/uniform/0") == []
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_sampled_children_and_recal(tmp_path, capsys):
    db = str(tmp_path / "r.db")
    assert main(["supernet", "--strategy", "spos", "--sample", "5", "--epochs", "1", "--bn-mode", "recal",
                 "--recal-batches", "2", "--store", db, "--run-dir", str(tmp_path / "run"),
                 "--truth", "tiny64-cifar10", *SMALL]) == 0
    assert "5 children evaluated" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [
    (["--strategy", "darts"], "`wsnas search --strategy darts`"),
    (["--strategy", "dart"], "unknown strategy 'dart'"),
    (["--truth", "store"], "no ground truth"),
    (["--dense-last", "-1"], "--dense-last must be non-negative"),
])
def test_bad_input(tmp_path, capsys, args, fragment):
    code = main(["supernet", "--store", str(tmp_path / "x.db"), "--run-dir", str(tmp_path / "run"),
                 "--epochs", "1", *SMALL, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err.lower() and "\n" not in err


@pytest.mark.parametrize("args, fragment", [
    (["--strategy", "pada", "--sharing", "group:2"], "unknown order within groups 'pada'"),
    (["--dense-last", "-1"], "--dense-last must be non-negative"),
    (["--strategy", "pada", "--pada-credit", "edges"], "unknown PA&DA credit rule 'edges'; accepted: ops"),
    (["--strategy", "pada-data", "--pada-credit", "path"], "--pada-credit applies to pada and pada-path"),
    (["--strategy", "spos", "--pada-credit", "ops"], "--pada-credit applies to pada and pada-path"),
])
def test_bad_input_is_refused_before_any_work(tmp_path, capsys, args, fragment):
    """No store, no run directory: the error comes before the data are loaded or anything is written."""
    code = main(["supernet", "--store", str(tmp_path / "x.db"), "--run-dir", str(tmp_path / "run"),
                 "--epochs", "1", *SMALL, *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "run").exists()


def test_tensorboard_curves_follow_the_run_and_its_gt_tau(tmp_path, capsys):
    """--tensorboard DIR: the run's curves in DIR/<run id>, read back from the event files, hold what the
    store holds, GT-Tau after every epoch included; the final one is the one the command prints."""
    db, tb = str(tmp_path / "r.db"), tmp_path / "tb"
    args = ["supernet", "--strategy", "pada", "--archs", "111,124,232,343,414,441,222,333", "--epochs", "2",
            "--dense-last", "2", "--grad-window", "4", "--data-option", "limit=200", "--store", db, "--run-dir",
            str(tmp_path / "run"), "--truth", "tiny64-cifar10", "--tensorboard", str(tb), *SMALL]
    assert main(args) == 0
    printed = float(re.search(r"GT-Tau (-?[0-9.]+)", capsys.readouterr().out).group(1))
    run_id = "supernet/pada/0"
    assert [p.relative_to(tb).parent.as_posix() for p in tb.rglob("events.out.tfevents.*")] == [run_id]
    got = tensorboard_scalars(tb / run_id)
    truth = load_truth("tiny64-cifar10")
    with Store(db) as store:
        labels, names, matrix = store.prediction_matrix(run_id)
        steps = store.train_steps(run_id)
        epoch_ends = [r["step"] for r in store.run_metrics(run_id, name="train_loss")]
        probs = {r["name"]: r["value"] for r in store.run_metrics(run_id) if r["name"].startswith("path_prob_")
                 and r["step"] == epoch_ends[-1]}
        windows = store.run_metrics(run_id, name="grad_variance")
    gt = truth.accuracy[[truth.position(n) for n in names]]
    taus = [metrics.gt_tau(matrix[labels.index(f"epoch:{e}")], gt) for e in (1, 2)]
    assert got["eval/gt_tau"] == list(zip(epoch_ends, float32(taus)))
    assert round(got["eval/gt_tau"][-1][1], 4) == pytest.approx(printed, abs=1e-4)
    assert [s for s, _ in got["dense/gt_tau"]] == [epoch_ends[-1] - 1, epoch_ends[-1]]
    assert got["train/loss"] == list(zip([r["step"] for r in steps], float32([r["loss"] for r in steps])))
    assert [s for s, _ in got["epoch/lr"]] == epoch_ends
    assert {f"strategy/{k}": float(np.float32(v)) for k, v in probs.items()} == {
        tag: points[-1][1] for tag, points in got.items() if tag.startswith("strategy/path_prob_")}
    assert got["gradient/grad_variance"] == [(r["step"], float(np.float32(r["value"]))) for r in windows]
    assert main(args) == 0  # finished: the rerun trains nothing and adds no point
    assert tensorboard_scalars(tb / run_id) == got


def test_run_id_passes_through_torchrun_to_wsnas_supernet():
    """torchrun's parser takes ``--run`` for its ``--run-path``; ``--run-id`` reaches wsnas."""
    from torch.distributed.run import get_args_parser

    from wsnas.cli import build_parser

    tail = ["supernet", "--epochs", "1", "--run-id", "dp-uniform"]
    with pytest.raises(SystemExit):  # what the docs avoid: 'ambiguous option: --run'
        get_args_parser().parse_args(["--nproc_per_node", "2", "-m", "wsnas",
                                      "supernet", "--run", "dp-uniform"])
    launched = get_args_parser().parse_args(["--standalone", "--nproc_per_node", "2", "-m", "wsnas", *tail])
    assert launched.training_script == "wsnas" and launched.training_script_args == tail
    assert build_parser().parse_args(launched.training_script_args).run == "dp-uniform"
