"""`wsnas insights --strategy`: PA&DA, its halves, SPOS and FairNAS compared on the 64-child space
(PA&DA's credit rules side by side: an entry with options, ``pada:credit=path``)."""

import math
import sqlite3

import numpy as np
import pytest

from wsnas.analysis.comparison import comparison_findings, epoch_time
from wsnas.cli import main
from wsnas.store import Store

TINY = ["--space-option", "channels=4", "--space-option", "stem_channels=8", "--gt-seeds", "1",
        "--gt-epochs", "1", "--epochs", "3", "--batch-size", "128", "--dense-last", "4",
        "--no-progress", "--threads", "1", "--data-option", "limit=200"]


def _count(db, table):
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_comparison_runs_every_strategy_and_seed_and_reports_them(tmp_path, capsys):
    entries = ("spos", "pada", "pada-data", "fairnas", "pada:credit=path")
    args = ["insights", "--run-dir", str(tmp_path), *TINY, "--strategy", ",".join(entries),
            "--seeds", "2", "--grad-window", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    db = tmp_path / "results.db"
    with Store(db) as store:
        runs = {r["run_id"]: r for r in store.list_runs("supernet")}
        assert set(runs) == {f"strategies/strategies/{s}/{k}" for s in entries for k in (0, 1)}
        assert all(r["status"] == "done" for r in runs.values())
        assert runs["strategies/strategies/pada/1"]["config"]["strategy"] == {
            "strategy": "pada", "paths": True, "data": True, "per_edge": False}  # no credit key: as before
        assert runs["strategies/strategies/pada/1"]["seed"] == 1
        assert runs["strategies/strategies/pada:credit=path/1"]["config"]["strategy"] == {
            "strategy": "pada", "paths": True, "data": True, "per_edge": False, "credit": "path"}
        assert runs["strategies/strategies/pada:credit=path/1"]["seed"] == 1
        assert (tmp_path / "strategies" / "pada-credit-path-1").is_dir()
        # the gradient-variance monitor ran: one window every 3 steps
        windows = store.run_metrics("strategies/strategies/spos/0", name="grad_variance")
        steps = len(store.train_steps("strategies/strategies/spos/0"))
        assert steps > 0 and len(windows) == steps // 3 and all(w["value"] > 0 for w in windows)
        probs = [r for r in store.run_metrics("strategies/strategies/pada/0") if r["name"].startswith("path_prob_")]
        last = max(r["step"] for r in probs)
        assert math.isclose(sum(r["value"] for r in probs if r["step"] == last), 1.0, rel_tol=1e-9)
        # the path rule credits max-pool too: its probability stays above the ops rule's (1 - tau) / 4
        final = {r["name"]: r["value"] for r in store.run_metrics("strategies/strategies/pada:credit=path/0")
                 if r["name"].startswith("path_prob_") and r["step"] == last}
        assert final["path_prob_max_pool_3x3"] > (1 - 2 / 3) / 4 + 0.01
        exp = store.get_run("strategies")
        assert exp["kind"] == "insights" and set(exp["config"]["comparison"]) == set(entries)
        assert exp["config"]["comparison"]["pada"] == {"run_ids": [f"strategies/strategies/pada/{k}" for k in (0, 1)],
                                                       "strategy": "pada"}
        assert exp["config"]["comparison"]["pada:credit=path"]["options"] == {"credit": "path"}
    md = (tmp_path / "strategies" / "report.md").read_text()
    assert "Training strategies compared" in md
    for title in ("SPOS (uniform)", "PA&DA (paths + data), credit=ops", "PA&DA data only", "FairNAS",
                  "PA&DA (paths + data), credit=path"):
        assert title in md
    assert (tmp_path / "strategies" / "figures" / "strategies.png").exists()
    assert "PA&DA (credit=ops) lowers the supernet's gradient variance (vs SPOS)" in out
    assert "PA&DA (credit=ops) raises GT-Tau (vs SPOS)" in out
    assert "data sampling alone" in out
    assert "PA&DA (credit=path) raises GT-Tau (vs SPOS)" in out
    assert "PA&DA (credit=path) lowers the supernet's gradient variance (vs PA&DA with credit=ops)" in out
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
    (["--strategy", "spos,pada:foo=1"], "strategy entry 'pada:foo=1': pada has no option 'foo'; accepted: "
                                        "per_edge (default false), credit (default ops)"),
    (["--strategy", "pada:credit=bogus"], "unknown PA&DA credit rule 'bogus'; accepted: ops"),
    (["--strategy", "pada:per_edge=maybe"], "option per_edge takes true or false, not 'maybe'"),
    (["--strategy", "pada-data:credit=path"], "pada-data has no option 'credit'; accepted: none"),
    (["--strategy", "pada:credit"], "option 'credit' must look like KEY=VALUE"),
    (["--strategy", "pada:credit=path,pada_path,pada:credit=path"], "listed twice"),
    (["--strategy", "pada,pada:credit=ops"], "listed twice"),  # the default: the same entry
])
def test_bad_input(tmp_path, capsys, args, fragment):
    assert main(["insights", "--run-dir", str(tmp_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_strategy_entries_keep_plain_labels_and_run_ids(tmp_path):
    from wsnas.experiments.insights import InsightsConfig, comparison_runs, parse_strategy_entry, study_instances

    assert parse_strategy_entry("pada_path").label == "pada-path"
    assert parse_strategy_entry("uniform").label == "spos"
    assert parse_strategy_entry("pada:credit=ops").label == "pada"  # an option at its default is dropped
    entry = parse_strategy_entry("PADA:per-edge=True:credit=path")
    assert entry.label == "pada:credit=path:per_edge=true"
    assert entry.options == (("credit", "path"), ("per_edge", True))
    assert entry.defaults == {"credit": "ops", "per_edge": False}
    cfg = InsightsConfig(instances={"seeds": 0}, strategies=("spos", "pada_path", "fixed-order", "pada:credit=path"),
                         strategy_seeds=2).validate()
    assert comparison_runs("strategies", cfg) == {
        "spos": ["strategies/strategies/spos/0", "strategies/strategies/spos/1"],
        "pada-path": ["strategies/strategies/pada-path/0", "strategies/strategies/pada-path/1"],
        "fixed-order": ["strategies/strategies/fixed-order/0", "strategies/strategies/fixed-order/1"],
        "pada:credit=path": ["strategies/strategies/pada:credit=path/0", "strategies/strategies/pada:credit=path/1"],
    }
    insts = {i.run_id: i for i in study_instances("strategies", cfg, tmp_path)}
    plain, order, path = (insts[f"strategies/strategies/{s}/1"] for s in ("pada-path", "fixed-order",
                                                                         "pada:credit=path"))
    assert (plain.run_dir, plain.strategy, plain.options) == (str(tmp_path / "strategies" / "pada-path-1"),
                                                              "pada-path", ())
    assert plain.build_strategy().describe() == {"strategy": "pada-path", "paths": True, "data": False,
                                                 "per_edge": False}
    assert order.build_strategy().order_seed == 1
    assert path.run_dir == str(tmp_path / "strategies" / "pada-credit-path-1")
    assert path.build_strategy().describe()["credit"] == "path"
    assert cfg.to_dict()["strategies"] == ["spos", "pada_path", "fixed-order", "pada:credit=path"]


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
    # PA&DA's path credit rule: its own row, against SPOS and against the default rule
    variant = {**_row("pada:credit=path", 1.0, 0.35), "base": "pada", "options": {"credit": "path"},
               "defaults": {"credit": "ops"}}
    plain = {**_row("pada", 1.5, 0.25), "base": "pada", "options": {}, "defaults": {"credit": "ops"}}
    a = {"comparison": {"k": 64, "grad_window": 16, "rows": [_row("spos", 2.0, 0.30), plain, variant]}}
    found = {f["claim"]: f["holds"] for f in comparison_findings(a)}
    assert found == {  # both rules named
        "PA&DA (credit=ops) lowers the supernet's gradient variance (vs SPOS)": True,
        "PA&DA (credit=ops) raises GT-Tau (vs SPOS)": False,
        "PA&DA (credit=path) lowers the supernet's gradient variance (vs SPOS)": True,
        "PA&DA (credit=path) raises GT-Tau (vs SPOS)": True,
        "PA&DA (credit=path) lowers the supernet's gradient variance (vs PA&DA with credit=ops)": True,
        "PA&DA (credit=path) raises GT-Tau (vs PA&DA with credit=ops)": True,
    }
    evidence = [f["evidence"] for f in comparison_findings(a)]
    assert "GT-Tau-Mean-64 0.350 vs 0.250" in evidence[-1]
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
