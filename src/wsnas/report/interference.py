"""Heat maps of an interference matrix (see :mod:`wsnas.experiments.interference`).

:func:`interference_figure` draws two panels side by side, rows = the child trained in a step
(A), columns = the child measured (B), both in index order: the mean change of B's probe loss
after a step on A (diverging colours centred on zero and saturating at the 98th percentile
of |d_loss|; blue: training A lowered B's loss) and
the mean cosine of A's and B's gradients. Unobserved pairs are left blank. The figure is a
standalone :class:`matplotlib.figure.Figure` rendered by the Agg canvas (no pyplot, no display).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wsnas.core.files import atomic_write

__all__ = ["interference_figure"]


def _limit(values: np.ndarray) -> float:
    """Symmetric colour limit: the 98th percentile of |values|, so a few outliers (children whose
    ops were never trained yet) do not wash out the rest; values beyond it saturate."""
    finite = np.abs(values[np.isfinite(values)])
    if not finite.size:
        return 1.0
    limit = float(np.percentile(finite, 98))
    return limit if limit > 0 else (float(finite.max()) or 1.0)


def interference_figure(matrix: dict, path: str | Path, *, names: Sequence[str] | None = None,
                        title: str | None = None) -> Path:
    """Write the d_loss and cosine heat maps of ``matrix`` (from
    :func:`wsnas.experiments.interference.interference_matrix`) as a PNG at ``path``; returns the path.

    ``names`` labels every eighth child on the axes (e.g. the tiny64 digits ``111``..``444``).
    """
    path = Path(path)
    d_loss = np.asarray(matrix["d_loss"], dtype=float)
    cosine = np.asarray(matrix["cosine"], dtype=float)
    n = d_loss.shape[0]
    fig = Figure(figsize=(12, 5.4), dpi=110)
    FigureCanvasAgg(fig)
    panels = [
        (d_loss, "mean change of B's probe loss after a step on A", -_limit(d_loss), _limit(d_loss)),
        (cosine, "mean cosine of A's and B's gradients (shared parameters)", -1.0, 1.0),
    ]
    step = max(1, n // 8)
    ticks = list(range(0, n, step))
    for k, (values, label, lo, hi) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=lo, vmax=hi,
                          interpolation="nearest", aspect="equal")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("measured child B (index)")
        ax.set_ylabel("trained child A (index)")
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        if names is not None:
            ax.set_xticklabels([names[i] for i in ticks], rotation=90, fontsize=7)
            ax.set_yticklabels([names[i] for i in ticks], fontsize=7)
        fig.colorbar(image, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format=path.suffix.lstrip(".") or "png")
    return path
