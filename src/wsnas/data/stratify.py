"""Seeded stratified splitting that gives the same split on every machine.

The split is decided in two steps:

1. **How many** images of each class go to each part. Part ``p`` of size ``s_p`` should
   hold ``s_p * n_c / N`` images of class ``c`` (``n_c`` images of that class, ``N`` in
   all). The counts are these quotas rounded down or up so that every part gets exactly
   its size and every class is used exactly once ("controlled rounding"; such a rounding
   always exists for a two-way table, and a small max-flow finds one). So each class's
   count in each part is within one image of proportional.
2. **Which** images: for each class in increasing label order, the class's indices (in
   increasing order) are shuffled by ``argsort`` of uniform doubles from
   ``np.random.default_rng(seed)`` and dealt out to the parts in order. Only PCG64 and
   its uniform doubles are involved, which numpy keeps stable across platforms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np


def proportional_counts(class_counts: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """Images of each class per part: a controlled rounding of the proportional quotas.

    Args:
        class_counts: number of images of each class (``n_c``), all >= 0.
        sizes: size of each part (``s_p``), all >= 0, summing to ``sum(class_counts)``.

    Returns:
        An int64 array ``counts[p, c]`` whose rows sum to ``sizes``, whose columns sum
        to ``class_counts``, and with every entry the floor or the ceiling of
        ``sizes[p] * class_counts[c] / sum(class_counts)``.
    """
    n_c = np.asarray(class_counts, dtype=np.int64)
    s_p = np.asarray(sizes, dtype=np.int64)
    total = int(n_c.sum())
    if (n_c < 0).any() or (s_p < 0).any() or int(s_p.sum()) != total:
        raise ValueError(f"part sizes {list(s_p)} must be >= 0 and sum to {total}")
    if total == 0:
        return np.zeros((len(s_p), len(n_c)), dtype=np.int64)
    product = s_p[:, None] * n_c[None, :]  # exact integer quotas times `total`
    counts = product // total
    can_round_up = product % total != 0
    row_deficit = s_p - counts.sum(axis=1)
    col_deficit = n_c - counts.sum(axis=0)
    extra = _unit_flow(row_deficit, col_deficit, can_round_up)
    return counts + extra


def _unit_flow(row_need: np.ndarray, col_need: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """A 0/1 matrix on the ``allowed`` cells with the given row and column sums.

    Max-flow by breadth-first augmenting paths on the bipartite graph rows -> columns
    (unit capacities), source -> row ``r`` (capacity ``row_need[r]``), column ``c`` ->
    sink (capacity ``col_need[c]``). Deterministic: nodes are visited in index order.
    """
    rows, cols = allowed.shape
    flow = np.zeros((rows, cols), dtype=np.int64)
    row_left = row_need.astype(np.int64).copy()
    col_left = col_need.astype(np.int64).copy()
    while True:
        # Breadth-first search from every row with spare supply to a column with demand.
        parent_of_col = np.full(cols, -1, dtype=np.int64)  # row that reached the column
        parent_of_row = np.full(rows, -2, dtype=np.int64)  # column that reached the row
        queue: deque[int] = deque()
        for r in range(rows):
            if row_left[r] > 0:
                parent_of_row[r] = -1  # reached from the source
                queue.append(r)
        end = -1
        while queue and end < 0:
            r = queue.popleft()
            for c in range(cols):
                if parent_of_col[c] >= 0 or not allowed[r, c] or flow[r, c] == 1:
                    continue
                parent_of_col[c] = r
                if col_left[c] > 0:
                    end = c
                    break
                for r2 in range(rows):  # walk back along an edge that carries flow
                    if flow[r2, c] == 1 and parent_of_row[r2] == -2:
                        parent_of_row[r2] = c
                        queue.append(r2)
        if end < 0:
            break
        c = end
        col_left[c] -= 1
        while True:
            r = int(parent_of_col[c])
            flow[r, c] = 1
            back = int(parent_of_row[r])
            if back == -1:
                row_left[r] -= 1
                break
            flow[r, back] = 0
            c = back
    if (row_left != 0).any() or (col_left != 0).any():  # impossible for controlled rounding
        raise RuntimeError("no stratified allocation exists for these sizes")
    return flow


def stratified_split(labels: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into parts of the given sizes, stratified by label.

    Args:
        labels: 1-D array of integer class labels.
        sizes: the size of each part; they must sum to ``len(labels)``.
        seed: seed of ``np.random.default_rng`` deciding which images go where.

    Returns:
        One sorted int64 index array per part. Together they cover every index once.
        Each class's count in each part is within one image of proportional (see
        :func:`proportional_counts`). The result depends only on ``labels``, ``sizes``
        and ``seed``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    classes = np.unique(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    counts = proportional_counts([len(m) for m in members], sizes)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for c, idx in enumerate(members):
        shuffled = idx[np.argsort(rng.random(len(idx)), kind="stable")]
        bounds = np.concatenate([[0], np.cumsum(counts[:, c])])
        for p in range(len(sizes)):
            parts[p].append(shuffled[bounds[p] : bounds[p + 1]])
    return [np.sort(np.concatenate(chunks)).astype(np.int64) for chunks in parts]
