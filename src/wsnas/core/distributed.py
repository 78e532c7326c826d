"""Data-parallel supernet training across processes (``torchrun``, one process per device).

Every rank holds a full copy of the supernet and of the data. Each step all ranks draw the
same global batch (same seeded generator) and each takes its own contiguous shard of it; all
ranks sample the same path (identically seeded samplers, verified every step); the gradients
of the parameters on that path are summed across ranks after each rank's loss was weighted by
its share of the global batch, so the update equals the one a single process makes on the
whole global batch. Batch norm in training normalises with the statistics of the *global*
batch (a synchronised batch norm written here: ``nn.SyncBatchNorm`` refuses CPU tensors), so
a data-parallel run reproduces a single-process run up to floating-point rounding.

``process_group()`` initialises and tears down the process group (gloo on CPU, nccl on CUDA)
when the process was launched by ``torchrun`` (``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
in the environment) or when rank and world size are given; it yields a :class:`Replica`
(or ``None`` in a plain single-process run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from wsnas.core.errors import WsnasError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or ``python -m torch.distributed.run``) started this process."""
    return all(v in os.environ for v in ENV_VARS)


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on rank 0 and in a single-process run: the process that writes files and prints."""
    return rank() == 0


# the replica whose batch-norm layers normalise with global statistics just now (see sync_bn)
_BN_SYNC: Replica | None = None


@dataclass
class Replica:
    """This process's place in a data-parallel run and the collectives the trainer needs."""

    rank: int
    world_size: int
    group: object = None  # the process group (None: the default group)
    device: torch.device | None = None  # where collective buffers live (nccl needs CUDA)
    global_count: int = 0  # samples in the current global batch (set by the trainer per step)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ data
    def shard_sizes(self, n: int) -> list[int]:
        """Contiguous shard sizes of an ``n``-sample global batch (they differ by at most one)."""
        return [len(c) for c in torch.arange(n).tensor_split(self.world_size)]

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch."""
        return t.tensor_split(self.world_size)[self.rank]

    def check_batches(self, n_samples: int, batch_size: int) -> None:
        """Refuse a global batch that does not split evenly (one-line message)."""
        if batch_size % self.world_size:
            raise WsnasError(f"batch size {batch_size} is not divisible by the world size "
                             f"{self.world_size}; the batch size is the global batch, choose a "
                             f"multiple of {self.world_size}")
        last = n_samples % batch_size
        if 0 < last < self.world_size:
            raise WsnasError(f"the last batch of an epoch holds {last} samples, fewer than the "
                             f"{self.world_size} ranks; change the batch size or the split")

    # ------------------------------------------------------------------ collectives
    def _tensor(self, values, dtype=torch.float64) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=self.device)

    def all_reduce_(self, t: torch.Tensor, op=dist.ReduceOp.SUM) -> torch.Tensor:
        dist.all_reduce(t, op=op, group=self.group)
        return t

    def barrier(self) -> None:
        dist.barrier(group=self.group)

    def broadcast_module(self, module: nn.Module) -> None:
        """Give every rank rank 0's parameters and buffers."""
        with torch.no_grad():
            for t in module.state_dict().values():
                dist.broadcast(t, src=0, group=self.group)

    def check_same_path(self, option_indices: Sequence[int], what: str = "") -> None:
        """Raise on every rank when the ranks are about to train different paths."""
        idx = list(option_indices)
        t = self._tensor(idx + [-i for i in idx], dtype=torch.long)
        self.all_reduce_(t, dist.ReduceOp.MAX)
        high, low = t[:len(idx)], -t[len(idx):]
        if not torch.equal(high, low):
            raise WsnasError(f"data-parallel ranks sampled different paths{what} (this rank: "
                             f"{tuple(idx)}): every rank's sampler must be seeded identically")

    def scale_loss(self, loss: torch.Tensor, count: int) -> torch.Tensor:
        """Weight a shard's mean loss by its share of the global batch (the sum is the global mean)."""
        return loss * (count / self.global_count)

    def reduce_gradients(self, params: Sequence[nn.Parameter]) -> None:
        """Sum across ranks the gradients of the parameters that have one (the active path)."""
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.all_reduce_(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    @contextmanager
    def sync_bn(self) -> Iterator[None]:
        """Inside, training-mode batch norm of converted layers uses global statistics."""
        global _BN_SYNC
        previous, _BN_SYNC = _BN_SYNC, self
        try:
            yield
        finally:
            _BN_SYNC = previous


@contextmanager
def process_group(*, backend: str | None = None, init_method: str | None = None,
                  rank: int | None = None, world_size: int | None = None,
                  device: torch.device | None = None) -> Iterator[Replica | None]:
    """Initialise the process group for a data-parallel run and destroy it on exit.

    Without ``rank``/``world_size`` they come from ``torchrun``'s environment; if the process
    was not launched by it, yields ``None`` (a single-process run). ``init_method`` defaults to
    ``$WSNAS_DIST_INIT`` or ``env://`` (``MASTER_ADDR``/``MASTER_PORT``, set by torchrun);
    a ``file://`` path in a shared folder needs no network. The backend defaults to nccl for
    CUDA devices and gloo otherwise.
    """
    if rank is None or world_size is None:
        if not launched_by_torchrun():
            yield None
            return
        rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if device is None:
        device = torch.device("cpu")
    if backend is None:
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    init_method = init_method or os.environ.get("WSNAS_DIST_INIT") or "env://"
    if dist.is_initialized():
        raise WsnasError("a torch.distributed process group is already initialised")
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    try:
        yield Replica(rank=rank, world_size=world_size,
                      device=device if backend == "nccl" else torch.device("cpu"))
    except BaseException:
        _leave_together(backend, failed=True)
        raise
    else:
        _leave_together(backend, failed=False)
    finally:
        dist.destroy_process_group()


LEAVE_TIMEOUT_S = 60.0  # how long a rank that failed waits for the others before it tears down


def _leave_together(backend: str, *, failed: bool) -> None:
    """Wait for every rank before the process group is destroyed.

    A rank that tears its group down (and exits) while a peer is still inside a collective or
    still shutting down can take the peer with it: gloo aborts that process ("terminate called
    without an active exception"). After a normal exit every rank reaches this barrier; after an
    error (a rank that raised, e.g. every rank on "sampled different paths") gloo's monitored
    barrier waits at most ``LEAVE_TIMEOUT_S`` for ranks that may never come, and nccl, which has
    no bounded barrier, does not wait.
    """
    try:
        if not failed:
            dist.barrier()
        elif backend == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=LEAVE_TIMEOUT_S))
    except Exception:  # noqa: BLE001 - a peer that died must not hide this rank's own error
        pass


