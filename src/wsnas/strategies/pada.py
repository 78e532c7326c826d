"""PA&DA: importance sampling of paths and data for single-path supernets (algorithms.md 5),
and the FairNAS baseline.

PA&DA (Lu et al., CVPR 2023) samples what it trains in proportion to normalised gradient
norms, to lower the variance of the supernet's stochastic gradient. Both distributions are
mixed with uniform by ``tau = e / E`` at the end of epoch ``e`` (0-based) of ``E``: the first two
epochs are uniform. The rules follow the authors' released NB201 code (repository
ShunLu91/PA-DA: ``nasbench201/train_panda_201.py``, functions ``train``,
``operatio_gradient_norm_prob``, ``sample_prob_with_grads_norm`` and the epoch loop of ``main``,
which sets tau before training the epoch; the ops in ``nasbench201/models/cell_operations.py``
and ``models/supernet.py``; the sample indices from ``nasbench201/datasets/dataloader.py``):

* paths — one op-probability vector shared by every edge (the authors' code; per-edge vectors
  with ``per_edge=True``, the paper's general form); each edge draws its op i.i.d. from it.
  After every step each op gets a gradient norm for the step, by the ``credit`` rule:

  - ``ops`` (default, the authors' rule): the sum of the per-tensor gradient norms of the op's
    convolution weights and biases (in their NB201 supernet, batch norm without affine
    parameters, these are all of a conv op's parameters) over every cell and edge that ran
    it, divided by the number of edges that chose it. Ops without convolutions (``none``,
    skip, pooling) get nothing, so their probability falls to ``(1 - tau) / |O|``.
  - ``path``: every op on the sampled path gets the norm of the step's whole gradient (over
    every parameter that got one), as the paper's derivation over whole paths suggests.

  An op that got a non-zero norm moves its running mean half way to it (``(old + new) / 2``,
  from 0 at the start of every epoch); the others keep theirs. At the end of the epoch
  ``p <- tau * g / sum(g) + (1 - tau) / |O|``. The gradients are read after the step's clipping,
  where the authors read them; the norms come from the backward pass the step already does.
* data — the importance of a sample is ``||softmax(z) - onehot(y)||_2`` from the step's own
  forward pass. It restarts every epoch: a sample not drawn in the epoch has importance 0 (so
  ``q = (1 - tau) / N`` for it); a sample drawn once has that value, and each further draw in the
  epoch averages the new value with the running one (``(old + new) / 2`` in draw order, the
  authors' rule: the mean of two draws, with later draws weighing more from the third on). At
  the end of the epoch ``q <- tau * g / sum(g) + (1 - tau) / N`` and the next epoch draws N
  indices with replacement from ``q`` (the trainer asks for them through
  :meth:`epoch_indices`; the data stay where they are; the first epoch is a shuffle). Each step
  learns which samples it saw from the trainer (``step``'s ``indices``); the importances stay on
  the device until the epoch's end. N is the context's ``train_size`` and ``tau`` uses its
  ``total_epochs``.

``pada`` does both, ``pada-path`` paths only (data in shuffled order), ``pada-data`` data only
(paths uniform).

Choices with different ops (the mobile space: no skip in the first layer of a stage): the
probabilities are kept over every op of any choice (|O| of them), and a choice draws among its
own ops with their probabilities renormalised; in a space whose choices all offer the same ops
(tiny64, NB201) nothing is renormalised and the draws are the authors'.

FairNAS (Chu et al., 2021) trains, on every mini-batch, |O| paths in which every op of every
edge appears exactly once (each edge's ops in a fresh random permutation), accumulates their
gradients and makes one update. |O| is the most ops any choice has; a choice with fewer fills
its remaining paths with ops of its own drawn uniformly (the permutation taken over all |O|
entries), so strict fairness holds on the choices with |O| ops.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.nn.choice import ChoiceBlock
from wsnas.spaces import Arch
from wsnas.strategies.base import (
    SinglePathStrategy,
    StepResult,
    Strategy,
    StrategyContext,
    rng_from_state,
    rng_state,
    train_path,
)

RUNNING = 0.5  # factor of the running mean of the op gradient norms (and of a sample's repeated draws)
CREDITS = ("ops", "path")  # what a step's gradient norm is credited to (the authors' rule first)


def _choice_blocks(supernet: nn.Module, n_choices: int) -> list[tuple[int, ChoiceBlock]]:
    """Every choice block of the supernet with the index of the choice it implements."""
    blocks = [m for m in supernet.modules() if isinstance(m, ChoiceBlock)]
    if not blocks or len(blocks) % n_choices:
        raise WsnasError("PA&DA path sampling needs a supernet whose cells repeat the space's choices")
    return [(k % n_choices, b) for k, b in enumerate(blocks)]


def _conv_parameters(op: nn.Module) -> list[nn.Parameter]:
    """The weights and biases of the convolutions of ``op`` (what the authors' rule credits)."""
    return [p for m in op.modules() if isinstance(m, nn.modules.conv._ConvNd)
            for p in (m.weight, m.bias) if p is not None]


def _all_ops(space) -> tuple[str, ...]:
    """Every op of any choice of ``space``, in order of first appearance."""
    return tuple(dict.fromkeys(o for c in space.choices for o in c.options))


def fold_draws(indices: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """Each of ``n`` samples' importance over one epoch from its draws (``indices``, ``values``
    in draw order), the authors' way: a sample's first value as it is, each later one averaged
    with the running value (``(old + new) / 2``); 0 for a sample never drawn.

    Done at once on the values' device: for a sample drawn ``k`` times with values
    ``v_1 .. v_k`` the result is ``v_1 / 2^(k-1) + sum_{j>1} v_j / 2^(k-j+1)``.
    """
    g = torch.zeros(n, dtype=torch.float64, device=values.device)
    if indices.numel() == 0:
        return g
    idx, order = torch.sort(indices.to(values.device), stable=True)  # by sample, draw order kept
    k = torch.bincount(idx, minlength=n)  # draws per sample
    pos = torch.arange(len(idx), device=idx.device) - (torch.cumsum(k, 0) - k)[idx]  # 0: a first draw
    later = k[idx] - 1 - pos  # draws of the same sample after this one
    weight = torch.exp2(-(later + (pos > 0).long()).double())
    return g.index_add_(0, idx, weight * values[order].double())


class PadaStrategy(SinglePathStrategy):
    """PA&DA; ``paths`` / ``data`` switch each half on (``pada-path``, ``pada-data``); ``credit``
    is what a step's gradient norm is credited to (``ops``: the authors' rule, ``path``)."""

    name = "pada"

    def __init__(self, paths: bool = True, data: bool = True, *, per_edge: bool = False,
                 credit: str = "ops") -> None:
        if not (paths or data):
            raise WsnasError("PA&DA needs path sampling, data sampling or both")
        if credit not in CREDITS:
            raise WsnasError(f"unknown PA&DA credit rule {credit!r}; accepted: "
                             "ops (the authors' code: parametric ops only), path (every op of the path)")
        if credit != "ops" and not paths:
            raise WsnasError(f"PA&DA credit rule {credit!r} needs path sampling (pada or pada-path)")
        self.paths, self.data, self.per_edge, self.credit = paths, data, per_edge, credit
        self.name = "pada" if paths and data else ("pada-path" if paths else "pada-data")

    def describe(self) -> dict:
        out = {"strategy": self.name, "paths": self.paths, "data": self.data, "per_edge": self.per_edge}
        if self.credit != "ops":  # the default leaves the identity of runs made before the option alone
            out["credit"] = self.credit
        return out

    def setup(self, ctx: StrategyContext) -> None:
        if self.data and ctx.replica is not None:
            # each rank sees only its shard's logits; the importances of the whole batch are not gathered
            raise WsnasError(f"{self.name}'s data sampling does not run data-parallel yet; train it in one "
                             "process (pada-path runs data-parallel)")
        super().setup(ctx)
        space, supernet = ctx.space, ctx.supernet
        self.ops = _all_ops(space)  # the probabilities' columns
        self.n_ops = len(self.ops)
        # per choice: the columns of its own ops (None: all of them, in order)
        self._columns = [None if c.options == self.ops else np.array([self.ops.index(o) for o in c.options])
                         for c in space.choices]
        self.blocks = _choice_blocks(supernet, len(space.choices))
        # per block, per op: the tensors the authors' rule reads; the path rule reads every parameter
        self._credited = [[_conv_parameters(block.candidates[op]) if op in block.candidates else []
                           for op in self.ops] for _, block in self.blocks]
        self._parameters = list(supernet.parameters())
        self.rows = len(space.choices) if self.per_edge else 1
        self.probs = np.full((self.rows, self.n_ops), 1.0 / self.n_ops)
        self._pending: list[tuple[np.ndarray, np.ndarray, torch.Tensor]] = []  # steps not yet folded
        self.norms = np.zeros((self.rows, self.n_ops))
        self.rng = np.random.default_rng(ctx.seed)
        self._draws: list[tuple[torch.Tensor, torch.Tensor]] = []  # this epoch's (samples, importances)
        self.q: torch.Tensor | None = None  # the next epoch's data distribution (None: a shuffle)
        self.epoch = 0  # epochs done

    @property
    def tau(self) -> float:
        """The mixing weight of the distributions in use: ``e / E`` after epoch ``e`` (0-based) of
        ``E`` (the authors' schedule: 0 after the first epoch too)."""
        return max(0, self.epoch - 1) / max(1, self.ctx.total_epochs or 1)

    # ------------------------------------------------------------------ paths
    def next_arch(self) -> Arch:
        idx = []
        for e, columns in enumerate(self._columns):
            p = self.probs[e if self.per_edge else 0]
            if columns is None:
                idx.append(int(self.rng.choice(self.n_ops, p=p)))
            else:  # a choice without some of the ops: its own, renormalised
                own = p[columns]
                idx.append(int(self.rng.choice(len(columns), p=own / own.sum())))
        return self.space.from_option_indices(idx)

    def _fold_grad_norms(self, arch: Arch) -> None:
        """Queue this step's gradient norm of every op of ``arch`` for the running means.

        ``ops``: an op's norm is the sum of the norms of its convolutions' weight and bias
        gradients over every block that ran it, divided by the number of edges that chose it;
        ops without convolutions get nothing. ``path``: every op on the path gets the norm of the
        whole step's gradient (every parameter that got one). The gradients are read after the
        step's clipping and update, where the authors read them. The norms stay on the device
        (one ``_foreach_norm``): no host synchronisation in the step; they are folded, in order,
        when :attr:`norms` is next read (at the latest at the epoch's end).
        """
        chosen = [self.ops.index(op) for op in self.space.validate(arch).ops]  # the probabilities' columns
        used = np.zeros((self.rows, self.n_ops), dtype=bool)
        edges = np.zeros((self.rows, self.n_ops))
        for choice, op in enumerate(chosen):
            row = choice if self.per_edge else 0
            used[row, op] = True
            edges[row, op] += 1
        if self.credit == "path":
            grads = [p.grad.detach() for p in self._parameters if p.grad is not None]
            whole = (torch.stack(torch._foreach_norm(grads)).double().square().sum().sqrt() if grads
                     else torch.zeros((), dtype=torch.float64))
            self._pending.append((used, np.ones_like(edges), whole.expand(self.rows, self.n_ops)))
            return
        grads, slots = [], []
        for b, (choice, _) in enumerate(self.blocks):
            op = chosen[choice]
            slot = (choice if self.per_edge else 0) * self.n_ops + op
            for p in self._credited[b][op]:
                if p.grad is not None:
                    grads.append(p.grad.detach())
                    slots.append(slot)
        if grads:
            device = grads[0].device
            total = torch.zeros(self.rows * self.n_ops, dtype=torch.float64, device=device).index_add_(
                0, _index(slots, device), torch.stack(torch._foreach_norm(grads)).double())
        else:
            total = torch.zeros(self.rows * self.n_ops, dtype=torch.float64)
        self._pending.append((used, edges, total.view(self.rows, self.n_ops)))

    @property
    def norms(self) -> np.ndarray:
        """Running mean of each op's gradient norm this epoch (``rows x |O|``; from 0)."""
        self._flush()
        return self._norms

    @norms.setter
    def norms(self, value: np.ndarray) -> None:
        self._pending = []
        self._norms = value

    def _flush(self) -> None:
        """Fold the queued steps into the running means, in order (one copy to the host).

        An op's mean moves half way to the step's value whenever it got a non-zero one (the
        authors' ``mean([old, new])``, from 0 at the epoch's start); otherwise it stays."""
        if not self._pending:
            return
        steps = [t for _, _, t in self._pending]
        if len({t.device for t in steps}) == 1:
            totals = torch.stack(steps).cpu().numpy()
        else:  # a step without gradients left its zeros on the host
            totals = torch.stack([t.cpu() for t in steps]).numpy()
        for (used, edges, _), total in zip(self._pending, totals):
            step = np.where(used, total / np.maximum(edges, 1), 0.0)
            self._norms = np.where(step != 0, RUNNING * self._norms + (1 - RUNNING) * step, self._norms)
        self._pending = []

    # ------------------------------------------------------------------ data
    def epoch_indices(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """The next epoch's sample order: ``n`` draws with replacement from ``q`` (None: shuffle)."""
        if not self.data or self.q is None:
            return None
        return torch.multinomial(self.q, n, replacement=True, generator=generator)

    def _record_importance(self, logits: torch.Tensor, y: torch.Tensor, n: int,
                           indices: torch.Tensor | None) -> None:
        """Queue the importance of the samples at ``indices`` (of ``n``), where the data live (no
        copy to the host per step); :meth:`end_epoch` folds the epoch's draws."""
        if indices is None:
            return
        with torch.no_grad():
            g = (torch.softmax(logits.float(), 1) - F.one_hot(y, logits.shape[1]).float()).norm(dim=1)
        self._draws.append((indices, g))  # the indices stay where the trainer keeps them

    def _data_distribution(self, importance: torch.Tensor, tau: float) -> torch.Tensor:
        """``q = tau * g / sum(g) + (1 - tau) / N`` on the host (uniform where ``g`` is all 0)."""
        g = importance.to("cpu", torch.float64)
        n = len(g)
        total = float(g.sum())
        share = g / total if total > 0 else torch.full_like(g, 1.0 / n)
        return tau * share + (1 - tau) / n

    # ------------------------------------------------------------------ step
    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        arch = self.next_arch()
        result = train_path(self, arch, x, y, keep_logits=self.data)
        self.observe(arch, result.logits, y, indices)
        return result

    def observe(self, arch: Arch, logits: torch.Tensor | None, y: torch.Tensor,
                indices: torch.Tensor | None = None) -> None:
        """Learn from a step trained outside :meth:`step` (a training loop of your own): call it
        after the step's backward pass, clipping and optimiser step, while the gradients are still
        on the supernet's parameters, with the path trained (from :meth:`next_arch`), the batch's
        logits and labels, and ``indices``, the batch's positions in the training data (the
        order :meth:`epoch_indices` gave). Path sampling reads the gradients; data sampling the
        logits (they may be None without it). :meth:`step` is ``next_arch``, one SGD step and
        this."""
        if self.paths:
            self._fold_grad_norms(arch)
        if self.data:
            if logits is None:
                raise WsnasError(f"{self.name} samples the data: observe() needs the batch's logits")
            self._record_importance(logits.detach(), y, self.ctx.train_size, indices)

    def end_epoch(self, epoch: int) -> None:
        self.epoch = epoch + 1
        tau = self.tau  # e / E for the epoch e just finished
        if self.paths:
            g = self.norms
            sums = g.sum(1, keepdims=True)
            share = np.where(sums > 0, g / np.where(sums > 0, sums, 1.0), 1.0 / self.n_ops)
            self.probs = tau * share + (1 - tau) / self.n_ops
            self.norms = np.zeros_like(self.norms)  # the running mean restarts every epoch
        if self.data:
            self.q = self._data_distribution(self.importance, tau)
            self._draws = []  # every sample's importance restarts every epoch

    @property
    def importance(self) -> torch.Tensor:
        """Every sample's importance from this epoch's draws so far (0: not drawn; on the device)."""
        n = self.ctx.train_size
        if not self._draws:
            return torch.zeros(n, dtype=torch.float64)
        indices, values = (torch.cat(t) for t in zip(*self._draws))
        return fold_draws(indices, values, n)

    def epoch_metrics(self) -> dict:
        """What the sampling looks like after an epoch (logged per epoch in ``run_metrics``):
        ``path_prob_<op>`` the probability of each op (mean over the edges with per-edge vectors),
        and ``data_ess`` the effective sample size of the next epoch's data distribution as a
        share of N (``1 / (N sum q^2)``: 1 when uniform)."""
        out = {}
        if self.paths:
            out.update({f"path_prob_{op}": float(p) for op, p in zip(self.ops, self.probs.mean(0))})
        if self.data and self.q is not None:
            out["data_ess"] = float(1.0 / (len(self.q) * (self.q * self.q).sum()))
        return out

    def state_dict(self) -> dict:
        draws = [torch.cat(t).cpu() for t in zip(*self._draws)] if self._draws else None
        return {"probs": torch.from_numpy(self.probs.copy()), "norms": torch.from_numpy(self.norms.copy()),
                "rng": rng_state(self.rng), "epoch": self.epoch, "q": self.q,
                "draws": None if draws is None else {"indices": draws[0], "values": draws[1]}}

    def load_state_dict(self, state: dict) -> None:
        self.probs = state["probs"].numpy().copy()
        self.norms = state["norms"].numpy().copy()
        self.rng.bit_generator.state = rng_from_state(state["rng"])
        self.epoch = int(state["epoch"])
        if "q" in state:
            self.q = None if state["q"] is None else state["q"].to("cpu", torch.float64).clone()
            draws = state["draws"]
            self._draws = [] if draws is None else [(draws["indices"].clone(), draws["values"].clone())]
        else:  # a checkpoint from before the per-epoch reset: its last importances stand for the epoch's
            old = state.get("importance")
            self.q = None if old is None or self.epoch == 0 else self._data_distribution(old, self.tau)
            self._draws = []


class PadaPathStrategy(PadaStrategy):
    """PA&DA with path sampling only (the data in shuffled order)."""

    def __init__(self, *, per_edge: bool = False, credit: str = "ops") -> None:
        super().__init__(paths=True, data=False, per_edge=per_edge, credit=credit)


class PadaDataStrategy(PadaStrategy):
    """PA&DA with data sampling only (paths i.i.d. uniform)."""

    def __init__(self) -> None:
        super().__init__(paths=False, data=True)


class FairNasStrategy(Strategy):
    """FairNAS: on every mini-batch, |O| paths covering every op of every edge once, one update."""

    name = "fairnas"

    def describe(self) -> dict:
        return {"strategy": self.name}

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.n_ops = max(len(c.options) for c in ctx.space.choices)
        self.rng = np.random.default_rng(ctx.seed)

    def paths(self) -> list[Arch]:
        """|O| paths; on every edge the ops appear in a fresh random order, each once (an edge with
        fewer ops fills its remaining paths with its own ops drawn uniformly)."""
        perms = []
        for c in self.space.choices:
            k = len(c.options)
            if k == self.n_ops:
                perms.append(self.rng.permutation(self.n_ops))
            else:
                perms.append(self.rng.permutation(np.concatenate([np.arange(k),
                                                                  self.rng.integers(k, size=self.n_ops - k)])))
        return [self.space.from_option_indices([int(p[k]) for p in perms]) for k in range(self.n_ops)]

    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        if self.replica is not None:
            raise WsnasError("FairNAS does not run data-parallel yet; train it in one process")
        self.optimizer.zero_grad(set_to_none=True)
        losses, correct = [], []
        for arch in self.paths():
            logits = self.supernet(x, arch)
            loss = F.cross_entropy(logits, y)
            loss.backward()  # gradients accumulate over the |O| paths
            losses.append(loss.detach())
            correct.append((logits.detach().argmax(1) == y).sum())
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.grad_clip)
        self.optimizer.step()
        return StepResult(loss=torch.stack(losses).mean(),
                          correct=torch.stack(correct).double().mean().round().long(), count=len(y))

    def state_dict(self) -> dict:
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = rng_from_state(state["rng"])


def _index(values: list[int], device: torch.device) -> torch.Tensor:
    """An index tensor on ``device`` without waiting for the device (pinned, non-blocking copy)."""
    t = torch.tensor(values, dtype=torch.long)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


__all__ = ["FairNasStrategy", "PadaDataStrategy", "PadaPathStrategy", "PadaStrategy"]
