"""The continuous relaxation of a space: the edges a differentiable search puts weights on.

Differentiable search (DARTS, GDAS, PC-DARTS, GAEA) puts a weight on every candidate op of every
*edge* of the supernet, and selection turns the weights back into one architecture. For tiny64
and NB201 an edge is a choice (each edge picks one op). In the DARTS space the discrete
choices (two inputs per node, one op per input) differ from the 14 candidate edges per cell
type that the search network weighs, so the space provides its own relaxation.

A :class:`Relaxation` knows:

* ``edges`` — every edge with its options and the node it feeds (edges feeding the same node
  compete for that node's inputs: PC-DARTS edge weights and DARTS topology decisions);
* ``options`` — the ops the weights are laid out by: every op of any edge, in order of first
  appearance. Edges may offer different ops (the mobile space's first layer of a stage has no
  skip): an edge's weight vector still has one entry per op of ``options``, and :meth:`allowed`
  says which of them the edge has (the others get weight 0 and are never picked);
* :meth:`path` — the supernet path (one spec per edge, in the network's own layout) from a
  sequence of per-edge specs laid out by ``options`` (each turned into the edge's own layout);
* :meth:`discretize` — the magnitude selection: the architecture the weights pick;
* :meth:`arch_rows` — which op (a position in ``options``) each edge uses (None: edge unused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from wsnas.nn.choice import Sampled
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
        """Every op of any edge, in order of first appearance (each edge's own when they all agree)."""
        return tuple(dict.fromkeys(o for e in self.edges for o in e.options))

    def allowed(self) -> np.ndarray:
        """``edges x options`` booleans: which ops of :attr:`options` each edge offers."""
        return np.array([[o in e.options for o in self.options] for e in self.edges], dtype=bool)

    def nodes(self) -> dict[str, list[int]]:
        """Node -> the indices of the edges feeding it, in edge order."""
        out: dict[str, list[int]] = {}
        for e, edge in enumerate(self.edges):
            out.setdefault(edge.node, []).append(e)
        return out

    def path(self, specs: Sequence) -> tuple:
        """The supernet path of one spec per edge (laid out by :attr:`options`)."""
        if len(specs) != len(self.edges):
            raise ValueError(f"{self.space.name} has {len(self.edges)} edges, got {len(specs)} specs")
        options = self.options
        return tuple(spec if edge.options == options else self._own_spec(e, spec, options)
                     for e, (edge, spec) in enumerate(zip(self.edges, specs)))

    def _own_spec(self, e: int, spec, options: tuple[str, ...]):
        """A spec laid out by ``options`` turned into the layout of edge ``e``, whose ops are fewer."""
        own = self.edges[e].options
        if spec is None:
            return None
        if isinstance(spec, Sampled):
            return spec._replace(index=own.index(options[spec.index]))
        if isinstance(spec, torch.Tensor) and spec.dim() == 1:
            if spec.numel() != len(options):
                raise ValueError(f"expected {len(options)} weights (one per op of the relaxation), got {spec.numel()}")
            cache = self.__dict__.setdefault("_columns", {})  # index tensors, made once per edge and device
            key = (e, spec.device)
            if key not in cache:
                cache[key] = torch.tensor([options.index(o) for o in own], device=spec.device)
            return spec[cache[key]]
        if isinstance(spec, (int, np.integer)):
            return own.index(options[int(spec)])
        raise ValueError(f"cannot lay out a {type(spec).__name__} spec for edge {self.edges[e].name}")

    def discretize(self, weights: np.ndarray, *, exclude: Sequence[str] = ()) -> Arch:
        """The architecture with the largest weight on every edge (``exclude``: ops never picked)."""
        options = self.options
        w = _masked(np.asarray(weights, dtype=float), options, exclude)
        w[~self.allowed()] = -np.inf
        return self.space.from_option_indices([edge.options.index(options[int(np.argmax(row))])
                                               for edge, row in zip(self.edges, w)])

    def arch_rows(self, arch: Arch) -> list[int | None]:
        """The op (its position in :attr:`options`) each edge uses in ``arch`` (None: the edge is not used)."""
        self.space.validate(arch)
        return [self.options.index(op) for op in arch.ops]


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
