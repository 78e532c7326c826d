"""Ranking metrics: how far a weight-sharing ranking of architectures can be trusted.

All functions are pure and work on numpy arrays (anything ``np.asarray`` accepts). The
definitions follow ``docs/algorithms.md`` section 1.3 (Zhang et al., 2020):

* :func:`kendall_tau` -- Kendall's tau-b, equal to ``scipy.stats.kendalltau`` (our own
  O(n log n) implementation, so ranking all 15,625 NAS-Bench-201 cells is instantaneous).
* :func:`spearman` -- Spearman's rho with average ranks for ties (``scipy.stats.spearmanr``).
* :func:`s_tau` -- mean / max / min of the pairwise tau between N ranking instances.
* :func:`gt_tau` -- tau of one ranking instance against the ground truth.
* :func:`top_n_rank` -- best ground-truth rank among the top-n predicted children (TnR).
* :func:`precision_at_k` -- overlap of the predicted top-k with the true top-k.
* :func:`gt_tau_mean_std` -- GT-Tau-Mean-k / GT-Tau-Std-k over the last k rows.
* :func:`evaluate_rows` -- all of the above for every row of a prediction matrix.

Conventions shared by every function:

* Higher values are better, both for predictions and for ground-truth accuracy.
* A ground-truth rank is ``1 + (number of children with strictly higher accuracy)``; tied
  children share the best rank of their group.
* Ties in the predictions count against the predictor: when children tied on the prediction
  straddle the boundary of a top-n (or top-k) selection, TnR and P@k take the tied children
  that are worst by ground truth (the worst case over every way of breaking the tie). The
  result never depends on the order of the columns (see :func:`top_n_rank`).
* NaN predictions count as the lowest possible prediction.
* Invalid shapes raise :class:`wsnas.core.errors.WsnasError` (a ``ValueError``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wsnas.core.errors import WsnasError

__all__ = [
    "EvaluationResult",
    "average_ranks",
    "evaluate_rows",
    "gt_tau",
    "gt_tau_mean_std",
    "kendall_tau",
    "precision_at_k",
    "s_tau",
    "spearman",
    "top_n_rank",
    "truth_ranks",
]


# --------------------------------------------------------------------------------------------
# helpers


def _as_pair(x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D float arrays of equal length, or a WsnasError."""
    a = np.asarray(x, dtype=float).ravel()
    b = np.asarray(y, dtype=float).ravel()
    if a.shape != b.shape:
        raise WsnasError(f"{what}: the two inputs have {a.size} and {b.size} values; "
                         "they must have the same length")
    return a, b


def _pairs_with_ties(sorted_values: np.ndarray) -> int:
    """Number of pairs with equal values, i.e. sum of t(t-1)/2 over groups of size t.

    ``sorted_values`` must be sorted so that equal values are adjacent.
    """
    n = sorted_values.size
    if n < 2:
        return 0
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    sizes = np.diff(np.r_[starts, n]).astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _dense_ranks(values: np.ndarray) -> np.ndarray:
    """Dense integer ranks 0..m-1 (equal values share a rank)."""
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.int64).ravel()


def _count_inversions(a: np.ndarray) -> int:
    """Number of pairs i < j with ``a[i] > a[j]`` (strictly), for non-negative integers ``a``.

    Bottom-up merge sort, vectorised: pass ``w`` (w = 1, 2, 4, ...) merges neighbouring
    sorted blocks of length ``w``. Each element of a right block is overtaken by the elements
    of its left block that are strictly greater; in the stably merged order those are exactly
    the left elements that come *after* it, so the count is
    ``(left block size) - (its merged position - its position among right elements)``.
    ``ceil(log2 n)`` passes; each pass is one stable sort of two presorted runs per block
    (timsort merges runs in linear time) plus O(n) bookkeeping, hence O(n log n) in total.
    """
    a = np.asarray(a, dtype=np.int64).copy()
    n = a.size
    if n < 2:
        return 0
    span = int(a.max()) + 1  # keys of different blocks never interleave
    positions = np.arange(n, dtype=np.int64)
    total = 0
    width = 1
    while width < n:
        block = positions // (2 * width)  # which pair of blocks (left + right) each slot is in
        block_start = block * (2 * width)
        from_right = (positions - block_start) >= width
        keys = block * span + a
        order = np.argsort(keys, kind="stable")  # left elements precede equal right ones
        merged_right = from_right[order]
        # number of right elements before each merged slot, restarted at every block
        right_before = np.cumsum(merged_right) - merged_right
        right_before = right_before - right_before[block_start]
        local_pos = positions - block_start
        left_size = np.minimum(width, n - block_start)
        greater_left = left_size - (local_pos - right_before)
        total += int(greater_left[merged_right].sum())
        a = a[order]
        width *= 2
    return total


