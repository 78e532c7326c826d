"""A uniform supernet on nb201, end to end on digits, ranked against a generated benchmark table."""

import csv
import gzip
import shutil

import numpy as np
import pytest
from scipy.stats import kendalltau

from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.groundtruth.benchmarks.nb201 import BENCHMARK_COLUMNS, default_table_path
from wsnas.groundtruth.truth import load_truth
from wsnas.spaces import get_space
from wsnas.store import Store

SMALL = ["--space", "nb201", "--space-option", "channels=4", "--space-option", "cells_per_stage=1",
         "--batch-size", "128", "--no-progress", "--threads", "1"]


def _benchmark_table(path):
    """A converted table (the `wsnas benchmark convert` format) for every cell, in official order."""
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(BENCHMARK_COLUMNS)
        for i, arch in enumerate(space.enumerate()):
            acc = rng.uniform(0.1, 0.95)
            w.writerow([i, space.format(arch), "cifar10", 200, "", f"{acc:.6f}", 1.0, 100.0, 0.01, 3])
    return path


def test_uniform_supernet_ranks_a_sample_against_the_benchmark(tmp_path, capsys):
    table = _benchmark_table(tmp_path / "nb201.csv")
    db = tmp_path / "r.db"
    code = main(["supernet", *SMALL, "--strategy", "uniform", "--sample", "10", "--sample-seed", "3",
                 "--epochs", "2", "--store", str(db), "--run-dir", str(tmp_path / "run"),
                 "--truth", f"nb201-cifar10:{table}"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "10 children evaluated" in out and "GT-Tau" in out
    # the printed GT-Tau equals scipy's on the stored final predictions and the table's accuracies
    space = get_space("nb201")
    with Store(db) as store:
        labels, archs, matrix = store.prediction_matrix("supernet/uniform/0")
    final = matrix[labels.index("epoch:2")]
    truth = {}
    with open(table) as f:
        for row in csv.DictReader(f):
            truth[row["arch"]] = float(row["test_acc"])
    expected = kendalltau(final, [truth[a] for a in archs]).statistic
    assert f"GT-Tau {expected:.4f}" in out
    assert sorted(archs) == sorted(space.format(a) for a in space.sample(10, 3))


def test_groundtruth_on_nb201_with_official_names(tmp_path, capsys):
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    assert main(["groundtruth", *SMALL, "--archs", f"{arch};123", "--epochs", "1",
                 "--store", str(tmp_path / "g.db")]) == 0
    with Store(tmp_path / "g.db") as store:
        rows = store.groundtruth()
    space = get_space("nb201")
    assert {r["arch"] for r in rows} == {arch, space.format(space.from_index(123))}
    assert {r["arch_index"] for r in rows} == {space.index(space.parse(arch)), 123}


def test_truth_by_name_uses_the_default_converted_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WSNAS_HOME", str(tmp_path / "home"))
    with pytest.raises(WsnasError, match="no converted NAS-Bench-201 table at .*wsnas benchmark convert"):
        load_truth("nb201-cifar10")
    path = default_table_path()
    path.parent.mkdir(parents=True)
    plain = _benchmark_table(tmp_path / "t.csv")
    with open(plain, "rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    truth = load_truth("nb201-cifar10")
    assert len(truth) == 15625 and truth.space == "nb201"
    assert main(["benchmark", "query", "--arch", "123", "--dataset", "cifar10"]) == 0
    assert "cifar10" in capsys.readouterr().out


@pytest.mark.parametrize(("dataset", "classes"), [("cifar100", 100), ("ImageNet16-120", 120)])
def test_supernet_on_cifar100_and_imagenet16_against_their_benchmark_tables(tmp_path, capsys, dataset, classes):
    """`--data cifar100 --truth nb201-cifar100` (and ImageNet16-120): generated official files, a
    generated table with both datasets (x-valid / x-test), a tiny uniform supernet."""
    from conftest import write_cifar100, write_imagenet16

    if dataset == "cifar100":
        write_cifar100(tmp_path / "data" / "cifar-100-python")
    else:
        write_imagenet16(tmp_path / "data" / "ImageNet16")
    space = get_space("nb201")
    archs = [space.format(a) for a in space.sample(6, 3)]
    rng = np.random.default_rng(1)
    table = tmp_path / "nb201.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(BENCHMARK_COLUMNS)
        for name in ("cifar10", "cifar100", "ImageNet16-120"):
            for arch in archs:
                acc = rng.uniform(0.1, 0.7)
                w.writerow([space.index(space.parse(arch)), arch, name, 200, f"{acc:.6f}", f"{acc - 0.01:.6f}",
                            1.0, 100.0, 0.01, 3])
    db = tmp_path / "r.db"
    code = main(["supernet", *SMALL, "--strategy", "uniform", "--sample", "6", "--sample-seed", "3", "--epochs", "1",
                 "--data", dataset, "--data-dir", str(tmp_path / "data"), "--store", str(db),
                 "--run-dir", str(tmp_path / "run"), "--truth", f"nb201-{dataset}:{table}"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "6 children evaluated" in out and f"against nb201-{dataset}:{table}: GT-Tau" in out
    with Store(db) as store:
        config = store.get_run("supernet/uniform/0")["config"]
        labels, names, _ = store.prediction_matrix("supernet/uniform/0")
    assert config["data"]["name"] == dataset and config["data"]["num_classes"] == classes
    assert config["data"]["settings"] == {"split": "nb201"} and sorted(names) == sorted(archs)
