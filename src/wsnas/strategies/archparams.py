"""Architecture parameters of differentiable search, in two parametrisations (algorithms.md 3).

:class:`ArchParams` holds one weight per candidate op of every edge of a space's relaxation,
and optionally (PC-DARTS) one weight per edge normalised over the edges that feed the same node:

* ``softmax`` (DARTS family): logits ``alpha``, mixing weights ``softmax(alpha)`` per edge,
  updated by Adam (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3, the DARTS defaults);
* ``gaea`` (GAEA): weights ``theta`` that live on each edge's simplex (initialised uniform) and
  are the mixing weights themselves, updated by exponentiated gradient
  (:class:`ExponentiatedGradient`: ``theta <- theta * exp(-eta * grad)``, clamp at 1e-5,
  renormalise per edge; eta 0.1, no momentum).

Ops in ``exclude`` (e.g. NB201's ``none`` in GAEA's configuration) get weight 0 and are never
selected, and so do the ops an edge does not offer (``allowed``: the mobile space's first layer
of a stage has no skip). The parametrisation is an option of every differentiable strategy, not
a copy of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.spaces.relax import Relaxation

PARAMS = ("softmax", "gaea")
# DARTS's architecture optimiser (Adam) and GAEA's step size
ADAM_DEFAULTS = {"lr": 3e-4, "betas": (0.5, 0.999), "weight_decay": 1e-3}
GAEA_ETA = 0.1
GAEA_CLAMP = 1e-5


class ExponentiatedGradient(torch.optim.Optimizer):
    """Mirror descent on the simplex: ``p <- p * exp(-lr * grad)``, clamp, renormalise the last dim.

    A group may carry a boolean ``mask`` (same shape as its parameters): entries outside it stay
    exactly 0 (excluded ops). Every row of every parameter sums to 1 and every allowed entry is
    at least ``clamp`` after each step (:func:`floor_simplex`; the authors clamp then renormalise,
    which can leave an entry just under the floor).
    """

    def __init__(self, params, lr: float = GAEA_ETA, clamp: float = GAEA_CLAMP):
        if lr <= 0:
            raise WsnasError(f"the exponentiated-gradient step size must be positive, got {lr}")
        super().__init__(params, {"lr": lr, "clamp": clamp, "mask": None})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            mask = group.get("mask")
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.mul_(torch.exp(-group["lr"] * p.grad))
                allowed = torch.ones_like(p, dtype=torch.bool) if mask is None else mask.bool()
                p.copy_(floor_simplex(p.clamp(min=group["clamp"]) * allowed, group["clamp"], allowed))
        return loss


def floor_simplex(p: torch.Tensor, floor: float, allowed: torch.Tensor) -> torch.Tensor:
    """Renormalise every row of ``p`` to sum 1 with each allowed entry at least ``floor``.

    Entries that would fall below the floor are fixed at it and the rest rescaled to share the
    remaining mass, repeated until no entry moves (at most one pass per entry of a row).
    """
    p = p * allowed
    fixed = torch.zeros_like(allowed)
    for _ in range(p.shape[-1]):
        free = allowed & ~fixed
        budget = 1.0 - floor * fixed.sum(-1, keepdim=True)
        mass = (p * free).sum(-1, keepdim=True).clamp_min(1e-30)
        q = torch.where(free, p * budget / mass, torch.where(fixed, torch.full_like(p, floor), torch.zeros_like(p)))
        low = free & (q < floor)
        if not bool(low.any()):
            return q
        fixed = fixed | low
    return q


class ArchParams(nn.Module):
    """Per-edge op weights (and optional per-node edge weights) of one search.

    Args:
        n_edges, options: the relaxation's edges and the candidate ops of any of them.
        param: ``softmax`` or ``gaea``.
        exclude: ops that are never used or selected.
        allowed: ``n_edges x len(options)`` booleans, the ops each edge offers (None: every op).
        nodes: for edge weights (PC-DARTS), the edge indices feeding each node.
        seed: initialisation of the softmax logits (1e-3 * N(0, 1), as DARTS).
    """

    def __init__(self, n_edges: int, options: Sequence[str], *, param: str = "softmax",
                 exclude: Sequence[str] = (), nodes: Sequence[Sequence[int]] | None = None, seed: int = 0,
                 allowed=None):
        super().__init__()
        check_param(param)
        bad = [op for op in exclude if op not in options]
        if bad:
            raise WsnasError(f"cannot exclude unknown op {bad[0]!r}; the ops are {', '.join(options)}")
        self.param = param
        self.options = tuple(options)
        self.exclude = tuple(exclude)
        mask = torch.ones(n_edges, len(options)) if allowed is None else torch.as_tensor(
            np.asarray(allowed, dtype=bool), dtype=torch.float32).clone()
        if mask.shape != (n_edges, len(options)):
            raise ValueError(f"allowed must be {n_edges} x {len(options)}, got {tuple(mask.shape)}")
        for op in exclude:
            mask[:, self.options.index(op)] = 0.0
        if not bool((mask.sum(1) > 0).all()):
            raise WsnasError("excluding every op leaves nothing to choose")
        self.register_buffer("mask", mask)
        gen = torch.Generator().manual_seed(seed)
        if param == "softmax":
            self.alpha = nn.Parameter(1e-3 * torch.randn(n_edges, len(options), generator=gen))
        else:
            self.alpha = nn.Parameter(mask / mask.sum(1, keepdim=True))
        self.nodes = [list(n) for n in nodes] if nodes is not None else None
        if self.nodes is not None:
            self.beta = nn.ParameterList(
                nn.Parameter(1e-3 * torch.randn(len(n), generator=gen)) if param == "softmax"
                else nn.Parameter(torch.full((len(n),), 1.0 / len(n))) for n in self.nodes)
        else:
            self.beta = None

    @classmethod
    def for_relaxation(cls, relaxation: Relaxation, *, param: str = "softmax", exclude: Sequence[str] = (),
                       edge_weights: bool = False, seed: int = 0) -> ArchParams:
        """The weights of a space's relaxation (``space.relaxation()``): one row per edge laid out by
        its ``options``, the ops an edge lacks masked; ``edge_weights`` adds PC-DARTS's weights of
        the edges feeding each node."""
        nodes = list(relaxation.nodes().values()) if edge_weights else None
        return cls(len(relaxation.edges), relaxation.options, param=param, exclude=exclude, nodes=nodes,
                   seed=seed, allowed=relaxation.allowed())

    # ------------------------------------------------------------------ weights
    def weights(self) -> torch.Tensor:
        """Mixing weights, one row per edge summing to 1 (differentiable)."""
        if self.param == "softmax":
            return torch.softmax(self.alpha.masked_fill(self.mask == 0, float("-inf")), dim=-1)
        return self.alpha

    def logits(self) -> torch.Tensor:
        """Logits of the op distribution (GDAS samples from them): alpha, or log(theta) for GAEA."""
        if self.param == "softmax":
            return self.alpha.masked_fill(self.mask == 0, float("-inf"))
        return torch.log(self.alpha.clamp_min(1e-30)).masked_fill(self.mask == 0, float("-inf"))

    def edge_weights(self) -> torch.Tensor | None:
        """Per-edge weights normalised over each node's incoming edges (PC-DARTS), or None."""
        if self.beta is None:
            return None
        out = torch.zeros(self.alpha.shape[0], device=self.alpha.device)
        for node, b in zip(self.nodes, self.beta):
            w = torch.softmax(b, dim=0) if self.param == "softmax" else b
            out = out.index_put((torch.tensor(node, device=out.device),), w)
        return out

    @torch.no_grad()
    def probabilities(self) -> np.ndarray:
        """The op distribution of every edge (softmax(alpha) or theta), as numpy."""
        return self.weights().detach().cpu().double().numpy()

    @torch.no_grad()
    def selection_weights(self) -> np.ndarray:
        """What magnitude selection ranks: the op weights, times the edge weights when present."""
        w = self.probabilities()
        beta = self.edge_weights()
        if beta is not None:
            w = w * beta.detach().cpu().double().numpy()[:, None]
        return w

    @torch.no_grad()
    def edge_entropy(self) -> np.ndarray:
        """Shannon entropy (nats) of each edge's op distribution, one value per edge."""
        p = self.probabilities()
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.where(p > 0, p * np.log(p), 0.0).sum(1)

    @torch.no_grad()
    def entropy(self) -> float:
        """Mean Shannon entropy (nats) of the edges' op distributions (GAEA's sparsity measure)."""
        return float(self.edge_entropy().mean())

    # ------------------------------------------------------------------ optimiser
    def make_optimizer(self, *, lr: float | None = None) -> torch.optim.Optimizer:
        """Adam (softmax) or exponentiated gradient (gaea) over every architecture parameter, with
        the settings of :func:`optimizer_settings`."""
        settings = optimizer_settings(self.param, lr)
        if self.param == "softmax":
            return torch.optim.Adam(self.parameters(), lr=settings["lr"], betas=settings["betas"],
                                    weight_decay=settings["weight_decay"])
        groups = [{"params": [self.alpha], "mask": self.mask}]
        if self.beta is not None:
            groups.append({"params": list(self.beta)})
        return ExponentiatedGradient(groups, lr=settings["lr"])


def check_param(param: str) -> None:
    """Refuse an architecture parametrisation other than :data:`PARAMS` (one line)."""
    if param not in PARAMS:
        raise WsnasError(f"unknown architecture parametrisation {param!r}; accepted: {', '.join(PARAMS)}")


def optimizer_settings(param: str, lr: float | None = None) -> dict:
    """The architecture optimiser of ``param`` with step size ``lr`` (None or 0: the default):
    ``{"optimizer": "Adam", "lr", "betas", "weight_decay"}`` (softmax) or
    ``{"optimizer": "exponentiated gradient", "lr"}`` (gaea). :meth:`ArchParams.make_optimizer`
    builds it; ``wsnas search --help`` prints it."""
    check_param(param)
    if param == "softmax":
        return {"optimizer": "Adam", **ADAM_DEFAULTS, **({"lr": lr} if lr else {})}
    return {"optimizer": "exponentiated gradient", "lr": lr or GAEA_ETA}


__all__ = ["ADAM_DEFAULTS", "GAEA_ETA", "PARAMS", "ArchParams", "ExponentiatedGradient", "check_param",
           "floor_simplex", "optimizer_settings"]
