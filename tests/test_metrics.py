"""Tests of wsnas.metrics (against scipy and hand-worked examples) and the table readers."""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from wsnas.core.errors import WsnasError
from wsnas.groundtruth.table import TruthTable
from wsnas.groundtruth.truth import (
    BUILTIN_TRUTHS,
    align_predictions,
    load_truth,
    read_predictions_csv,
    read_truth_csv,
)
from wsnas.metrics import (
    evaluate_rows,
    gt_tau,
    gt_tau_mean_std,
    kendall_tau,
    precision_at_k,
    s_tau,
    spearman,
    top_n_rank,
    truth_ranks,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUPERNET_LOG = SHARED_DATA / "tiny64_cifar10_supernet_last128.csv"


def scipy_tau(x, y) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant input
        return float(stats.kendalltau(x, y).statistic)


def scipy_rho(x, y) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(x, y).statistic)


def same(a: float, b: float, tol: float = 1e-12) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


# --------------------------------------------------------------------------------------------
# Kendall tau-b and Spearman against scipy


def _random_pair(rng: np.random.Generator, n: int, kind: str):
    if kind == "continuous":
        x = rng.normal(size=n)
        return x, 0.5 * x + rng.normal(size=n)
    if kind == "ties":  # few distinct integer values: heavy ties in x, in y and jointly
        return rng.integers(0, 4, n), rng.integers(0, 3, n)
    if kind == "mixed":  # continuous x, heavily tied y
        return rng.normal(size=n), rng.integers(0, 2, n)
    # correlated integers with many ties
    x = rng.integers(0, max(2, n // 10), n)
    return x, x + rng.integers(0, 5, n)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("kind", ["continuous", "ties", "mixed", "correlated-ties"])
def test_kendall_tau_equals_scipy(seed, kind):
    rng = np.random.default_rng(seed)
    for n in (2, 3, int(rng.integers(4, 60)), int(rng.integers(60, 2001))):
        x, y = _random_pair(rng, n, kind)
        assert same(kendall_tau(x, y), scipy_tau(x, y)), (n, kind)
        assert same(kendall_tau(y, x), scipy_tau(y, x)), (n, kind)


def test_kendall_tau_edge_cases():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))  # constant x, as scipy
    assert math.isnan(kendall_tau([1, 2, 3], [5, 5, 5]))  # constant y
    assert math.isnan(kendall_tau([1], [2]))
    assert math.isnan(kendall_tau([], []))
    assert math.isnan(kendall_tau([1, 2, np.nan], [1, 2, 3]))
    # all pairs tied in x or y except one concordant pair
    assert same(kendall_tau([0, 0, 1], [0, 0, 1]), scipy_tau([0, 0, 1], [0, 0, 1]))
    with pytest.raises(WsnasError, match="same length"):
        kendall_tau([1, 2, 3], [1, 2])


