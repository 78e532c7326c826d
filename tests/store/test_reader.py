"""Tests of the store's readers."""

from __future__ import annotations

import pytest
from conftest import HASH, gt_row

from wsnas.core.errors import WsnasError
from wsnas.store import SCHEMA_VERSION


def test_groundtruth_done(store):
    store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.6),
                                gt_row("111", 0, 1, 0.55), gt_row("113", 2, 0, 0.7, epochs=9)])
    assert store.groundtruth_done("tiny64", "digits", 3, HASH) == {
        ("111", 0), ("112", 0), ("111", 1)}
    assert store.groundtruth_done("tiny64", "digits", 9, HASH) == {("113", 0)}
    assert store.groundtruth_done("tiny64", "cifar10", 3, HASH) == set()
    assert store.groundtruth_done("tiny64", "digits", 3, "0" * 16) == set()


def test_groundtruth_values_of_one_metric_skip_missing_values(store):
    store.add_groundtruth_many([
        gt_row("113", 7, 0, 0.9), gt_row("111", 2, 1, 0.7), gt_row("111", 2, 0, 0.5),
        gt_row("112", 4, 0, 0.6, train_acc=0.95), gt_row("111", 2, 2, 0.4, dataset="cifar10"),
    ])
    # filtered, by arch_index, arch then seed, whatever the insertion order
    assert store.groundtruth_values("test_acc", dataset="digits", config_hash=HASH, epochs=3) == [
        {"arch": "111", "arch_index": 2, "seed": 0, "value": 0.5},
        {"arch": "111", "arch_index": 2, "seed": 1, "value": 0.7},
        {"arch": "112", "arch_index": 4, "seed": 0, "value": 0.6},
        {"arch": "113", "arch_index": 7, "seed": 0, "value": 0.9},
    ]
    assert [r["value"] for r in store.groundtruth_values("test_acc")] == [0.5, 0.7, 0.4, 0.6, 0.9]
    assert [r["value"] for r in store.groundtruth_values("valid_acc", space="tiny64", dataset="cifar10")] == [0.2]
    # rows without a value of the metric are left out
    assert store.groundtruth_values("train_acc") == [{"arch": "112", "arch_index": 4, "seed": 0, "value": 0.95}]
    assert store.groundtruth_values("test_acc", epochs=9) == []
    with pytest.raises(WsnasError, match="'test_loss' is not one of valid_acc, test_acc, train_acc"):
        store.groundtruth_values("test_loss")


def test_overview_gathers_the_file_tables_groundtruth_sets_and_runs(store):
    store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("111", 0, 1, 0.6)])
    store.ensure_run("r", "supernet", {"strategy": "uniform"}, seed=0)
    info = store.overview()
    assert info["path"] == store.path.resolve() and info["schema_version"] == SCHEMA_VERSION
    assert info["meta"] == store.meta() and info["tables"] == store.tables()
    assert info["tables"]["groundtruth"] == 2 and info["tables"]["runs"] == 1
    assert [(s["space"], s["archs"], s["seeds"]) for s in info["groundtruth"]] == [("tiny64", 1, 2)]
    assert [r["run_id"] for r in info["runs"]] == ["r"]
