"""Private-weight banks: partial weight sharing without duplicating a supernet.

A :class:`WeightBank` keeps, beside a supernet's shared weights, private copies of some of its
parameters and buffers (batch-norm statistics) for every *key* — a group of children or a single
child — together with the optimiser's state of those parameters (SGD momentum buffers). Before
each forward pass of a child (a forward pre-hook on the supernet) the bank swaps in the copies
of that child's key; the swap rebinds tensors (``param.data``, the module's buffer slot and the
optimiser's per-parameter state) instead of copying them, so it costs a few hundred pointer
assignments and a training step updates the key's copies in place.

Both kinds of partial sharing of algorithms.md 1.5 are a bank:

* group sharing — every parameter and buffer is private, keyed by the child's group;
* prefix sharing — everything after the stem and the first ``k`` cells is private, keyed by
  the child.

Every key starts from the supernet's weights at the moment the bank is made (the same initial
weights for every group or child). :meth:`state_dict` holds every key's tensors and momentum
buffers, so a checkpoint restores them exactly.

The bank is not attached to the supernet: whoever made it (the trainer) passes it to whatever
must know the private copies — the evaluator (``evaluate_archs(..., bank=)``, which restores
every key's statistics and scores children one at a time) and
:func:`~wsnas.supernet.child_state_dict` (``bank=``: a child's own copies).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from wsnas.spaces import Arch


class WeightBank:
    """Private copies of the parameters and buffers ``private(name)`` selects, one per key.

    Args:
        supernet: the network; the bank registers a forward pre-hook on it that activates
            the key of the ``Arch`` passed to ``forward``.
        optimizer: the optimiser of the supernet's parameters (its per-parameter state is
            swapped with the weights); ``None`` for evaluation only.
        keys: every key, e.g. group ids or child indices.
        key_of: the key of a child.
        private: whether a parameter/buffer (by its ``state_dict`` name) is private.
    """

    def __init__(self, supernet: nn.Module, optimizer: torch.optim.Optimizer | None,
                 keys: Iterable[Hashable], key_of: Callable[[Arch], Hashable],
                 private: Callable[[str], bool]) -> None:
        self.supernet = supernet
        self.optimizer = optimizer
        self.key_of = key_of
        self.keys = list(keys)
        if not self.keys:
            raise ValueError("a weight bank needs at least one key")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("weight bank keys must be distinct")
        self.params: dict[str, nn.Parameter] = {n: p for n, p in supernet.named_parameters() if private(n)}
        self.buffers: dict[str, tuple[nn.Module, str]] = {}
        for mod_name, module in supernet.named_modules():
            for buf_name, buf in module.named_buffers(recurse=False):
                full = f"{mod_name}.{buf_name}" if mod_name else buf_name
                if buf is not None and private(full):
                    self.buffers[full] = (module, buf_name)
        self.shared_names = [n for n, _ in supernet.named_parameters() if n not in self.params]
        # key -> {"tensors": {name: tensor}, "momentum": {name: optimizer state dict}}
        self.entries: dict[Hashable, dict] = {}
        for key in self.keys:
            self.entries[key] = {
                "tensors": {n: t.detach().clone() for n, t in self._live_tensors()},
                "momentum": {n: {} for n in self.params},
            }
        self.active: Hashable | None = None
        self.activate(self.keys[0])
        self._hook = supernet.register_forward_pre_hook(self._pre_forward)

    # ------------------------------------------------------------------ swapping
    def _live_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        for n, p in self.params.items():
            yield n, p.data
        for n, (module, buf_name) in self.buffers.items():
            yield n, module._buffers[buf_name]

    def activate(self, key: Hashable) -> None:
        """Bind the parameters, buffers and optimiser state of ``key``."""
        if key == self.active:
            return
        if key not in self.entries:
            raise KeyError(f"weight bank has no key {key!r}")
        entry = self.entries[key]
        tensors = entry["tensors"]
        for n, p in self.params.items():
            p.data = tensors[n]
        for n, (module, buf_name) in self.buffers.items():
            module._buffers[buf_name] = tensors[n]
        if self.optimizer is not None:
            for n, p in self.params.items():
                self.optimizer.state[p] = entry["momentum"][n]
        self.active = key

    def activate_arch(self, arch: Arch) -> None:
        self.activate(self.key_of(arch))

    def _pre_forward(self, module: nn.Module, args: tuple) -> None:
        if len(args) > 1 and isinstance(args[1], Arch):
            self.activate_arch(args[1])

    def detach(self) -> None:
        """Remove the forward hook (the current key's tensors stay bound)."""
        self._hook.remove()

    def is_shared(self, prefix: str) -> bool:
        """Whether every parameter and buffer under ``prefix`` (a module name) is shared."""
        dotted = prefix + "."
        return not any(n.startswith(dotted) for n in list(self.params) + list(self.buffers))

    # ------------------------------------------------------------------ state
    @contextmanager
    def preserved_buffers(self) -> Iterator[None]:
        """Restore every key's buffers (batch-norm statistics) and the active key on exit."""
        active = self.active
        saved = {k: {n: e["tensors"][n].clone() for n in self.buffers} for k, e in self.entries.items()}
        try:
            yield
        finally:
            self.activate(active)
            for k, bufs in saved.items():
                for n, value in bufs.items():
                    self.entries[k]["tensors"][n].copy_(value)

    def state_dict(self) -> dict:
        """Every key's private tensors and momentum buffers (plain tensors, for ``weights_only``)."""
        return {
            "keys": [str(k) for k in self.keys],
            "active": str(self.active),
            "entries": {
                str(k): {"tensors": dict(e["tensors"]),
                         "momentum": {n: dict(s) for n, s in e["momentum"].items() if s}}
                for k, e in self.entries.items()
            },
        }

    def load_state_dict(self, state: dict) -> None:
        by_name = {str(k): k for k in self.keys}
        if sorted(state["keys"]) != sorted(by_name):
            raise ValueError("the checkpoint's weight bank has other keys than this run's")
        self.active = None
        for name, entry in state["entries"].items():
            key = by_name[name]
            own = self.entries[key]
            for n, t in entry["tensors"].items():
                own["tensors"][n] = t.detach().clone().to(own["tensors"][n].device)
            own["momentum"] = {n: {} for n in self.params}
            for n, s in entry["momentum"].items():
                own["momentum"][n] = {k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in s.items()}
        self.activate(by_name[state["active"]])

    def memory_bytes(self) -> int:
        """Bytes held by the private copies (weights, buffers and momentum) of all keys."""
        total = 0
        for e in self.entries.values():
            total += sum(t.numel() * t.element_size() for t in e["tensors"].values())
            for s in e["momentum"].values():
                total += sum(v.numel() * v.element_size() for v in s.values() if torch.is_tensor(v))
        return total


__all__ = ["WeightBank"]
