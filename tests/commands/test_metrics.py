"""Tests of the ``wsnas metrics`` command through ``wsnas.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wsnas import cli
from wsnas.groundtruth.truth import load_truth
from wsnas.metrics import evaluate_rows

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SUPERNET_LOG = SHARED_DATA / "tiny64_cifar10_supernet_last128.csv"


@pytest.fixture
def wsnas_main(monkeypatch):
    """``cli.main`` with only the metrics command registered.

    The parser imports every registered command module; restricting the registry keeps these
    tests independent of the other commands (and of their heavier imports).
    """
    monkeypatch.setattr(cli, "COMMANDS", {"metrics": cli.COMMANDS["metrics"]})
    return cli.main


@pytest.fixture
def pred_file(tmp_path) -> Path:
    """A small synthetic predictions file over all 64 tiny64 children (index columns)."""
    truth = load_truth("tiny64-cifar10")
    rng = np.random.default_rng(0)
    values = truth.accuracy + rng.normal(scale=0.03, size=(10, 64))
    lines = [",".join([""] + [str(i) for i in range(64)])]
    for step, row in enumerate(values, start=100):
        lines.append(",".join([str(step)] + [f"{v:.5f}" for v in row]))
    path = tmp_path / "pred.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _library_result(path: Path, k: int = 64):
    truth = load_truth("tiny64-cifar10")
    text = path.read_text().splitlines()
    columns = text[0].split(",")[1:]
    labels = [line.split(",")[0] for line in text[1:]]
    values = np.array([[float(c) for c in line.split(",")[1:]] for line in text[1:]])
    positions = [truth.position(c) for c in columns]
    return evaluate_rows(values, truth.accuracy[positions], k=k, row_labels=labels)


def test_table_output_contains_the_summary(wsnas_main, pred_file, capsys):
    assert wsnas_main(["metrics", "--pred", str(pred_file), "--truth", "tiny64-cifar10"]) == 0
    out = capsys.readouterr().out
    expected = _library_result(pred_file)
    assert expected.k == 10  # K = min(64, rows)
    assert f"{expected.gt_tau_mean:.4f} +/- {expected.gt_tau_std:.4f}" in out
    assert "GT-Tau-Mean-10 +/- Std-10:" in out
    assert f"last row {expected.top_rank_last[1]}, mean over the last 10 rows" in out
    assert f"mean over the last 10 rows {expected.top_rank_mean[3]:.2f}" in out
    assert "64 of 64 matched" in out
    lines = out.splitlines()
    assert lines[0].split() == ["row", "GT-Tau", "Spearman", "T1R", "T3R", "P@5"]
    assert lines[1].split()[0] == "100" and lines[10].split()[0] == "109"
    assert lines[1].split()[1] == f"{expected.gt_tau[0]:.4f}"


def test_rows_summary_only(wsnas_main, pred_file, capsys):
    args = ["metrics", "--pred", str(pred_file), "--truth", "tiny64-cifar10", "--rows", "summary"]
    assert wsnas_main(args) == 0
    out = capsys.readouterr().out
    assert "Spearman  T1R" not in out and out.startswith("ground truth:")


def test_json_matches_the_library(wsnas_main, pred_file, capsys):
    args = ["metrics", "--pred", str(pred_file), "--truth", "tiny64-cifar10", "--json",
            "--last", "4"]
    assert wsnas_main(args) == 0
    data = json.loads(capsys.readouterr().out)
    expected = _library_result(pred_file, k=4)
    assert data["matched"] == 64 and data["truth"]["source"] == "tiny64-cifar10"
    assert data["summary"] == expected.summary()
    assert data["summary"]["gt_tau_mean_4"] == pytest.approx(expected.gt_tau_mean, abs=1e-15)
    assert [r["gt_tau"] for r in data["rows"]] == pytest.approx(expected.gt_tau.tolist())
    assert [r["t3r"] for r in data["rows"]] == expected.top_rank[3].tolist()


def test_real_log_through_the_cli(wsnas_main, capsys):
    if not SUPERNET_LOG.is_file():
        pytest.skip(f"shared data file {SUPERNET_LOG} is absent (needs the project's shared/ dir)")
    args = ["metrics", "--pred", str(SUPERNET_LOG), "--truth", "tiny64-cifar10", "--json",
            "--rows", "summary"]
    assert wsnas_main(args) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["rows"] == 128 and summary["k"] == 64
    assert 0.45 <= summary["gt_tau_mean_64"] <= 0.57


def test_arch_string_columns_in_any_order_give_the_same_result(wsnas_main, pred_file, tmp_path,
                                                              capsys):
    truth = load_truth("tiny64-cifar10")
    lines = [line.split(",") for line in pred_file.read_text().splitlines()]
    order = np.random.default_rng(1).permutation(64)
    renamed = [["step"] + [truth.archs[j] for j in order]]  # headers 111..444, shuffled
    renamed += [[row[0]] + [row[1 + j] for j in order] for row in lines[1:]]
    other = tmp_path / "by_arch.csv"
    other.write_text("\n".join(",".join(r) for r in renamed) + "\n")
    wsnas_main(["metrics", "--pred", str(pred_file), "--truth", "tiny64-cifar10", "--json"])
    first = json.loads(capsys.readouterr().out)
    wsnas_main(["metrics", "--pred", str(other), "--truth", "tiny64-cifar10", "--json"])
    second = json.loads(capsys.readouterr().out)
    assert first["summary"] == pytest.approx(second["summary"])


def test_subset_of_the_truth_is_reported(wsnas_main, tmp_path, capsys):
    path = tmp_path / "subset.csv"
    rng = np.random.default_rng(2)
    path.write_text("step," + ",".join(str(i) for i in range(40)) + "\n"
                    + "1," + ",".join(f"{v:.4f}" for v in rng.uniform(size=40)) + "\n")
    assert wsnas_main(["metrics", "--pred", str(path), "--truth", "tiny64-cifar10"]) == 0
    out = capsys.readouterr().out
    assert "40 of 64 matched" in out and "common architectures" in out


def test_column_not_in_truth_exits_2(wsnas_main, tmp_path, capsys):
    path = tmp_path / "bad_column.csv"
    path.write_text("step,111,112,919\n1,0.5,0.6,0.7\n")
    assert wsnas_main(["metrics", "--pred", str(path), "--truth", "tiny64-cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wsnas metrics: error:")
    assert "'919'" in err and "tiny64-cifar10" in err


def test_unknown_truth_exits_2(wsnas_main, pred_file, capsys):
    assert wsnas_main(["metrics", "--pred", str(pred_file), "--truth", "tiny65-cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'tiny65-cifar10'" in err
    assert "built-in name (tiny64-cifar10)" in err


def test_missing_pred_file_exits_2(wsnas_main, tmp_path, capsys):
    missing = tmp_path / "no_such_predictions.csv"
    assert wsnas_main(["metrics", "--pred", str(missing), "--truth", "tiny64-cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err


def test_bad_last_exits_2(wsnas_main, pred_file, capsys):
    args = ["metrics", "--pred", str(pred_file), "--truth", "tiny64-cifar10", "--last", "0"]
    assert wsnas_main(args) == 2
    assert "--last 0" in capsys.readouterr().err


def test_csv_truth_round_trips(wsnas_main, pred_file, tmp_path, capsys):
    """A CSV truth written here (percent, shuffled rows) gives the built-in table's results."""
    builtin = load_truth("tiny64-cifar10")
    order = np.random.default_rng(3).permutation(64)
    lines = ["index,arch,test_acc"]
    lines += [f"{builtin.indices[j]},{builtin.archs[j]},{100 * builtin.accuracy[j]:.3f}"
              for j in order]
    truth_path = tmp_path / "truth.csv"
    truth_path.write_text("\n".join(lines) + "\n")

    loaded = load_truth(str(truth_path))
    assert loaded.archs == [builtin.archs[j] for j in order]
    np.testing.assert_allclose(loaded.accuracy, builtin.accuracy[order], atol=1e-12)

    wsnas_main(["metrics", "--pred", str(pred_file), "--truth", "tiny64-cifar10", "--json"])
    from_builtin = json.loads(capsys.readouterr().out)
    assert wsnas_main(["metrics", "--pred", str(pred_file), "--truth", str(truth_path),
                       "--json"]) == 0
    from_csv = json.loads(capsys.readouterr().out)
    assert from_csv["truth"]["source"] == str(truth_path)
    assert from_csv["summary"] == pytest.approx(from_builtin["summary"])
    assert from_csv["rows"] == from_builtin["rows"]


def test_a_store_truth_with_text_in_a_numeric_column_is_one_line(wsnas_main, pred_file, tmp_path, capsys):
    import sqlite3

    from conftest import gt_row

    from wsnas.store import Store

    db = tmp_path / "truth.db"
    with Store(db) as store:
        store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.6)])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE groundtruth SET test_acc = '60%' WHERE arch = '112'")
    conn.close()
    assert wsnas_main(["metrics", "--pred", str(pred_file), "--truth", str(db)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert (f"results store '{db}' is damaged: table groundtruth, column test_acc, row with arch '112', seed 0 "
            "holds '60%', not a number") in captured.err