def current_replica() -> Replica | None:
    """A :class:`Replica` for the initialised process group, or ``None`` (not data-parallel)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else None
    return Replica(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


# ---------------------------------------------------------------------- synchronised batch norm
class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum across ranks: the gradient is the sum of every rank's gradient."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        out = t.detach().clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def _sync_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor,
                     replica: Replica) -> torch.Tensor:
    """Training-mode batch norm with the mean and variance of the global batch."""
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    local = x.numel() // max(x.size(1), 1)
    packed = torch.cat([x.sum(dims), x.new_tensor([float(local)])])
    packed = _AllReduceSum.apply(packed, replica.group)
    n = packed[-1].detach()
    mean = packed[:-1] / n
    centred = x - mean.view(shape)
    var = _AllReduceSum.apply((centred * centred).sum(dims), replica.group) / n
    out = centred * torch.rsqrt(var + bn.eps).view(shape)
    if bn.weight is not None:
        out = out * bn.weight.view(shape) + bn.bias.view(shape)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            f = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            unbiased = var.detach() * (n / (n - 1)) if n > 1 else var.detach()
            bn.running_mean.mul_(1 - f).add_(mean.detach(), alpha=f)
            bn.running_var.mul_(1 - f).add_(unbiased, alpha=f)
    return out


class _SyncedBatchNorm:
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        replica = _BN_SYNC
        if replica is not None and self.training:
            self._check_input_dim(x)
            return _sync_batch_norm(self, x, replica)
        return super().forward(x)


class SyncedBatchNorm1d(_SyncedBatchNorm, nn.BatchNorm1d):
    pass


class SyncedBatchNorm2d(_SyncedBatchNorm, nn.BatchNorm2d):
    pass


class SyncedBatchNorm3d(_SyncedBatchNorm, nn.BatchNorm3d):
    pass


_SYNCED = {nn.BatchNorm1d: SyncedBatchNorm1d, nn.BatchNorm2d: SyncedBatchNorm2d,
           nn.BatchNorm3d: SyncedBatchNorm3d}


def convert_batchnorm(model: nn.Module) -> int:
    """Make ``model``'s batch-norm layers synchronisable in place (same parameters, buffers and
    state-dict keys; they behave as before outside :meth:`Replica.sync_bn`). Returns how many."""
    count = 0
    for m in model.modules():
        cls = _SYNCED.get(type(m))
        if cls is not None:
            m.__class__ = cls
            count += 1
    return count


__all__ = ["Replica", "convert_batchnorm", "current_replica", "is_main", "launched_by_torchrun",
           "local_rank", "process_group", "rank", "world_size"]