def _top_selection(pred: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The top ``n`` of ``pred`` (NaN lowest) as ``(sure, tied, free)``.

    ``sure`` marks the children predicted strictly above the n-th highest value (every top-n
    selection holds them), ``tied`` those predicted exactly at it, and ``free`` is the number
    of top-n places left to the tied children (``1 <= free <= tied.sum()``).
    """
    p = np.where(np.isnan(pred), -np.inf, pred)
    n = min(int(n), p.size)
    threshold = np.partition(p, p.size - n)[p.size - n]  # the n-th highest prediction
    sure = p > threshold
    tied = p == threshold
    return sure, tied, n - int(sure.sum())


def _worst_top_rank(pred: np.ndarray, ranks: np.ndarray, n: int) -> int:
    """TnR of one row against ground-truth ``ranks``, ties in ``pred`` counted as the worst case."""
    sure, tied, free = _top_selection(pred, n)
    from_tie = np.sort(ranks[tied])[::-1][free - 1]  # the best of the `free` worst tied children
    return int(ranks[sure].min(initial=from_tie))


def _worst_precision(pred: np.ndarray, ranks: np.ndarray, k: int) -> float:
    """P@k of one row against ground-truth ``ranks``, ties in ``pred`` counted as the worst case."""
    k = min(int(k), pred.size)
    sure, tied, free = _top_selection(pred, k)
    good = ranks <= k
    # the tie fills ``free`` places with its children outside the true top-k first
    tied_good = max(0, free - int((tied & ~good).sum()))
    return float((int((sure & good).sum()) + tied_good) / k)


def truth_ranks(truth: Any) -> np.ndarray:
    """Ground-truth rank of each child: 1 + number of children with strictly higher accuracy.

    Tied children share the best rank of their group (``[0.9, 0.8, 0.9]`` -> ``[1, 3, 1]``).
    Runs in O(n log n).
    """
    t = np.asarray(truth, dtype=float).ravel()
    descending = np.sort(-t)  # ascending in -t
    return 1 + np.searchsorted(descending, -t, side="left")


# --------------------------------------------------------------------------------------------
# correlation coefficients


def kendall_tau(x: Any, y: Any) -> float:
    """Kendall's tau-b between two rankings (our implementation of ``scipy.stats.kendalltau``).

    ``tau_b = (P - Q) / sqrt((n0 - n1) * (n0 - n2))`` where ``P``/``Q`` are the concordant /
    discordant pairs, ``n0 = n(n-1)/2``, and ``n1``/``n2`` the pairs tied in ``x``/``y``.
    Knight's algorithm: sort by ``(x, y)``; then ``P - Q = n0 - n1 - n2 + n3 - 2 * swaps``
    with ``n3`` the pairs tied in both and ``swaps`` the inversions of ``y`` in that order
    (counted by merge sort). O(n log n) time, exact integer counts.

    Returns:
        tau-b in [-1, 1]; ``nan`` if there are fewer than two values, any value is NaN, or
        either input is constant (the same as scipy's default ``nan_policy='propagate'``).
    """
    a, b = _as_pair(x, y, "kendall_tau")
    n = a.size
    if n < 2 or np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    order = np.lexsort((b, a))  # by a, then by b
    a, b = a[order], b[order]
    n0 = n * (n - 1) // 2
    tied_x = _pairs_with_ties(a)
    # joint ties: equal a and equal b are adjacent after the lexicographic sort
    same_both = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    starts = np.flatnonzero(same_both)
    sizes = np.diff(np.r_[starts, n]).astype(np.int64)
    tied_xy = int((sizes * (sizes - 1) // 2).sum())
    tied_y = _pairs_with_ties(np.sort(b))
    if tied_x == n0 or tied_y == n0:
        return math.nan
    swaps = _count_inversions(_dense_ranks(b))
    numerator = n0 - tied_x - tied_y + tied_xy - 2 * swaps
    tau = numerator / math.sqrt(n0 - tied_x) / math.sqrt(n0 - tied_y)
    return float(min(1.0, max(-1.0, tau)))


def average_ranks(values: Any) -> np.ndarray:
    """Ranks 1..n of ``values`` (ascending), tied values getting the mean of their ranks."""
    v = np.asarray(values, dtype=float).ravel()
    n = v.size
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]]) if n else np.array([], int)
    ends = np.r_[starts[1:], n]
    # a group occupying sorted slots [s, e) has 1-based ranks s+1..e, mean (s + 1 + e) / 2
    group_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation (Pearson correlation of average ranks), as ``spearmanr``.

    Returns ``nan`` for fewer than two values, any NaN, or a constant input.
    """
    a, b = _as_pair(x, y, "spearman")
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    ra = average_ranks(a)
    rb = average_ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if denom == 0.0:
        return math.nan
    return float(min(1.0, max(-1.0, float(ra @ rb) / denom)))


# --------------------------------------------------------------------------------------------
# metrics of the weight-sharing study


def _as_matrix(m: Any, what: str) -> np.ndarray:
    arr = np.asarray(m, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise WsnasError(f"{what}: expected a 2-D array (rows = instances), got {arr.ndim}-D")
    return arr


def s_tau(rankings: Any) -> dict[str, float | int]:
    """S-Tau: Kendall tau between every pair of ranking instances.

    Args:
        rankings: 2-D array, one row per instance (e.g. supernets trained with different
            seeds), one column per architecture.

    Returns:
        ``{"mean", "max", "min", "n_pairs"}`` over the ``N(N-1)/2`` pairs of rows; the
        statistics are ``nan`` when there are fewer than two rows.
    """
    m = _as_matrix(rankings, "s_tau")
    taus = [kendall_tau(m[i], m[j]) for i in range(len(m)) for j in range(i + 1, len(m))]
    if not taus:
        return {"mean": math.nan, "max": math.nan, "min": math.nan, "n_pairs": 0}
    t = np.asarray(taus)
    return {"mean": float(t.mean()), "max": float(t.max()), "min": float(t.min()),
            "n_pairs": len(taus)}


def gt_tau(pred: Any, truth: Any) -> float:
    """GT-Tau: Kendall tau-b of one ranking instance against the ground-truth accuracies."""
    return kendall_tau(pred, truth)


def top_n_rank(pred: Any, truth: Any, n: int) -> int:
    """TnR: among the ``n`` children with the highest prediction, the best ground-truth rank.

    The ground-truth rank is ``1 + (number of children with strictly higher accuracy)``, so 1
    means the selection contains a truly best child. ``n`` larger than the number of children
    is clipped.

    Ties: when children tied on the prediction compete for the last places of the top ``n``
    (e.g. two children share the highest prediction and ``n = 1``), the top ``n`` is not
    defined by the predictions alone. TnR then takes the tied children with the *worst*
    ground-truth ranks, i.e. it is the worst TnR over every order in which the tie could be
    broken, and it never depends on the order of the columns. This is the conservative
    choice: a ranking gets credit only for what it actually tells apart. Breaking the tie by
    column position (as this function did before) rewards the accident of column order,
    which in a search space often follows the architecture index and so correlates with
    accuracy; the mean rank over the tie would still credit a predictor that cannot separate
    the tied children and is not an integer rank. A predictor that scores every child the
    same gets the worst rank the top ``n`` can hold (``T1R`` = the rank of the truly worst
    child).
    """
    p, t = _as_pair(pred, truth, "top_n_rank")
    if int(n) < 1:
        raise WsnasError(f"top_n_rank: n={n!r} must be a positive integer")
    if p.size == 0:
        raise WsnasError("top_n_rank: no architectures given")
    return _worst_top_rank(p, truth_ranks(t), n)


def precision_at_k(pred: Any, truth: Any, k: int) -> float:
    """Fraction of the top-``k`` children by prediction that are in the top-``k`` by truth.

    A child is in the true top-k when its ground-truth rank is <= k (so ties at the boundary
    all count). Children tied on the prediction at the boundary of the predicted top-k count
    as the worst case, as in :func:`top_n_rank`: the tie fills the remaining places with its
    children outside the true top-k first, so the result does not depend on the order of the
    columns. ``k`` larger than the number of children is clipped to it (the result is then
    1.0).
    """
    p, t = _as_pair(pred, truth, "precision_at_k")
    if int(k) < 1:
        raise WsnasError(f"precision_at_k: k={k!r} must be a positive integer")
    if p.size == 0:
        raise WsnasError("precision_at_k: no architectures given")
    return _worst_precision(p, truth_ranks(t), k)


def gt_tau_mean_std(pred_matrix: Any, truth: Any, k: int = 64) -> tuple[float, float]:
    """GT-Tau-Mean-k and GT-Tau-Std-k: GT-Tau of each of the last ``k`` rows.

    Rows are ranking instances in time order (e.g. after each of the last mini-batches); if
    there are fewer than ``k`` rows, all of them are used. The standard deviation is the
    population one (``ddof=0``, numpy's default), as the paper's ± figures.
    """
    m = _as_matrix(pred_matrix, "gt_tau_mean_std")
    if int(k) < 1:
        raise WsnasError(f"gt_tau_mean_std: k={k!r} must be a positive integer")
    taus = np.array([gt_tau(row, truth) for row in m[-int(k):]])
    return float(taus.mean()), float(taus.std(ddof=0))


# --------------------------------------------------------------------------------------------
# everything at once


def _json_float(v: float) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


@dataclass
class EvaluationResult:
    """Per-row and summary ranking metrics of a prediction matrix against a ground truth.

    Attributes:
        row_labels: label of each row (e.g. the global step).
        gt_tau, spearman: per-row correlation with the ground truth.
        top_rank: ``n -> per-row TnR`` (e.g. ``{1: T1R, 3: T3R}``).
        precision: ``k -> per-row precision@k``.
        k: number of final rows the summary uses (``min(requested k, rows)``).
        n_archs: number of architectures (columns) compared.
        gt_tau_mean, gt_tau_std: GT-Tau-Mean-k and GT-Tau-Std-k (std with ddof=0).
        top_rank_last: TnR of the final row; top_rank_mean: its mean over the last k rows.
        precision_last, precision_mean: the same for precision@k.
        spearman_mean: mean Spearman rho over the last k rows.
    """

    row_labels: list[str]
    gt_tau: np.ndarray
    spearman: np.ndarray
    top_rank: dict[int, np.ndarray]
    precision: dict[int, np.ndarray]
    k: int
    n_archs: int
    gt_tau_mean: float
    gt_tau_std: float
    spearman_mean: float
    top_rank_last: dict[int, int] = field(default_factory=dict)
    top_rank_mean: dict[int, float] = field(default_factory=dict)
    precision_last: dict[int, float] = field(default_factory=dict)
    precision_mean: dict[int, float] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of rows evaluated."""
        return len(self.row_labels)

    def summary(self) -> dict[str, Any]:
        """The summary figures as a JSON-ready dict (NaN becomes ``None``)."""
        out: dict[str, Any] = {
            "rows": self.n_rows,
            "architectures": self.n_archs,
            "k": self.k,
            f"gt_tau_mean_{self.k}": _json_float(self.gt_tau_mean),
            f"gt_tau_std_{self.k}": _json_float(self.gt_tau_std),
            "gt_tau_mean": _json_float(self.gt_tau_mean),
            "gt_tau_std": _json_float(self.gt_tau_std),
            "spearman_mean": _json_float(self.spearman_mean),
        }
        for n in self.top_rank:
            out[f"t{n}r_last"] = self.top_rank_last[n]
            out[f"t{n}r_mean"] = _json_float(self.top_rank_mean[n])
        for k in self.precision:
            out[f"precision_at_{k}_last"] = _json_float(self.precision_last[k])
            out[f"precision_at_{k}_mean"] = _json_float(self.precision_mean[k])
        return out

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: label, gt_tau, spearman, tNr..., precision_at_k...."""
        out = []
        for i, label in enumerate(self.row_labels):
            row: dict[str, Any] = {
                "row": label,
                "gt_tau": _json_float(self.gt_tau[i]),
                "spearman": _json_float(self.spearman[i]),
            }
            for n, values in self.top_rank.items():
                row[f"t{n}r"] = int(values[i])
            for k, values in self.precision.items():
                row[f"precision_at_{k}"] = _json_float(values[i])
            out.append(row)
        return out

    def to_dict(self, include_rows: bool = True) -> dict[str, Any]:
        """JSON-ready dict ``{"summary": {...}, "rows": [...]}`` (rows optional)."""
        out: dict[str, Any] = {"summary": self.summary()}
        if include_rows:
            out["rows"] = self.rows()
        return out


def evaluate_rows(
    pred_matrix: Any,
    truth: Any,
    k: int = 64,
    top: Iterable[int] = (1, 3),
    precision_k: Iterable[int] = (5,),
    row_labels: Sequence[str] | None = None,
) -> EvaluationResult:
    """Evaluate every row of a prediction matrix against the ground truth.

    Args:
        pred_matrix: 2-D array, one row per ranking instance (e.g. per global step), one column
            per architecture, aligned with ``truth``.
        truth: ground-truth accuracy of each column.
        k: the summary uses the last ``min(k, rows)`` rows (GT-Tau-Mean-k / Std-k, TnR means).
        top: the ``n`` of the Top-n-Rank metrics to compute.
        precision_k: the ``k`` of the precision@k metrics to compute.
        row_labels: optional label per row (defaults to "1".."N").
    """
    m = _as_matrix(pred_matrix, "evaluate_rows")
    t = np.asarray(truth, dtype=float).ravel()
    n_rows, n_archs = m.shape
    if n_archs != t.size:
        raise WsnasError(f"evaluate_rows: predictions have {n_archs} columns but the ground "
                         f"truth has {t.size} values; they must be aligned")
    if n_rows == 0:
        raise WsnasError("evaluate_rows: the prediction matrix has no rows")
    if int(k) < 1:
        raise WsnasError(f"evaluate_rows: k={k!r} must be a positive integer")
    labels = [str(x) for x in row_labels] if row_labels is not None else [
        str(i + 1) for i in range(n_rows)]
    if len(labels) != n_rows:
        raise WsnasError(f"evaluate_rows: {len(labels)} row labels for {n_rows} rows")
    top = [int(n) for n in top]
    precision_k = [int(x) for x in precision_k]

    ranks = truth_ranks(t)
    gt = np.array([kendall_tau(row, t) for row in m])
    rho = np.array([spearman(row, t) for row in m])
    top_rank: dict[int, np.ndarray] = {}
    for n in top:
        if n < 1:
            raise WsnasError(f"evaluate_rows: top n={n} must be a positive integer")
        top_rank[n] = np.array([_worst_top_rank(row, ranks, n) for row in m], dtype=np.int64)
    precision: dict[int, np.ndarray] = {}
    for pk in precision_k:
        if pk < 1:
            raise WsnasError(f"evaluate_rows: precision k={pk} must be a positive integer")
        precision[pk] = np.array([_worst_precision(row, ranks, pk) for row in m], dtype=float)

    used = min(int(k), n_rows)
    tail = slice(n_rows - used, n_rows)
    return EvaluationResult(
        row_labels=labels,
        gt_tau=gt,
        spearman=rho,
        top_rank=top_rank,
        precision=precision,
        k=used,
        n_archs=n_archs,
        gt_tau_mean=float(gt[tail].mean()),
        gt_tau_std=float(gt[tail].std(ddof=0)),
        spearman_mean=float(rho[tail].mean()),
        top_rank_last={n: int(v[-1]) for n, v in top_rank.items()},
        top_rank_mean={n: float(v[tail].mean()) for n, v in top_rank.items()},
        precision_last={pk: float(v[-1]) for pk, v in precision.items()},
        precision_mean={pk: float(v[tail].mean()) for pk, v in precision.items()},
    )
