"""PA&DA: importance sampling of paths and data for single-path supernets (algorithms.md 5),
and the FairNAS baseline.

PA&DA (Lu et al., CVPR 2023) samples what it trains in proportion to normalised gradient
norms, to lower the variance of the supernet's stochastic gradient; both distributions are
mixed with uniform by ``tau = epoch / epochs`` (uniform in the first epoch):

* paths — one op-probability vector shared by every edge (the authors' NB201 code; per-edge
  vectors with ``per_edge=True``, the paper's general form); each edge draws its op i.i.d.
  from it. After every step the gradient norm of each parametric op used (its weights and
  biases, summed over the cells and edges that used it, divided by the number of edges using
  it) is folded into a running mean (factor 0.5, reset every epoch); parameter-free ops count
  zero. At the end of the epoch ``p <- tau * g / sum(g) + (1 - tau) / |O|``. The norms come from
  the backward pass the step already does: no extra backward.
* data — the importance of a sample is ``||softmax(z) - onehot(y)||_2`` from the step's own
  forward pass (a sample keeps its last value until it is drawn again; 1 before); at the end of
  the epoch ``q <- tau * g / sum(g) + (1 - tau) / N`` and the next epoch draws N indices with
  replacement from ``q`` (the trainer asks for them through :meth:`epoch_indices`; the data
  stay where they are). Each step learns which samples it saw from the trainer (``step``'s
  ``indices``); N is the context's ``train_size`` and ``tau`` uses its ``total_epochs``.

``pada`` does both, ``pada-path`` paths only (data in shuffled order), ``pada-data`` data only
(paths uniform).

FairNAS (Chu et al., 2021) trains, on every mini-batch, |O| paths in which every op of every
edge appears exactly once (each edge's ops in a fresh random permutation), accumulates their
gradients and makes one update.
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

RUNNING = 0.5  # factor of the running mean of the op gradient norms


def _choice_blocks(supernet: nn.Module, n_choices: int) -> list[tuple[int, ChoiceBlock]]:
    """Every choice block of the supernet with the index of the choice it implements."""
    blocks = [m for m in supernet.modules() if isinstance(m, ChoiceBlock)]
    if not blocks or len(blocks) % n_choices:
        raise WsnasError("PA&DA path sampling needs a supernet whose cells repeat the space's choices")
    return [(k % n_choices, b) for k, b in enumerate(blocks)]


def _ops_per_choice(space, error: str) -> int:
    """The number of ops every choice of ``space`` has (``error`` when they differ)."""
    sizes = {len(c.options) for c in space.choices}
    if len(sizes) != 1:
        raise WsnasError(error)
    return sizes.pop()


class PadaStrategy(SinglePathStrategy):
    """PA&DA; ``paths`` / ``data`` switch each half on (``pada-path``, ``pada-data``)."""

    name = "pada"

    def __init__(self, paths: bool = True, data: bool = True, *, per_edge: bool = False) -> None:
        if not (paths or data):
            raise WsnasError("PA&DA needs path sampling, data sampling or both")
        self.paths, self.data, self.per_edge = paths, data, per_edge
        self.name = "pada" if paths and data else ("pada-path" if paths else "pada-data")

    def describe(self) -> dict:
        return {"strategy": self.name, "paths": self.paths, "data": self.data, "per_edge": self.per_edge}

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        space, supernet = ctx.space, ctx.supernet
        self.n_ops = _ops_per_choice(space, "PA&DA needs every choice to have the same ops")
        self.ops = space.choices[0].options
        self.blocks = _choice_blocks(supernet, len(space.choices))
        rows = len(space.choices) if self.per_edge else 1
        self.probs = np.full((rows, self.n_ops), 1.0 / self.n_ops)
        self._pending: list[tuple[np.ndarray, np.ndarray, torch.Tensor]] = []  # steps not yet folded
        self.norms = np.zeros((rows, self.n_ops))
        self.seen = np.zeros((rows, self.n_ops), dtype=bool)
        self.rng = np.random.default_rng(ctx.seed)
        self.importance: torch.Tensor | None = None  # per training sample, created on first use
        self.epoch = 0

    @property
    def tau(self) -> float:
        """The mixing weight of the importance distributions: epochs done / the run's epochs."""
        return self.epoch / max(1, self.ctx.total_epochs or 1)

    # ------------------------------------------------------------------ paths
    def next_arch(self) -> Arch:
        idx = [int(self.rng.choice(self.n_ops, p=self.probs[e if self.per_edge else 0]))
               for e in range(len(self.space.choices))]
        return self.space.from_option_indices(idx)

    def _fold_grad_norms(self, arch: Arch) -> None:
        """Queue this step's gradient norm of every parametric op used for the running means.

        The norms stay on the device (one ``_foreach_norm`` over the used ops' gradients, summed
        per block and per op with ``index_add``): no host synchronisation in the step. They are
        folded, in order, when :attr:`norms` is next read (at the latest at the epoch's end).
        """
        chosen = self.space.option_indices(arch)
        rows = len(self.space.choices) if self.per_edge else 1
        count = np.zeros((rows, self.n_ops))
        grads, block_of, slots = [], [], []
        for b, (choice, block) in enumerate(self.blocks):
            op = chosen[choice]
            row = choice if self.per_edge else 0
            count[row, op] += 1
            slots.append(row * self.n_ops + op)
            for p in block.candidates[self.ops[op]].parameters():
                if p.grad is not None:
                    grads.append(p.grad.detach())
                    block_of.append(b)
        if grads:
            device = grads[0].device
            sq = torch.stack(torch._foreach_norm(grads)).double().square()
            per_block = torch.zeros(len(self.blocks), dtype=torch.float64, device=device).index_add_(
                0, _index(block_of, device), sq).sqrt()
            total = torch.zeros(rows * self.n_ops, dtype=torch.float64, device=device).index_add_(
                0, _index(slots, device), per_block).view(rows, self.n_ops)
        else:
            total = torch.zeros((rows, self.n_ops), dtype=torch.float64)
        self._pending.append((count > 0, count, total))

    @property
    def norms(self) -> np.ndarray:
        """Running mean of each op's gradient norm this epoch (``rows x |O|``)."""
        self._flush()
        return self._norms

    @norms.setter
    def norms(self, value: np.ndarray) -> None:
        self._pending = []
        self._norms = value

    def _flush(self) -> None:
        """Fold the queued steps into the running means, in order (one copy to the host)."""
        if not self._pending:
            return
        totals = torch.stack([t.to("cpu", torch.float64) for _, _, t in self._pending]).numpy()
        for (used, count, _), total in zip(self._pending, totals):
            step = np.where(used, total / np.maximum(count, 1), 0.0)
            self._norms = np.where(used & self.seen, RUNNING * self._norms + (1 - RUNNING) * step,
                                   np.where(used, step, self._norms))
            self.seen |= used
        self._pending = []

    # ------------------------------------------------------------------ data
    def epoch_indices(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """The next epoch's sample order: ``n`` draws with replacement from ``q`` (None: shuffle)."""
        if not self.data or self.importance is None or self.epoch == 0:
            return None
        tau = self.tau
        g = self.importance.double().cpu()
        q = tau * g / g.sum() + (1 - tau) / n
        return torch.multinomial(q, n, replacement=True, generator=generator)

    def _record_importance(self, logits: torch.Tensor, y: torch.Tensor, n: int,
                           indices: torch.Tensor | None) -> None:
        """Store the importance of the samples at ``indices`` (of ``n``) where the data live
        (no copy to the host per step)."""
        if self.importance is None or self.importance.device != logits.device:
            old = self.importance
            self.importance = torch.ones(n, dtype=torch.float32, device=logits.device)
            if old is not None:
                self.importance.copy_(old)
        if indices is None:
            return
        with torch.no_grad():
            g = (torch.softmax(logits.float(), 1) - F.one_hot(y, logits.shape[1]).float()).norm(dim=1)
        self.importance[indices.to(logits.device)] = g

    # ------------------------------------------------------------------ step
    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        arch = self.next_arch()
        result = train_path(self, arch, x, y, keep_logits=self.data)
        if self.paths:
            self._fold_grad_norms(arch)
        if self.data:
            self._record_importance(result.logits, y, self.ctx.train_size, indices)
        return result

    def end_epoch(self, epoch: int) -> None:
        self.epoch = epoch + 1
        if self.paths:
            tau = self.tau
            g = self.norms
            sums = g.sum(1, keepdims=True)
            share = np.where(sums > 0, g / np.where(sums > 0, sums, 1.0), 1.0 / self.n_ops)
            self.probs = tau * share + (1 - tau) / self.n_ops
            self.norms = np.zeros_like(self.norms)  # the running mean restarts every epoch
            self.seen = np.zeros_like(self.seen)

    def epoch_metrics(self) -> dict:
        """What the sampling looks like after an epoch (logged per epoch in ``run_metrics``):
        ``path_prob_<op>`` the probability of each op (mean over the edges with per-edge vectors),
        and ``data_ess`` the effective sample size of the next epoch's data distribution as a
        share of N (``1 / (N sum q^2)``: 1 when uniform)."""
        out = {}
        if self.paths:
            out.update({f"path_prob_{op}": float(p) for op, p in zip(self.ops, self.probs.mean(0))})
        if self.data and self.importance is not None:
            n = self.importance.numel()
            tau = self.tau
            g = self.importance.double()
            q = tau * g / g.sum() + (1 - tau) / n
            out["data_ess"] = float(1.0 / (n * (q * q).sum()))
        return out

    def state_dict(self) -> dict:
        return {"probs": torch.from_numpy(self.probs.copy()), "norms": torch.from_numpy(self.norms.copy()),
                "seen": torch.from_numpy(self.seen.copy()), "rng": rng_state(self.rng), "epoch": self.epoch,
                "importance": None if self.importance is None else self.importance.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.probs = state["probs"].numpy().copy()
        self.norms = state["norms"].numpy().copy()
        self.seen = state["seen"].numpy().copy()
        self.rng.bit_generator.state = rng_from_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.importance = None if state["importance"] is None else state["importance"].cpu().clone()


class PadaPathStrategy(PadaStrategy):
    """PA&DA with path sampling only (the data in shuffled order)."""

    def __init__(self, *, per_edge: bool = False) -> None:
        super().__init__(paths=True, data=False, per_edge=per_edge)


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
        self.n_ops = _ops_per_choice(ctx.space, "FairNAS needs every choice to have the same number of ops")
        self.rng = np.random.default_rng(ctx.seed)

    def paths(self) -> list[Arch]:
        """|O| paths; on every edge the ops appear in a fresh random order, each once."""
        perms = [self.rng.permutation(self.n_ops) for _ in self.space.choices]
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
