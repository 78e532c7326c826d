"""Tests of the store's readers."""

from __future__ import annotations

import numpy as np
import pytest
from store_rows import HASH, gt_row

from wsnas.core.errors import WsnasError


def test_groundtruth_done(store):
    store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.6),
                                gt_row("111", 0, 1, 0.55), gt_row("113", 2, 0, 0.7, epochs=9)])
    assert store.groundtruth_done("tiny64", "digits", 3, HASH) == {
        ("111", 0), ("112", 0), ("111", 1)}
    assert store.groundtruth_done("tiny64", "digits", 9, HASH) == {("113", 0)}
    assert store.groundtruth_done("tiny64", "cifar10", 3, HASH) == set()
    assert store.groundtruth_done("tiny64", "digits", 3, "0" * 16) == set()



def test_truth_table_means_per_seed_and_order(store):
    # inserted out of index order; arch 113 has no seed-1 result
    store.add_groundtruth_many([
        gt_row("113", 7, 0, 0.9), gt_row("111", 2, 0, 0.5), gt_row("112", 4, 0, 0.6),
        gt_row("111", 2, 1, 0.7), gt_row("112", 4, 1, 0.8),
    ])
    table = store.truth_table()
    assert (table.space, table.dataset) == ("tiny64", "digits")
    assert table.archs == ["111", "112", "113"]
    assert table.indices == [2, 4, 7]
    np.testing.assert_allclose(table.accuracy, [0.6, 0.7, 0.9])
    assert sorted(table.per_seed) == [0, 1]
    np.testing.assert_allclose(table.per_seed[0], [0.5, 0.6, 0.9])
    np.testing.assert_allclose(table.per_seed[1], [0.7, 0.8, np.nan])
    assert table.position("112") == 1 and table.position(7) == 2
    assert HASH in table.source and "2 seeds" in table.source

    valid = store.truth_table(metric="valid_acc")
    np.testing.assert_allclose(valid.accuracy, [0.3, 0.35, 0.45])
    with pytest.raises(WsnasError, match="'test_loss' is not one of valid_acc, test_acc"):
        store.truth_table(metric="test_loss")
    with pytest.raises(WsnasError, match="no train_acc values"):
        store.truth_table(metric="train_acc")


def test_truth_table_ambiguity_and_empty_errors(store):
    with pytest.raises(WsnasError, match="no ground truth yet"):
        store.truth_table()
    store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("111", 0, 0, 0.6,
                                                                  dataset="cifar10")])
    with pytest.raises(WsnasError) as info:
        store.truth_table(space="tiny64")
    message = str(info.value)
    assert "2 combinations" in message
    assert f"(tiny64, cifar10, {HASH}, 3 epochs)" in message
    assert f"(tiny64, digits, {HASH}, 3 epochs)" in message
    assert "choose one with the dataset option" in message
    assert store.truth_table(dataset="cifar10").accuracy.tolist() == [0.6]

    with pytest.raises(WsnasError) as info:
        store.truth_table(space="nb201", dataset="cifar10")
    message = str(info.value)
    assert "space='nb201', dataset='cifar10', config_hash=any" in message
    assert "the store has space='tiny64'" in message
