"""Tests of building ground-truth tables from a results store and of resolving a ``--truth`` spec."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CONFIG, HASH, gt_row

from wsnas.core.errors import WsnasError
from wsnas.groundtruth.table import TruthTable
from wsnas.groundtruth.truth import BUILTIN_TRUTHS, load_truth, resolve_truth, score_predictions, truth_from_store
from wsnas.metrics import evaluate_rows
from wsnas.spaces import get_space
from wsnas.store import Store, config_hash


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "wsnas.db") as s:
        yield s


# ----------------------------------------------------------------------------- truth_from_store


def test_truth_from_store_means_per_seed_and_order(store):
    # inserted out of index order; arch 113 has no seed-1 result
    store.add_groundtruth_many([
        gt_row("113", 7, 0, 0.9), gt_row("111", 2, 0, 0.5), gt_row("112", 4, 0, 0.6),
        gt_row("111", 2, 1, 0.7), gt_row("112", 4, 1, 0.8),
    ])
    table = truth_from_store(store)
    assert (table.space, table.dataset) == ("tiny64", "digits")
    assert table.archs == ["111", "112", "113"]
    assert table.indices == [2, 4, 7]
    np.testing.assert_allclose(table.accuracy, [0.6, 0.7, 0.9])
    assert sorted(table.per_seed) == [0, 1]
    np.testing.assert_allclose(table.per_seed[0], [0.5, 0.6, 0.9])
    np.testing.assert_allclose(table.per_seed[1], [0.7, 0.8, np.nan])
    assert table.position("112") == 1 and table.position(7) == 2
    assert HASH in table.source and "2 seeds" in table.source

    valid = truth_from_store(store, metric="valid_acc")
    np.testing.assert_allclose(valid.accuracy, [0.3, 0.35, 0.45])
    with pytest.raises(WsnasError, match="'test_loss' is not one of valid_acc, test_acc"):
        truth_from_store(store, metric="test_loss")
    with pytest.raises(WsnasError, match="no train_acc values"):
        truth_from_store(store, metric="train_acc")


def diverged_row(arch: str, index: int, seed: int) -> dict:
    """A training whose loss became NaN: recorded with no accuracy, as status 'diverged'."""
    return {**gt_row(arch, index, seed, 0.0), "test_acc": None, "valid_acc": None, "test_loss": None,
            "status": "diverged"}


def test_truth_from_store_skips_trainings_that_diverged(store):
    store.add_groundtruth_many([
        gt_row("111", 0, 0, 0.5), gt_row("111", 0, 1, 0.7), gt_row("112", 1, 0, 0.6),
        diverged_row("112", 1, 1), diverged_row("113", 2, 0),
    ])
    table = truth_from_store(store)
    assert table.archs == ["111", "112"]  # 113 only diverged: no ground truth at all
    np.testing.assert_allclose(table.accuracy, [0.6, 0.6])  # 112: its one measured seed
    np.testing.assert_allclose(table.per_seed[1], [0.7, np.nan])
    [summary] = store.groundtruth_summary()
    assert (summary["archs"], summary["seeds"], summary["rows"], summary["diverged"]) == (2, 2, 5, 2)
    assert store.groundtruth_done("tiny64", "digits", 3, HASH) == {
        ("111", 0), ("111", 1), ("112", 0), ("112", 1), ("113", 0)}  # a rerun trains none again
    with pytest.raises(WsnasError, match="a diverged ground-truth training has no accuracy, but valid_acc is 0.25"):
        store.add_groundtruth({**gt_row("114", 3, 0, 0.5), "status": "diverged"})


def test_truth_from_store_ambiguity_and_empty_errors(store):
    with pytest.raises(WsnasError, match="no ground truth yet"):
        truth_from_store(store)
    store.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("111", 0, 0, 0.6,
                                                                  dataset="cifar10")])
    with pytest.raises(WsnasError) as info:
        truth_from_store(store, space="tiny64")
    message = str(info.value)
    assert "2 combinations" in message
    assert f"(tiny64, cifar10, {HASH}, 3 epochs)" in message
    assert f"(tiny64, digits, {HASH}, 3 epochs)" in message
    assert "choose one with the dataset option" in message
    assert truth_from_store(store, dataset="cifar10").accuracy.tolist() == [0.6]

    with pytest.raises(WsnasError) as info:
        truth_from_store(store, space="nb201", dataset="cifar10")
    message = str(info.value)
    assert "space='nb201', dataset='cifar10', config_hash=any" in message
    assert "the store has space='tiny64'" in message


# ----------------------------------------------------------------------------- resolve_truth


def test_resolve_no_spec_is_no_truth(store):
    assert resolve_truth(None) == (None, None)
    store.add_groundtruth(gt_row("111", 0, 0, 0.5))
    assert resolve_truth(None, store=store, space="tiny64", dataset="digits") == (None, None)


def test_resolve_store_reads_the_given_store_with_its_filters(store):
    other = {**CONFIG, "lr": 0.2}
    store.add_groundtruth_many([
        gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.75), gt_row("112", 1, 1, 0.25),
        gt_row("111", 0, 0, 0.9, dataset="cifar10"),
        gt_row("111", 0, 0, 0.1, dataset="cifar10", config=other),
    ])
    truth, source = resolve_truth("store", store=store, space="tiny64", dataset="digits")
    assert source == "store"
    assert isinstance(truth, TruthTable) and (truth.space, truth.dataset) == ("tiny64", "digits")
    assert truth.archs == ["111", "112"] and truth.indices == [0, 1]
    np.testing.assert_allclose(truth.accuracy, [0.5, 0.5])
    assert str(store.path) in truth.source and HASH in truth.source and "2 seeds" in truth.source

    truth, _ = resolve_truth("store", store=store, dataset="digits", metric="valid_acc")
    np.testing.assert_allclose(truth.accuracy, [0.25, 0.25])
    truth, _ = resolve_truth("store", store=store, dataset="cifar10", config_hash=config_hash(other))
    assert truth.accuracy.tolist() == [0.1]
    with pytest.raises(WsnasError, match="choose one with the config_hash option"):
        resolve_truth("store", store=store, dataset="cifar10")
    with pytest.raises(WsnasError, match="no ground truth in .* matches space='nb201'"):
        resolve_truth("store", store=store, space="nb201")
    with pytest.raises(WsnasError) as info:
        resolve_truth("store")
    assert "'store'" in str(info.value) and "\n" not in str(info.value)


def test_resolve_a_builtin_name(store):
    assert "tiny64-cifar10" in BUILTIN_TRUTHS
    truth, source = resolve_truth("tiny64-cifar10")
    assert source == "tiny64-cifar10"
    builtin = load_truth("tiny64-cifar10")
    assert (truth.space, truth.dataset, len(truth)) == ("tiny64", "cifar10", 64)
    assert truth.archs == builtin.archs and truth.indices == builtin.indices
    np.testing.assert_array_equal(truth.accuracy, builtin.accuracy)
    # the name is case-insensitive and the label is the spec as given; the store and its dataset
    # filter apply only to "store" (the space is checked: test_bad_input)
    store.add_groundtruth(gt_row("111", 0, 0, 0.5))
    truth, source = resolve_truth("TINY64-CIFAR10", store=store, space="tiny64", dataset="digits")
    assert source == "TINY64-CIFAR10" and truth.dataset == "cifar10" and len(truth) == 64
    # the metric reaches the table: a column it lacks is an error naming it
    truth, _ = resolve_truth("tiny64-cifar10", metric="test_acc_std")
    assert float(truth.accuracy.max()) < 0.1
    with pytest.raises(WsnasError, match="no column 'valid_acc'"):
        resolve_truth("tiny64-cifar10", metric="valid_acc")


def test_resolve_a_csv_file(tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("index,arch,test_acc,valid_acc\n5,122,75,60\n0,111,50.0,40\n")
    truth, source = resolve_truth(str(path))
    assert source == str(path) and truth.source == str(path)
    assert truth.archs == ["122", "111"] and truth.indices == [5, 0] and truth.space == "tiny64"
    np.testing.assert_allclose(truth.accuracy, [0.75, 0.5])
    truth, _ = resolve_truth(str(path), metric="valid_acc")
    np.testing.assert_allclose(truth.accuracy, [0.6, 0.4])


def test_resolve_a_results_store_file(tmp_path):
    path = tmp_path / "other.db"
    with Store(path) as s:
        s.add_groundtruth_many([gt_row("112", 1, 0, 0.75), gt_row("111", 0, 0, 0.5)])
    truth, source = resolve_truth(str(path), metric="valid_acc")
    assert source == str(path)
    assert truth.archs == ["111", "112"]
    np.testing.assert_allclose(truth.accuracy, [0.25, 0.375])


@pytest.mark.parametrize("spec", ["no-such-table", "missing.csv", "store.db"])
def test_resolve_a_bad_spec_is_a_one_line_error_naming_it(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WsnasError) as info:
        resolve_truth(spec, store=None)
    message = str(info.value)
    assert repr(spec) in message and "\n" not in message
    assert "tiny64-cifar10" in message  # what is accepted
    assert not (tmp_path / spec).exists()  # nothing created


def test_a_csv_is_one_scale_and_its_index_is_its_archs(tmp_path):
    path = tmp_path / "t.csv"
    nb201 = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
             "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"]
    index = [get_space("nb201").index(get_space("nb201").parse(a)) for a in nb201]
    # percentages with one below 1 that stays below the others as a fraction (chance on 120 classes): kept
    path.write_text(f"index,arch,test_acc\n{index[0]},{nb201[0]},0.83\n{index[1]},{nb201[1]},46.9\n")
    truth = load_truth(str(path))
    assert truth.space == "nb201"
    np.testing.assert_allclose(truth.accuracy, [0.0083, 0.469])
    # a fraction among percentages (or one percentage among fractions): refused, both rows named
    for rows, fraction, percent in ((("0,111,0.93", "1,112,91.2", "2,113,94.0"), (1, 0.93), (2, 91.2)),
                                    (("0,111,0.91", "1,112,0.93", "2,113,93.5"), (1, 0.91), (3, 93.5))):
        path.write_text("index,arch,test_acc\n" + "\n".join(rows) + "\n")
        with pytest.raises(WsnasError) as info:
            load_truth(str(path))
        assert (f"data row {fraction[0]} has {fraction[1]:g}, a fraction, and data row {percent[0]} has "
                f"{percent[1]:g}, a percentage" in str(info.value))
    # index and arch disagree; an arch of another space than the first row's
    path.write_text("index,arch,test_acc\n0,111,0.5\n5,113,0.6\n")
    with pytest.raises(WsnasError, match="data row 2: index 5 and arch '113' disagree .*index 2 of tiny64"):
        load_truth(str(path))
    path.write_text(f"index,arch,test_acc\n0,111,0.5\n1,{nb201[0]},0.6\n")
    with pytest.raises(WsnasError, match="data row 2: arch .* is not a tiny64 architecture like the first row's"):
        load_truth(str(path))
    # names no space reads keep the table's space unknown (nothing to check them against)
    path.write_text("index,arch,test_acc\n0,net-a,0.5\n7,net-b,0.6\n")
    assert load_truth(str(path)).space == "unknown"


def test_a_truth_of_another_space_is_refused(tmp_path):
    with pytest.raises(WsnasError, match="'tiny64-cifar10' is a table of the tiny64 space, not of nb201"):
        resolve_truth("tiny64-cifar10", space="nb201")
    assert resolve_truth("tiny64-cifar10", space="tiny64")[0].space == "tiny64"
    path = tmp_path / "idx.csv"
    path.write_text("index,test_acc\n0,0.5\n1,0.6\n")  # indices only: the space is unknown, not refused
    assert resolve_truth(str(path), space="nb201")[0].space == "unknown"


# ----------------------------------------------------------------------------- score_predictions


def test_score_predictions_aligns_a_subset_and_evaluates_every_row(tmp_path):
    truth = load_truth("tiny64-cifar10")
    columns = ["444", "3", "111", "212"]  # strings and indices, in any order
    positions = [truth.position(c) for c in columns]
    rng = np.random.default_rng(1)
    values = truth.accuracy[positions] + rng.normal(scale=0.02, size=(3, len(columns)))
    path = tmp_path / "pred.csv"
    path.write_text("step," + ",".join(columns) + "\n"
                    + "".join(f"{s}," + ",".join(repr(float(v)) for v in row) + "\n"
                              for s, row in zip((10, 20, 30), values)))
    scores = score_predictions(path, "tiny64-cifar10", k=2, top=(1,), precision_k=(2,))
    assert scores.matched == 4 and len(scores.truth) == 64 and scores.truth.source == truth.source
    expected = evaluate_rows(values, truth.accuracy[positions], k=2, top=(1,), precision_k=(2,),
                             row_labels=["10", "20", "30"])
    assert scores.result.to_dict() == expected.to_dict()
    with pytest.raises(WsnasError, match="not in the ground truth"):
        path.write_text("step,999\n1,0.5\n")
        score_predictions(path, "tiny64-cifar10")
