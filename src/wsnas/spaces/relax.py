"""The continuous relaxation of a space: the edges a differentiable search puts weights on.

Differentiable search (DARTS, GDAS, PC-DARTS, GAEA) puts a weight on every candidate op of every
*edge* of the supernet, and selection turns the weights back into one architecture. For tiny64
and NB201 an edge is a choice (each edge picks one op). In the DARTS space the discrete
choices (two inputs per node, one op per input) differ from the 14 candidate edges per cell
type that the search network weighs, so the space provides its own relaxation.

A :class:`Relaxation` knows:

* ``edges`` — every edge with its options and the node it feeds (edges feeding the same node
  compete for that node's inputs: PC-DARTS edge weights and DARTS topology decisions);
* :meth:`path` — the supernet path (one spec per edge, in the network's own layout) from a
  sequence of per-edge specs;
* :meth:`discretize` — the magnitude selection: the architecture the weights pick;
* :meth:`arch_rows` — which option of which edge an architecture uses (None: edge unused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wsnas.spaces.arch import Arch


@dataclass(frozen=True)
class Edge:
    """One weighted edge of the relaxation."""

    name: str
    options: tuple[str, ...]
    node: str  # the node it feeds (edges with the same node compete for its inputs)
    source: int = 0  # the node it reads (for topology decisions)


class Relaxation:
    """The relaxation where every choice is one edge (tiny64, NB201)."""

    #: at most this many inputs per node survive selection (None: every edge is kept)
    inputs_per_node: int | None = None

    def __init__(self, space) -> None:  # a wsnas.spaces.Space
        self.space = space
        self.edges = tuple(_edge_of(c.name, c.options) for c in space.choices)

    @property
    def options(self) -> tuple[str, ...]:
        return self.edges[0].options

    def nodes(self) -> dict[str, list[int]]:
        """Node -> the indices of the edges feeding it, in edge order."""
        out: dict[str, list[int]] = {}
        for e, edge in enumerate(self.edges):
            out.setdefault(edge.node, []).append(e)
        return out

    def path(self, specs: Sequence) -> tuple:
        """The supernet path of one spec per edge."""
        if len(specs) != len(self.edges):
            raise ValueError(f"{self.space.name} has {len(self.edges)} edges, got {len(specs)} specs")
        return tuple(specs)

    def discretize(self, weights: np.ndarray, *, exclude: Sequence[str] = ()) -> Arch:
        """The architecture with the largest weight on every edge (``exclude``: ops never picked)."""
        w = _masked(np.asarray(weights, dtype=float), self.options, exclude)
        return self.space.from_option_indices([int(np.argmax(row)) for row in w])

    def arch_rows(self, arch: Arch) -> list[int | None]:
        """The option index each edge uses in ``arch`` (None: the edge is not used)."""
        return list(self.space.option_indices(arch))


def _edge_of(name: str, options: tuple[str, ...]) -> Edge:
    """tiny64 names edges ``i->j``, NB201 ``j<-i``; the node fed is j."""
    if "->" in name:
        src, dst = name.split("->")
    elif "<-" in name:
        dst, src = name.split("<-")
    else:
        return Edge(name, options, node=name)
    return Edge(name, options, node=dst.strip(), source=int(src))


def _masked(w: np.ndarray, options: Sequence[str], exclude: Sequence[str]) -> np.ndarray:
    w = w.copy()
    for op in exclude:
        if op in options:
            w[..., list(options).index(op)] = -np.inf
    return w


__all__ = ["Edge", "Relaxation"]
