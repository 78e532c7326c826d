"""How much a supernet shares: full sharing, group sharing and prefix sharing (algorithms.md 1.5).

A :class:`Sharing` is parsed from a short spec:

* ``full`` — one set of weights for every child (the default);
* ``group:M[:PARTITION]`` — the children are split into M groups, each with its own copy of
  every weight (its own supernet), trained only on its own children. PARTITION is
  ``similarity`` (default: consecutive slices of the index order, which is lexicographic in
  the children's names, the paper's "similarity" partition), ``random`` (a seeded random
  partition into M groups of equal size, ``random@SEED`` for another seed) or ``file=PATH`` (a
  CSV of ``arch,group`` rows, or a text file with one group per line listing its children);
* ``prefix:K`` — the stem and the first K cells are shared; every later layer and the
  classifier are private to each child, with their optimiser state.

Group sharing has two budgets: ``paper`` (the paper's protocol: every group trains for the
full budget, one child of every group on every mini-batch, M times the compute of one
supernet) and ``equal`` (the mini-batches are dealt out to the groups in turn, so the total
compute equals one supernet's). :meth:`Sharing.compute` is the compute in units of one
supernet.

A run's sharing is one explicit setting: the trainer receives it, builds the bank with
:func:`make_bank` and hands that bank to the evaluator and to fine-tuning (``bank=``); under
group sharing it trains the user's single-path strategy's ``with_sharing(sharing)``, the
:class:`~wsnas.strategies.groups.GroupStrategy` with that strategy's order inside the groups.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.spaces import Space
from wsnas.spaces.base import MAX_ENUMERATE
from wsnas.supernet.bank import WeightBank

KINDS = ("full", "group", "prefix")
PARTITIONS = ("similarity", "random", "file")
BUDGETS = ("paper", "equal")


@dataclass(frozen=True)
class Sharing:
    """A sharing setting; build one with :func:`parse_sharing`."""

    kind: str = "full"
    groups: int = 1            # M, group sharing
    partition: str = "similarity"
    partition_seed: int = 0
    partition_file: str | None = None
    prefix: int = 0            # K, prefix sharing
    budget: str = "paper"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise WsnasError(f"unknown sharing {self.kind!r}; accepted: {', '.join(KINDS)}")
        if self.partition not in PARTITIONS:
            raise WsnasError(f"unknown partition {self.partition!r}; accepted: {', '.join(PARTITIONS)}")
        if self.budget not in BUDGETS:
            raise WsnasError(f"unknown sharing budget {self.budget!r}; accepted: {', '.join(BUDGETS)}")
        if self.groups < 1:
            raise WsnasError(f"group sharing needs at least 1 group, got {self.groups}")
        if self.prefix < 0:
            raise WsnasError(f"prefix sharing needs K >= 0 shared cells, got {self.prefix}")

    @property
    def label(self) -> str:
        """The spec this setting was parsed from (canonical form; one group is ``full``)."""
        if self.is_full:
            return "full"
        if self.kind == "prefix":
            return f"prefix:{self.prefix}"
        part = {"similarity": "similarity", "random": f"random@{self.partition_seed}",
                "file": f"file={self.partition_file}"}[self.partition]
        if self.partition == "random" and self.partition_seed == 0:
            part = "random"
        return f"group:{self.groups}:{part}"

    @property
    def is_full(self) -> bool:
        return self.kind == "full" or (self.kind == "group" and self.groups == 1)

    def compute(self) -> float:
        """Training compute in units of one fully shared supernet."""
        if self.kind == "group" and self.budget == "paper":
            return float(self.groups)
        return 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def parse_sharing(spec: str, *, budget: str = "paper") -> Sharing:
    """Parse ``full``, ``group:M[:similarity|random[@SEED]|file=PATH]`` or ``prefix:K``."""
    text = str(spec).strip()
    accepted = "accepted: full, group:M[:similarity|random|file=PATH], prefix:K"
    head, _, rest = text.partition(":")
    if head == "full" and not rest:
        return Sharing(budget=budget)
    if head == "prefix":
        try:
            k = int(rest)
        except ValueError:
            raise WsnasError(f"bad sharing {text!r}: K must be an integer; {accepted}") from None
        return Sharing(kind="prefix", prefix=k, budget=budget)
    if head == "group":
        m_text, _, part = rest.partition(":")
        try:
            m = int(m_text)
        except ValueError:
            raise WsnasError(f"bad sharing {text!r}: M must be an integer; {accepted}") from None
        part = part or "similarity"
        if part.startswith("file="):
            return Sharing(kind="group", groups=m, partition="file", partition_file=part[5:], budget=budget)
        name, _, seed = part.partition("@")
        if name not in ("similarity", "random") or (seed and name != "random"):
            raise WsnasError(f"bad partition {part!r} in {text!r}; {accepted}")
        try:
            seed_value = int(seed) if seed else 0
        except ValueError:
            raise WsnasError(f"bad partition seed {seed!r} in {text!r}; {accepted}") from None
        return Sharing(kind="group", groups=m, partition=name, partition_seed=seed_value, budget=budget)
    raise WsnasError(f"bad sharing {text!r}; {accepted}")


# ---------------------------------------------------------------------------------- partitions
def partition_children(space: Space, sharing: Sharing) -> list[list[int]]:
    """The groups of child indices (each group in index order, groups by their first child)."""
    n = len(space)
    if n > MAX_ENUMERATE:  # a partition lists every child
        raise WsnasError(f"group sharing partitions every child; {space.name} has {n:.3g}, too many "
                         f"(at most {MAX_ENUMERATE:,}); use full sharing")
    m = sharing.groups
    if sharing.partition == "file":
        groups = _read_partition(space, sharing.partition_file)
        if len(groups) != m:
            raise WsnasError(f"partition file {sharing.partition_file} has {len(groups)} groups, "
                             f"but the sharing setting says {m}")
        return groups
    if m > n:
        raise WsnasError(f"cannot split {n} children into {m} groups; accepted: 1..{n}")
    if sharing.partition == "similarity":
        order = np.arange(n)
    else:
        order = np.random.default_rng(sharing.partition_seed).permutation(n)
    groups = [sorted(int(i) for i in chunk) for chunk in np.array_split(order, m)]
    return sorted(groups, key=lambda g: g[0])


def _read_partition(space: Space, path: str | None) -> list[list[int]]:
    if not path:
        raise WsnasError("a file partition needs a path: group:M:file=PATH")
    p = Path(path)
    if not p.is_file():
        raise WsnasError(f"partition file {path} does not exist")
    lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    groups: dict[str, list[int]] = {}
    as_rows = bool(lines) and all(len(r) == 2 for r in csv.reader(lines))
    if as_rows:
        rows = list(csv.reader(lines))
        if rows and rows[0][0].strip().lower() in ("arch", "child", "architecture"):
            rows = rows[1:]
        for arch, group in rows:
            groups.setdefault(group.strip(), []).append(_child_index(space, arch, path))
        ordered = list(groups.values())
    else:
        ordered = [[_child_index(space, a, path) for a in ln.replace(",", " ").split()] for ln in lines]
    seen = [i for g in ordered for i in g]
    n = len(space)
    if sorted(seen) != list(range(n)):
        dup = sorted({i for i in seen if seen.count(i) > 1})
        missing = sorted(set(range(n)) - set(seen))
        what = f"repeats {space.format(space.from_index(dup[0]))}" if dup else \
            f"misses {len(missing)} children, e.g. {space.format(space.from_index(missing[0]))}"
        raise WsnasError(f"partition file {path} must list each of the {n} children once; it {what}")
    return sorted((sorted(g) for g in ordered), key=lambda g: g[0])


def _child_index(space: Space, text: str, path: str) -> int:
    text = text.strip()
    try:
        return space.index(space.parse(text))
    except WsnasError as exc:
        raise WsnasError(f"partition file {path}: {exc}") from None


# ---------------------------------------------------------------------------------- banks
def prefix_private(network: nn.Module, k: int) -> Callable[[str], bool]:
    """The private-name test of prefix sharing: not the stem and not one of the first ``k`` cells."""
    cells = getattr(network, "cells", None)
    if not hasattr(network, "stem") or not isinstance(cells, nn.ModuleList):
        raise WsnasError("prefix sharing needs a network made of a stem and a list of cells")
    if k > len(cells):
        raise WsnasError(f"prefix:{k} shares more cells than the network's {len(cells)}; "
                         f"accepted: 0..{len(cells)}")
    shared = ("stem.",) + tuple(f"cells.{i}." for i in range(k))
    return lambda name: not name.startswith(shared)


def check_sharing(space: Space, sharing: Sharing) -> None:
    """Raise a :class:`WsnasError` now if ``sharing`` cannot be built on ``space``'s supernet."""
    if sharing.kind == "group":
        partition_children(space, sharing)
    elif sharing.kind == "prefix":
        prefix_private(space.build_supernet(num_classes=2), sharing.prefix)


def make_bank(supernet: nn.Module, optimizer: torch.optim.Optimizer | None, space: Space,
              sharing: Sharing) -> WeightBank | None:
    """The weight bank of ``sharing`` on ``supernet`` (None for full sharing)."""
    if sharing.is_full:
        return None
    if sharing.kind == "group":
        groups = partition_children(space, sharing)
        group_of = {i: g for g, members in enumerate(groups) for i in members}
        return WeightBank(supernet, optimizer, range(len(groups)),
                          key_of=lambda arch: group_of[space.index(arch)], private=lambda name: True)
    private = prefix_private(supernet, sharing.prefix)  # K = all cells: the classifier stays private
    return WeightBank(supernet, optimizer, range(len(space)), key_of=space.index, private=private)


__all__ = ["BUDGETS", "KINDS", "PARTITIONS", "Sharing", "check_sharing", "make_bank", "parse_sharing",
           "partition_children"]
