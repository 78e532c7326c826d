"""`wsnas insights --strategy`: PA&DA, its halves, SPOS and FairNAS compared on the 64-child space."""

import math
import sqlite3

import numpy as np
import pytest

from wsnas.analysis.comparison import comparison_findings, epoch_time
from wsnas.cli import main
from wsnas.store import Store

TINY = ["--space-option", "channels=4", "--space-option", "stem_channels=8", "--gt-seeds", "1",
        "--gt-epochs", "1", "--epochs", "3", "--batch-size", "128", "--dense-last", "4",
        "--no-progress", "--threads", "1"]


def _count(db, table):
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_comparison_runs_every_strategy_and_seed_and_reports_them(tmp_path, capsys):
    args = ["insights", "--run-dir", str(tmp_path), *TINY, "--strategy", "spos,pada,pada-data,fairnas",
            "--seeds", "2", "--grad-window", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    db = tmp_path / "results.db"
    with Store(db) as store:
        runs = {r["run_id"]: r for r in store.list_runs("supernet")}
        assert set(runs) == {f"strategies/strategies/{s}/{k}" for s in ("spos", "pada", "pada-data", "fairnas")
                             for k in (0, 1)}
        assert all(r["status"] == "done" for r in runs.values())
        assert runs["strategies/strategies/pada/1"]["config"]["strategy"]["strategy"] == "pada"
        assert runs["strategies/strategies/pada/1"]["seed"] == 1
        # the gradient-variance monitor ran: one window every 3 steps
        windows = store.run_metrics("strategies/strategies/spos/0", name="grad_variance")
        steps = len(store.train_steps("strategies/strategies/spos/0"))
        assert steps > 0 and len(windows) == steps // 3 and all(w["value"] > 0 for w in windows)
        probs = [r for r in store.run_metrics("strategies/strategies/pada/0") if r["name"].startswith("path_prob_")]
        last = max(r["step"] for r in probs)
        assert math.isclose(sum(r["value"] for r in probs if r["step"] == last), 1.0, rel_tol=1e-9)
        exp = store.get_run("strategies")
        assert exp["kind"] == "insights" and set(exp["config"]["comparison"]) == {"spos", "pada", "pada-data",
                                                                                  "fairnas"}
    md = (tmp_path / "strategies" / "report.md").read_text()
    assert "Training strategies compared" in md
    for title in ("SPOS (uniform)", "PA&DA (paths + data)", "PA&DA data only", "FairNAS"):
        assert title in md
    assert (tmp_path / "strategies" / "figures" / "strategies.png").exists()
    assert "PA&DA lowers the supernet's gradient variance (vs SPOS)" in out
    assert "PA&DA raises GT-Tau (vs SPOS)" in out
    assert "data sampling alone" in out
    counts = {t: _count(db, t) for t in ("groundtruth", "predictions", "run_metrics")}
    assert main(args) == 0  # a rerun finds everything done
    assert counts == {t: _count(db, t) for t in counts}
    capsys.readouterr()
    assert main(["report", str(tmp_path / "strategies")]) == 0
    assert "strategies/report.html" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [
    (["--strategy", "darts"], "strategy 'darts' cannot be compared here"),
    (["--strategy", "pada,pada_path,pada"], "listed twice"),
    (["--strategy", ","], "names no strategy"),
    (["--strategy", "pada", "--sweep", "sharing"], "separate studies"),
    (["--strategy", "pada", "--sharing", "group:4"], "does not combine with --sharing"),
    (["--strategy", "pada", "--seeds", "0"], "--seeds must be at least 1"),
    (["--grad-window", "-1"], "--grad-window must be non-negative"),
])
def test_bad_input(tmp_path, capsys, args, fragment):
    assert main(["insights", "--run-dir", str(tmp_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_epoch_time_leaves_out_the_epochs_with_dense_evaluations():
    rows = [{"step": 10 * (e + 1), "value": v} for e, v in enumerate([1.0, 1.2, 1.1, 9.0, 9.5])]
    assert epoch_time(rows, dense_last=15) == pytest.approx(1.1)  # epochs 4 and 5 hold steps 36..50
    assert epoch_time(rows, dense_last=0) == pytest.approx(1.2)
    assert epoch_time(rows, dense_last=100) == pytest.approx(1.2)  # every epoch had some: all of them
    assert epoch_time([], dense_last=0) is None


def _row(name, variance, tau):
    return {"strategy": name, "n": 3, "grad_variance": variance, "grad_relative_variance": 0.5,
            "gt_tau_mean_k": tau, "gt_tau": tau, "gt_tau_sd": 0.05}


def test_findings_state_plainly_whether_pada_helps():
    a = {"comparison": {"k": 64, "grad_window": 16, "rows": [
        _row("spos", 2.0, 0.30), _row("pada", 1.5, 0.25), _row("pada-path", 2.5, 0.40)]}}
    found = {f["claim"]: f["holds"] for f in comparison_findings(a)}
    assert found == {
        "PA&DA lowers the supernet's gradient variance (vs SPOS)": True,
        "PA&DA raises GT-Tau (vs SPOS)": False,
        "path sampling alone lowers the supernet's gradient variance (vs SPOS)": False,
        "path sampling alone raises GT-Tau (vs SPOS)": True,
    }
    evidence = " ".join(f["evidence"] for f in comparison_findings(a))
    assert "-25.0%" in evidence and "GT-Tau-Mean-64 0.250 vs 0.300" in evidence
    # with seeds: a difference within twice its standard error is undecided, a larger one decided
    noisy = {"comparison": {"k": 64, "grad_window": 16, "rows": [
        {**_row("spos", 2.0, 0.30), "seeds": [{"grad_variance": v, "gt_tau_mean_k": t}
                                              for v, t in ((1.0, 0.29), (3.0, 0.30), (2.0, 0.31))]},
        {**_row("pada", 1.9, 0.10), "seeds": [{"grad_variance": v, "gt_tau_mean_k": t}
                                              for v, t in ((0.9, 0.09), (2.9, 0.10), (1.9, 0.11))]}]}}
    found = {f["claim"]: f for f in comparison_findings(noisy)}
    assert found["PA&DA lowers the supernet's gradient variance (vs SPOS)"]["holds"] is None
    assert "within twice its standard error" in found["PA&DA lowers the supernet's gradient variance (vs SPOS)"][
        "evidence"]
    assert found["PA&DA raises GT-Tau (vs SPOS)"]["holds"] is False
    # without the SPOS baseline there is nothing to compare with
    assert comparison_findings({"comparison": {"k": 64, "grad_window": 16, "rows": [_row("pada", 1, 0)]}}) == []


def test_pada_epoch_metrics_follow_tau():
    from wsnas.data.registry import load_dataset
    from wsnas.spaces import get_space
    from wsnas.strategies import get_strategy
    from wsnas.training.standalone import TrainConfig
    from wsnas.training.trainer import SupernetConfig, SupernetTrainer

    data = load_dataset("digits")
    space = get_space("tiny64", channels=4, stem_channels=8)
    strategy = get_strategy("pada")
    cfg = SupernetConfig(train=TrainConfig(epochs=2, batch_size=128), eval_every_epoch=False, dense_last=0)
    trainer = SupernetTrainer(space, data, strategy, cfg, seed=0, run_dir="unused", progress=False)
    trainer.save = lambda: None  # no checkpoint needed
    seen = {}
    end_epoch = strategy.end_epoch

    def record(epoch):  # the gradient norms and importances the epoch's update starts from, and its tau
        seen["norms"] = strategy.norms.copy()
        seen["importance"] = strategy.importance.double().cpu()
        end_epoch(epoch)
        seen["tau"] = strategy.tau

    strategy.end_epoch = record
    trainer.train()
    m = strategy.epoch_metrics()
    # by hand: each edge's probabilities are tau * its ops' share of the gradient norm + (1 - tau) / |O|
    norms, tau = seen["norms"], seen["tau"]
    expected = (tau * norms / norms.sum(1, keepdims=True) + (1 - tau) / norms.shape[1]).mean(0)
    probs = np.array([m[f"path_prob_{op}"] for op in space.choices[0].options])
    assert probs == pytest.approx(expected)
    # max-pool has no parameters, so no gradient norm: only the uniform share is left (the authors' rule)
    assert m["path_prob_max_pool_3x3"] == pytest.approx((1 - tau) / 4)
    assert tau == pytest.approx(1 / 2)  # after epoch 1 (0-based) of 2, the authors' schedule
    # the data: q = tau * g / sum(g) + (1 - tau) / N over the last epoch's importances
    g = seen["importance"]
    q = tau * g / g.sum() + (1 - tau) / len(g)
    assert m["data_ess"] == pytest.approx(float(1 / (len(g) * (q * q).sum())))
    assert 0 < m["data_ess"] < 1