def test_kendall_tau_matches_scipy_on_nb201_size():
    """The O(n log n) count agrees with scipy on all 15,625 cells (its speed is no test's business)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=15_625)
    y = x + rng.normal(size=15_625)
    y[::7] = np.round(y[::7], 1)  # ties too
    assert same(kendall_tau(x, y), scipy_tau(x, y))


@pytest.mark.parametrize("seed", range(20))
def test_spearman_equals_scipy(seed):
    rng = np.random.default_rng(1000 + seed)
    for n in (2, 3, int(rng.integers(4, 200)), int(rng.integers(200, 2001))):
        for kind in ("continuous", "ties", "mixed", "correlated-ties"):
            x, y = _random_pair(rng, n, kind)
            assert same(spearman(x, y), scipy_rho(x, y)), (n, kind)
    assert math.isnan(spearman([2, 2, 2], [1, 2, 3]))


# --------------------------------------------------------------------------------------------
# S-Tau, GT-Tau, Top-n-Rank, precision@k


def test_s_tau_equals_hand_loop():
    rng = np.random.default_rng(7)
    rankings = rng.integers(0, 20, size=(6, 64)).astype(float)
    taus = [scipy_tau(rankings[i], rankings[j]) for i in range(6) for j in range(i + 1, 6)]
    result = s_tau(rankings)
    assert result["n_pairs"] == 15
    assert same(result["mean"], float(np.mean(taus)))
    assert result["max"] == pytest.approx(max(taus), abs=1e-12)
    assert result["min"] == pytest.approx(min(taus), abs=1e-12)
    single = s_tau(rankings[:1])
    assert single["n_pairs"] == 0 and math.isnan(single["mean"])


def test_truth_ranks_share_the_best_rank():
    # 0.95 twice -> both rank 1; 0.90 -> 3 (two are strictly higher); 0.85 -> 4; 0.80 -> 5
    assert truth_ranks([0.80, 0.95, 0.90, 0.95, 0.85]).tolist() == [5, 1, 3, 1, 4]


# Hand example shared by the TnR and precision tests.
#   position:      0     1     2     3     4
#   pred:        0.9   0.5   0.9   0.1   0.7
#   truth:      0.80  0.95  0.90  0.95  0.85
#   truth rank:    5     1     3     1     4
# Predicted order: {0, 2} (tied), 4, 1, 3.
PRED = [0.9, 0.5, 0.9, 0.1, 0.7]
TRUTH = [0.80, 0.95, 0.90, 0.95, 0.85]


def test_top_n_rank_hand_example():
    assert top_n_rank(PRED, TRUTH, 1) == 5  # {0} or {2}: the worst of the tie, rank 5 (not 3)
    assert top_n_rank(PRED, TRUTH, 2) == 3  # {0, 2}: min(5, 3)
    assert top_n_rank(PRED, TRUTH, 3) == 3  # {0, 2, 4}: min(5, 3, 4)
    assert top_n_rank(PRED, TRUTH, 4) == 1  # adds position 1, a truly best child
    assert top_n_rank(PRED, TRUTH, 99) == 1  # clipped to all five
    with pytest.raises(WsnasError, match="n=0"):
        top_n_rank(PRED, TRUTH, 0)


def test_precision_at_k_hand_example():
    # true top-k = children with truth rank <= k
    assert precision_at_k(PRED, TRUTH, 1) == 0.0  # {0} vs {1, 3}
    assert precision_at_k(PRED, TRUTH, 2) == 0.0  # {0, 2} vs {1, 3}
    assert precision_at_k(PRED, TRUTH, 3) == pytest.approx(1 / 3)  # {0, 2, 4} vs {1, 3, 2}
    assert precision_at_k(PRED, TRUTH, 4) == 0.75  # {0, 2, 4, 1} vs {1, 3, 2, 4}
    assert precision_at_k(PRED, TRUTH, 5) == 1.0
    # a tie at the boundary: both 0.9 children have rank 1, so either counts for k=1
    assert precision_at_k([0.2, 0.5, 0.1], [0.9, 0.9, 0.1], 1) == 1.0
    assert precision_at_k([0.2, 0.1, 0.5], [0.9, 0.9, 0.1], 1) == 0.0


def test_ties_on_the_prediction_count_as_the_worst_case():
    truth = [0.9, 0.8, 0.7, 0.6]  # ranks 1, 2, 3, 4
    # the best child ties with the worst one for the top place: T1R is the worse, 4
    assert top_n_rank([0.5, 0.1, 0.2, 0.5], truth, 1) == 4
    assert top_n_rank([0.5, 0.1, 0.2, 0.5], truth, 2) == 1  # both tied children fit in the top 2
    # three children tie for the last two places of the top 3: the two worst of them are taken
    assert top_n_rank([0.9, 0.5, 0.5, 0.5], truth, 3) == 1
    assert top_n_rank([0.1, 0.5, 0.5, 0.5], truth, 2) == 3
    # a constant predictor tells no child apart: the worst rank its top n can hold
    assert top_n_rank([0.3] * 4, truth, 1) == 4 and top_n_rank([0.3] * 4, truth, 3) == 2
    assert precision_at_k([0.3] * 4, truth, 2) == 0.0 and precision_at_k([0.3] * 4, truth, 3) == pytest.approx(2 / 3)
    # NaN predictions are the lowest
    assert top_n_rank([np.nan, 0.1, np.nan, np.nan], truth, 1) == 2


def _position_top_rank(pred, truth, n) -> int:
    """TnR with ties broken by column position (earlier first): the old definition."""
    ranks = truth_ranks(truth)
    order = sorted(range(len(pred)), key=lambda j: (-pred[j], j))
    return int(min(ranks[j] for j in order[:n]))


def _position_precision(pred, truth, k) -> float:
    ranks = truth_ranks(truth)
    k = min(k, len(pred))
    order = sorted(range(len(pred)), key=lambda j: (-pred[j], j))
    return sum(ranks[j] <= k for j in order[:k]) / k


def columns(largest: int):
    """(pred, truth, a permutation) of 1..largest columns; few values, so many ties."""
    return st.integers(1, largest).flatmap(lambda size: st.tuples(
        st.lists(st.integers(0, 3), min_size=size, max_size=size),
        st.lists(st.integers(0, 3), min_size=size, max_size=size),
        st.permutations(range(size))))


@settings(max_examples=100, deadline=None)
@given(columns(8))
def test_permuting_columns_never_changes_tnr_or_precision(case):
    pred, truth, perm = (np.asarray(x, dtype=float) for x in case)
    perm = perm.astype(int)
    for n in (1, 3):
        assert top_n_rank(pred[perm], truth[perm], n) == top_n_rank(pred, truth, n)
        assert precision_at_k(pred[perm], truth[perm], n) == precision_at_k(pred, truth, n)
    rows = evaluate_rows(np.vstack([pred, pred[::-1]])[:, perm], truth[perm], top=(1, 3), precision_k=(1, 3))
    same_rows = evaluate_rows(np.vstack([pred, pred[::-1]]), truth, top=(1, 3), precision_k=(1, 3))
    for n in (1, 3):
        assert rows.top_rank[n].tolist() == same_rows.top_rank[n].tolist()
        assert rows.precision[n].tolist() == same_rows.precision[n].tolist()


@settings(max_examples=60, deadline=None)
@given(columns(5))
def test_tnr_and_precision_are_the_worst_case_over_tie_breaking(case):
    """Against brute force: the worst, over every column order, of breaking ties by position."""
    pred, truth, _ = (np.asarray(x, dtype=float) for x in case)
    orders = [list(p) for p in itertools.permutations(range(len(pred)))]
    for n in (1, 3):
        assert top_n_rank(pred, truth, n) == max(_position_top_rank(pred[o], truth[o], n) for o in orders)
        assert precision_at_k(pred, truth, n) == pytest.approx(
            min(_position_precision(pred[o], truth[o], n) for o in orders))


def test_gt_tau_mean_std_against_numpy():
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.6, 0.9, size=64)
    preds = truth + rng.normal(scale=0.05, size=(100, 64))
    taus = np.array([scipy_tau(row, truth) for row in preds[-64:]])
    mean, std = gt_tau_mean_std(preds, truth, k=64)
    assert mean == pytest.approx(taus.mean(), abs=1e-12)
    assert std == pytest.approx(taus.std(ddof=0), abs=1e-12)
    # fewer rows than k: all rows are used
    mean10, _ = gt_tau_mean_std(preds[:10], truth, k=64)
    assert mean10 == pytest.approx(np.mean([scipy_tau(r, truth) for r in preds[:10]]), abs=1e-12)
    assert gt_tau(preds[0], truth) == pytest.approx(scipy_tau(preds[0], truth), abs=1e-12)


def test_evaluate_rows_is_consistent_with_the_single_metrics():
    rng = np.random.default_rng(5)
    truth = rng.uniform(size=30).round(2)  # some ties
    preds = rng.uniform(size=(12, 30)).round(1)  # many ties
    result = evaluate_rows(preds, truth, k=5, row_labels=[f"s{i}" for i in range(12)])
    assert result.k == 5 and result.n_rows == 12 and result.n_archs == 30
    for i, row in enumerate(preds):
        assert same(result.gt_tau[i], scipy_tau(row, truth))
        assert same(result.spearman[i], scipy_rho(row, truth))
        assert result.top_rank[1][i] == top_n_rank(row, truth, 1)
        assert result.top_rank[3][i] == top_n_rank(row, truth, 3)
        assert result.precision[5][i] == precision_at_k(row, truth, 5)
    mean, std = gt_tau_mean_std(preds, truth, k=5)
    assert result.gt_tau_mean == mean and result.gt_tau_std == std
    assert result.top_rank_last[1] == top_n_rank(preds[-1], truth, 1)
    assert result.top_rank_mean[3] == pytest.approx(
        np.mean([top_n_rank(r, truth, 3) for r in preds[-5:]]))
    d = result.to_dict()
    assert d["summary"]["gt_tau_mean_5"] == mean and len(d["rows"]) == 12
    assert d["rows"][0]["row"] == "s0" and "t3r" in d["rows"][0]
    with pytest.raises(WsnasError, match="columns"):
        evaluate_rows(preds, truth[:-1])


# --------------------------------------------------------------------------------------------
# the authors' supernet log against their ground truth


@pytest.fixture(scope="module")
def supernet_log():
    if not SUPERNET_LOG.is_file():
        pytest.skip(f"shared data file {SUPERNET_LOG} is absent (needs the project's shared/ dir)")
    labels, columns, values = read_predictions_csv(SUPERNET_LOG)
    truth = load_truth("tiny64-cifar10")
    positions, values = align_predictions(columns, values, truth)
    return labels, values, truth.accuracy[positions]


def test_real_log_gt_tau_matches_scipy(supernet_log):
    labels, values, truth = supernet_log
    assert values.shape == (128, 64) and labels[0] == "39073" and labels[-1] == "39200"
    result = evaluate_rows(values, truth, k=64, row_labels=labels)
    expected = np.array([scipy_tau(row, truth) for row in values])
    np.testing.assert_allclose(result.gt_tau, expected, rtol=0, atol=1e-12)
    assert result.gt_tau_mean == pytest.approx(expected[-64:].mean(), abs=1e-12)
    assert result.gt_tau_std == pytest.approx(expected[-64:].std(), abs=1e-12)
    assert 0.45 <= result.gt_tau_mean <= 0.57  # the docs: "a mean near 0.51"


def test_real_log_top_n_rank_matches_independent_computation(supernet_log):
    labels, values, truth = supernet_log
    result = evaluate_rows(values, truth, k=64, row_labels=labels)
    n = len(truth)
    true_rank = [1 + sum(1 for other in truth if other > truth[j]) for j in range(n)]
    for i, row in enumerate(values):
        # ties on the prediction: the children worst by ground truth come first (the worst case)
        order = sorted(range(n), key=lambda j: (-row[j], -true_rank[j]))
        assert result.top_rank[1][i] == true_rank[order[0]]
        assert result.top_rank[3][i] == min(true_rank[j] for j in order[:3])


# --------------------------------------------------------------------------------------------
# readers


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_builtin_truth():
    truth = load_truth("tiny64-cifar10")
    assert "tiny64-cifar10" in BUILTIN_TRUTHS
    assert (truth.space, truth.dataset, len(truth)) == ("tiny64", "cifar10", 64)
    assert truth.archs[0] == "111" and truth.archs[-1] == "444" and truth.indices[5] == 5
    assert truth.accuracy[0] == pytest.approx(0.70139)
    assert truth.position("111") == 0 and truth.position("5") == 5


def test_read_predictions_with_arch_columns_and_percent(tmp_path):
    truth = load_truth("tiny64-cifar10")
    f = _write(tmp_path / "p.csv", "epoch,444,111,5\n1,80,70.5,60\n2,81,71,61\n")
    labels, columns, values = read_predictions_csv(f)
    assert labels == ["1", "2"] and columns == ["444", "111", "5"]
    np.testing.assert_allclose(values, [[0.8, 0.705, 0.6], [0.81, 0.71, 0.61]])
    # "444" and "111" are canonical strings (indices 63 and 0); "5" is index 5
    positions, _ = align_predictions(columns, values, truth)
    assert positions.tolist() == [63, 0, 5]


def test_read_predictions_without_label_column(tmp_path):
    f = _write(tmp_path / "p.csv", "0,1,2\n0.1,0.2,0.3\n")
    labels, columns, values = read_predictions_csv(f)
    assert labels == ["1"] and columns == ["0", "1", "2"] and values.shape == (1, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("step,0,1\n", "no data rows"),
        ("step,0,0\n1,0.1,0.2\n", "'0' appears twice"),
        ("step,0,1\n1,0.1,abc\n", "data row 1, column '1': 'abc' is not a number"),
        ("step,0,1\n1,0.1,\n", "column '1': an empty cell"),
        ("step,0,1\n1,0.1,0.2\n2,0.3\n", "data row 2 has 2 cells"),
        ("step,0,1\n1,0.1,nan\n", "not a finite number"),
    ],
)
def test_read_predictions_errors(tmp_path, text, message):
    f = _write(tmp_path / "bad.csv", text)
    with pytest.raises(WsnasError, match=message) as info:
        read_predictions_csv(f)
    assert str(f) in str(info.value) and "\n" not in str(info.value)


def test_read_predictions_missing_file(tmp_path):
    with pytest.raises(WsnasError, match="not found"):
        read_predictions_csv(tmp_path / "nope.csv")


def test_align_errors_and_subset():
    truth = load_truth("tiny64-cifar10")
    with pytest.raises(WsnasError, match=r"'999', 'x' not in the ground truth 'tiny64-cifar10'"):
        align_predictions(["111", "999", "x"], np.zeros((1, 3)), truth)
    with pytest.raises(WsnasError, match="'111' and '0' are the same architecture"):
        align_predictions(["111", "0"], np.zeros((1, 2)), truth)
    with pytest.raises(WsnasError, match="at least 2"):
        align_predictions(["111"], np.zeros((1, 1)), truth)
    positions, _ = align_predictions(["1", "2", "3"], np.zeros((1, 3)), truth)
    assert positions.tolist() == [1, 2, 3]  # a subset is fine


def test_truth_csv_variants(tmp_path):
    f = _write(tmp_path / "t.csv", "arch,accuracy\n111,70\n112,80.5\n")
    truth = load_truth(str(f), dataset="mine")
    assert truth.archs == ["111", "112"] and truth.dataset == "mine"
    np.testing.assert_allclose(truth.accuracy, [0.70, 0.805])
    assert truth.position("112") == 1
    with pytest.raises(WsnasError):
        truth.position("1")  # no integer indices in an arch-only table
    g = _write(tmp_path / "u.csv", "index,valid_acc,test_acc\n3,0.5,0.6\n7,0.4,0.9\n")
    truth = read_truth_csv(g)
    assert truth.archs == ["3", "7"] and truth.accuracy.tolist() == [0.6, 0.9]
    assert load_truth(str(g), metric="valid_acc").accuracy.tolist() == [0.5, 0.4]
    with pytest.raises(WsnasError, match="no column 'bogus'"):
        load_truth(str(g), metric="bogus")
    with pytest.raises(WsnasError, match="neither an 'index' nor an 'arch'"):
        load_truth(str(_write(tmp_path / "v.csv", "name,accuracy\na,0.5\n")))
    with pytest.raises(WsnasError, match="none of the accuracy columns"):
        load_truth(str(_write(tmp_path / "w.csv", "index,loss\n0,0.5\n")))
    with pytest.raises(WsnasError, match=r"index 3 appears twice"):
        load_truth(str(_write(tmp_path / "x.csv", "index,accuracy\n3,0.5\n3,0.6\n")))
    with pytest.raises(WsnasError, match="data row 1 has 150"):
        load_truth(str(_write(tmp_path / "y.csv", "index,accuracy\n3,150\n4,0.6\n")))


def test_unknown_truth_spec(tmp_path):
    with pytest.raises(WsnasError, match="tiny64-cifar10") as info:
        load_truth("no-such-table")
    assert "results store" in str(info.value)
    with pytest.raises(WsnasError, match="unsupported file kind '.pth'"):
        load_truth(str(_write(tmp_path / "bench.pth", "x")))


def test_truth_table_dataclass_is_used():
    assert isinstance(load_truth("tiny64-cifar10"), TruthTable)
