"""The search-space API: named categorical choices, architectures, and their two names.

A :class:`Space` is an ordered list of :class:`Choice` objects. An :class:`Arch` picks one
option of every choice. Every architecture of a finite space has

* a canonical string (``Space.format`` / ``Space.parse``), the name users and files use, and
* an integer index in ``range(len(space))`` (``Space.index`` / ``Space.from_index``), a
  bijection. The default order is mixed radix with the first choice most significant;
  a space whose published benchmark uses another order overrides ``index``/``from_index``.

A space knows only choices. It also builds networks (a standalone network for one
architecture, a supernet for all of them), but never trains anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.spaces.arch import Arch, Choice
from wsnas.spaces.relax import Relaxation

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


#: Spaces larger than this are sampled, never enumerated (NB201's 15,625 cells are fine; the
#: DARTS space's ~9e18 genotypes are not).
MAX_ENUMERATE = 10_000_000


def check_enumerable(space: Space) -> None:
    if len(space) > MAX_ENUMERATE:
        raise WsnasError(f"{space.name} has {len(space):.3g} architectures, too many to list or "
                         "evaluate one by one; sample them instead (e.g. --sample 1000)")


class Space:
    """A finite space of architectures made of independent categorical choices.

    Subclasses set ``name`` and ``choices`` and implement :meth:`format`, :meth:`parse`,
    :meth:`build_network` and :meth:`build_supernet`.
    """

    name: str = "space"
    choices: tuple[Choice, ...] = ()

    # ----------------------------------------------------------------- size and order
    def __len__(self) -> int:
        n = 1
        for c in self.choices:
            n *= len(c.options)
        return n

    @property
    def size(self) -> int:
        return len(self)

    def option_indices(self, arch: Arch) -> tuple[int, ...]:
        """The position of each picked option within its choice."""
        self.validate(arch)
        return tuple(c.options.index(o) for c, o in zip(self.choices, arch.ops))

    def from_option_indices(self, idx: Sequence[int]) -> Arch:
        if len(idx) != len(self.choices):
            raise WsnasError(
                f"{self.name} needs {len(self.choices)} option indices, got {len(idx)}"
            )
        ops = []
        for c, i in zip(self.choices, idx):
            if not 0 <= int(i) < len(c.options):
                raise WsnasError(
                    f"option index {i} out of range for {c.name}; accepted: 0..{len(c.options) - 1}"
                )
            ops.append(c.options[int(i)])
        return Arch(self.name, tuple(ops))

    def relaxation(self):
        """The edges a differentiable search weighs (see :mod:`wsnas.spaces.relax`)."""
        return Relaxation(self)

    def index(self, arch: Arch) -> int:
        """Integer index of ``arch`` (mixed radix, first choice most significant)."""
        i = 0
        for c, k in zip(self.choices, self.option_indices(arch)):
            i = i * len(c.options) + k
        return i

    def check_index(self, index) -> int:
        """``index`` as an int in ``range(len(self))``, or a one-line WsnasError."""
        n = len(self)
        try:
            index = int(index)
        except (TypeError, ValueError):
            raise WsnasError(f"architecture index {index!r} is not an integer") from None
        if not 0 <= index < n:
            raise WsnasError(f"architecture index {index} out of range for {self.name}; accepted: 0..{n - 1}")
        return index

    def from_index(self, index: int) -> Arch:
        """The architecture with integer index ``index``; inverse of :meth:`index`."""
        index = self.check_index(index)
        digits = []
        for c in reversed(self.choices):
            index, k = divmod(index, len(c.options))
            digits.append(k)
        return self.from_option_indices(digits[::-1])

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture, in index order (refused for spaces too large to list)."""
        check_enumerable(self)
        for i in range(len(self)):
            yield self.from_index(i)

    def sample(self, n: int, seed: int, *, replace: bool = False) -> list[Arch]:
        """``n`` architectures drawn uniformly with a seeded generator (distinct unless ``replace``)."""
        size = len(self)
        if not replace and n > size:
            raise WsnasError(f"cannot sample {n} distinct architectures from {self.name} ({size} in all)")
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, size, n) if replace else rng.choice(size, n, replace=False)
        return [self.from_index(int(i)) for i in picks]

    # ----------------------------------------------------------------- search operators
    # Evolutionary and random search (wsnas.selection.evolution) work on the choice vector
    # through these three methods, so they need no enumeration and work on any space; a space
    # whose choices are not independent overrides them.
    def random_arch(self, rng: np.random.Generator) -> Arch:
        """One architecture with every choice drawn uniformly and independently (uniform over
        the space), from ``rng``: one ``rng.integers`` per choice, in choice order."""
        return self.from_option_indices([int(rng.integers(len(c.options))) for c in self.choices])

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float) -> Arch:
        """``arch`` with every choice, with probability ``prob``, redrawn uniformly among all its
        options (the old one included, so it may stay), as SPOS's mutation: per choice one
        ``rng.random()``, then one ``rng.integers`` where it is below ``prob``."""
        idx = list(self.option_indices(arch))
        for i, c in enumerate(self.choices):
            if rng.random() < prob:
                idx[i] = int(rng.integers(len(c.options)))
        return self.from_option_indices(idx)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Uniform crossover: every choice taken from ``a`` or ``b`` with equal probability
        (one ``rng.integers(2)`` per choice, 0 taking ``a``'s), as SPOS's crossover."""
        ia, ib = self.option_indices(a), self.option_indices(b)
        return self.from_option_indices([x if rng.integers(2) == 0 else y for x, y in zip(ia, ib)])

    # ----------------------------------------------------------------- names
    def validate(self, arch: Arch) -> Arch:
        """Raise a WsnasError unless ``arch`` belongs to this space."""
        if not isinstance(arch, Arch):
            raise WsnasError(f"expected an architecture of {self.name}, got {arch!r}")
        if arch.space != self.name:
            raise WsnasError(f"architecture of space {arch.space!r} given to space {self.name!r}")
        if len(arch.ops) != len(self.choices):
            raise WsnasError(
                f"{self.name} architectures have {len(self.choices)} choices, got {len(arch.ops)}"
            )
        for c, o in zip(self.choices, arch.ops):
            c.option_index(o)
        return arch

    def format(self, arch: Arch) -> str:
        """The canonical string of ``arch``."""
        raise NotImplementedError

    def parse(self, text: str) -> Arch:
        """Parse a canonical string; errors name the bad part and the accepted values."""
        raise NotImplementedError

    def resolve(self, key: str | int | Arch) -> Arch:
        """An architecture from a canonical string, an integer index (int or digits) or an Arch."""
        if isinstance(key, Arch):
            return self.validate(key)
        if isinstance(key, (int, np.integer)):
            return self.from_index(int(key))
        text = str(key).strip()
        try:
            return self.parse(text)
        except WsnasError as exc:
            if text.isdigit() and int(text) < len(self):
                return self.from_index(int(text))
            raise WsnasError(f"{exc} (or an index 0..{len(self) - 1})") from None

    def arch_names(self) -> list[str]:
        return [self.format(a) for a in self.enumerate()]

    # ----------------------------------------------------------------- networks
    def describe(self) -> dict:
        """The space's settings, stored with every run so it can be rebuilt exactly."""
        return {"space": self.name}

    def build_network(self, arch: Arch, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        """The standalone network of one architecture."""
        raise NotImplementedError

    def build_supernet(self, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        """A supernet holding every candidate op of every choice."""
        raise NotImplementedError


def resolve_path(space, fixed, path, what: str) -> tuple:
    """One spec per choice for a network's forward pass.

    ``path`` is an ``Arch`` (its option indices), a sequence of specs, or ``None`` — allowed only
    for a standalone network (``fixed`` is its architecture), whose blocks hold one candidate.
    """
    n = len(space.choices)
    if isinstance(path, Arch):
        return space.option_indices(path)
    if path is None:
        if fixed is None:
            raise ValueError(f"the {what} supernet needs a path (an Arch or one spec per choice)")
        return (None,) * n
    if len(path) != n:
        raise ValueError(f"a {what} path has {n} specs (one per choice), got {len(path)}")
    return tuple(path)
