"""A choice point of a network: the candidate ops of one decision, and how to run them.

The same :class:`ChoiceBlock` serves supernets and standalone networks. A supernet's block
holds every option of its choice; a standalone network's block holds only the picked one.
Both name a candidate ``candidates.<op name>``, so a child's parameters have the same keys
in the supernet and in its standalone network, and copying weights is a key lookup.

What a forward pass runs is given by a *spec* per choice:

* an ``int`` — single path: run only the option with that index (the rest get no gradient);
* a 1-D float tensor of one weight per option — a weighted sum over the options
  (differentiable search), options whose weight is exactly zero and needs no gradient
  are skipped (perturbation masks);
* a :class:`Sampled` ``(index, weight, rest)`` — only the option ``index`` runs, its output
  scaled by the 0-dim tensor ``weight``, plus the 0-dim tensor ``rest`` when given (GDAS: a hard
  sample whose weight carries the straight-through gradient; ``rest`` is the sum of the other
  options' straight-through weights, 0 in value, so that they get gradient too, as the
  reference implementations' ``forward_gdas``);
* a :class:`~wsnas.nn.stacked.Stacked` ``(indices, batch)`` — several architectures
  stacked along the batch, each option run once on the rows that chose it (batched evaluation);
* ``None`` — the block's only candidate (standalone networks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.nn.stacked import Stacked, run_stacked


class Sampled(NamedTuple):
    """Run one option and scale its output by ``weight`` (a 0-dim tensor that may need gradient),
    then add ``rest`` (a 0-dim tensor, or None for nothing) to every element of it."""

    index: int
    weight: torch.Tensor
    rest: torch.Tensor | None = None


Spec = int | torch.Tensor | Sampled | Stacked | None


class ChoiceBlock(nn.Module):
    """The candidate ops of one choice, keyed by option name."""

    def __init__(self, options: Sequence[str], build: Callable[[str], nn.Module],
                 only: str | None = None, *, partial: int = 1, bypass: nn.Module | None = None):
        super().__init__()
        self.options = tuple(options)
        if only is not None and only not in self.options:
            raise WsnasError(f"unknown op {only!r}; accepted: {', '.join(self.options)}")
        kept = self.options if only is None else (only,)
        self.candidates = nn.ModuleDict({name: build(name) for name in kept})
        self.only = only
        # PC-DARTS: only 1/partial of the channels go through the ops (built that narrow), the
        # rest bypass them (through ``bypass`` on a stride-2 edge), then the channels are shuffled
        self.partial = partial
        self.bypass = bypass

    def forward(self, x: torch.Tensor, spec: Spec = None) -> torch.Tensor:
        if self.partial == 1:
            return self._run(x, spec)
        c = x.shape[1] // self.partial
        through = self._run(x[:, :c], spec)
        rest = x[:, c:] if self.bypass is None else self.bypass(x[:, c:])
        return channel_shuffle(torch.cat([through, rest], dim=1), self.partial)

    def _run(self, x: torch.Tensor, spec: Spec) -> torch.Tensor:
        if spec is None:
            if self.only is None:
                raise ValueError("a supernet choice needs a spec (option index or weights)")
            return self.candidates[self.only](x)
        if isinstance(spec, Stacked):
            return run_stacked(self.candidates, self.options, x, spec)
        if isinstance(spec, Sampled):
            out = spec.weight * self.candidates[self.options[spec.index]](x)
            return out if spec.rest is None else out + spec.rest
        if isinstance(spec, torch.Tensor) and spec.dim() == 1:
            if spec.numel() != len(self.options):
                raise ValueError(f"expected {len(self.options)} weights, got {spec.numel()}")
            out = None
            for k, name in enumerate(self.options):
                w = spec[k]
                if not spec.requires_grad and float(w) == 0.0:
                    continue
                y = w * self.candidates[name](x)
                out = y if out is None else out + y
            return out if out is not None else self.candidates[self.options[0]](x).mul(0.0)
        name = self.options[int(spec)]
        if name not in self.candidates:
            raise ValueError(f"this network holds only {self.only!r}, not {name!r}")
        return self.candidates[name](x)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` equal groups (ShuffleNet's shuffle, as PC-DARTS)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)
