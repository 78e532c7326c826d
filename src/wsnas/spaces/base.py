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

from wsnas.core.errors import WsnasError, shown
from wsnas.spaces.arch import Arch, Choice
from wsnas.spaces.relax import Relaxation

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


#: A depth option (``Space.depth_options``) above this is counted at this depth and the count scaled:
#: building thousands of cells takes long even on the meta device.
COUNTED_DEPTH = 20

#: Bytes a parameter takes while it trains: its fp32 weight, gradient and SGD momentum.
TRAINING_BYTES_PER_PARAMETER = 12

#: Spaces larger than this are sampled, never enumerated (NB201's 15,625 cells are fine; the
#: DARTS space's ~9e18 genotypes are not).
MAX_ENUMERATE = 10_000_000


def is_index_text(text: str) -> bool:
    """True for an index written in decimal ASCII digits without leading zeros ("0", "434", not "011")."""
    return text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0"))


def check_memory(space: Space, *, memory: int | None = None, num_classes: int = 10, in_channels: int = 3) -> int:
    """The parameter estimate of ``space`` (:meth:`Space.parameter_estimate`), refused when training that
    many parameters (:data:`TRAINING_BYTES_PER_PARAMETER`) needs more than ``memory`` bytes (default:
    this machine's memory); checked before any network is built."""
    from wsnas.core.runtime import physical_memory

    memory = physical_memory() if memory is None else memory
    params = space.parameter_estimate(num_classes=num_classes, in_channels=in_channels)
    need = params * TRAINING_BYTES_PER_PARAMETER
    if memory is not None and need > memory:
        raise WsnasError(
            f"{space.name} with {space.option_text()} has about {params:.3g} parameters, {need / 2**30:.3g} GiB "
            f"to train (weights, gradients and momentum, fp32), more than the {memory / 2**30:.3g} GiB of memory "
            f"here; accepted: networks that fit (the defaults: {space.option_text(defaults=True)})")
    return params


def check_enumerable(space: Space) -> None:
    if len(space) > MAX_ENUMERATE:
        raise WsnasError(f"{space.name} has {len(space):.3g} architectures, too many to list or "
                         "evaluate one by one; sample them instead (e.g. --sample 1000)")


class Space:
    """A finite space of architectures made of independent categorical choices.

    Subclasses set ``name`` and ``choices`` and implement :meth:`build_network` and
    :meth:`build_supernet`; :meth:`format` and :meth:`parse` (the canonical string) have a
    default, the options joined by commas. The contract is in ``docs/spaces.md``.
    """

    name: str = "space"
    choices: tuple[Choice, ...] = ()
    #: how :func:`wsnas.spaces.get_space` found a space defined outside wsnas (``module:factory``
    #: or an entry-point name), when that is not its :attr:`name`; :meth:`describe` records it so
    #: that a worker or ``wsnas select`` rebuilds the same space. None for the built-in spaces.
    source: str | None = None
    #: options that set a network's depth (cells, layers): :meth:`parameter_estimate` scales them
    depth_options: tuple[str, ...] = ()
    #: whether its standalone networks have an auxiliary head (a loss ``auxiliary_weight`` can weigh)
    has_auxiliary_head: bool = False
    #: whether its standalone networks apply drop-path (``drop_path_prob``)
    has_drop_path: bool = False

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
        if isinstance(index, str):
            text = index.strip()
            if not text.isascii() or not text.lstrip("-").isdigit():
                raise WsnasError(f"architecture index {shown(index)} is not an integer")
            if len(text.lstrip("-").lstrip("0")) > len(str(n)):  # more digits than Python converts, say
                raise WsnasError(f"architecture index {shown(text)} out of range for {self.name}; "
                                 f"accepted: 0..{n - 1}")
        try:
            index = int(index)
        except (TypeError, ValueError):
            raise WsnasError(f"architecture index {shown(index)} is not an integer") from None
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
        """The canonical string of ``arch`` (default: its options in choice order, joined by commas)."""
        return ",".join(self.validate(arch).ops)

    def parse(self, text: str) -> Arch:
        """Parse a canonical string; errors name the bad part and the accepted values.

        Default: one option name per choice, in choice order, separated by commas (:meth:`format`).
        """
        parts = [p.strip() for p in str(text).split(",")]
        if len(parts) != len(self.choices):
            raise WsnasError(
                f"{self.name} architecture {str(text).strip()!r} has {len(parts)} options; expected "
                f"{len(self.choices)}, one per choice ({', '.join(c.name for c in self.choices)}), "
                "separated by commas"
            )
        return self.validate(Arch(self.name, tuple(parts)))

    def resolve(self, key: str | int | Arch) -> Arch:
        """An architecture from a canonical string, an integer index (int or digits) or an Arch.

        A string is the architecture's name when :meth:`parse` reads it, else an index: decimal
        ASCII digits without leading zeros ("0", "63"), in range. Anything else is an error that
        names both forms (tiny64's "011" is no name, having a digit outside 1-4, and no index).
        """
        if isinstance(key, Arch):
            return self.validate(key)
        if isinstance(key, (int, np.integer)):
            return self.from_index(int(key))
        text = str(key).strip()
        try:
            return self.parse(text)
        except WsnasError as exc:
            n = len(self)
            if is_index_text(text) and len(text) <= len(str(n)) and int(text) < n:
                return self.from_index(int(text))
            raise WsnasError(f"{exc} (or an index 0..{n - 1}, without leading zeros)") from None

    def arch_names(self) -> list[str]:
        return [self.format(a) for a in self.enumerate()]

    # ----------------------------------------------------------------- networks
    def describe(self) -> dict:
        """The space's settings, stored with every run so it can be rebuilt exactly.

        ``{"space": name}`` plus ``"source"`` for a plug-in found under another name (see
        :attr:`source`); a subclass adds its options: ``{**super().describe(), "width": 8}``.
        :func:`wsnas.spaces.space_from_description` rebuilds the space from it.
        """
        out = {"space": self.name}
        if self.source is not None and self.source != self.name:
            out["source"] = self.source
        return out

    def build_network(self, arch: Arch, *, num_classes: int, in_channels: int = 3) -> nn.Module:
        """The standalone network of one architecture."""
        raise NotImplementedError

    def check_image_size(self, image_size: int, dataset: str) -> None:
        """Refuse images a standalone network cannot take (every size is fine by default)."""

    def option_text(self, *, defaults: bool = False) -> str:
        """``KEY=VALUE`` of the options that differ from the defaults (``defaults``: of every default)."""
        default = type(self)().describe()
        options = default if defaults else self.describe()
        shown_options = [f"{k}={v}" for k, v in options.items() if k != "space" and (defaults or v != default.get(k))]
        return ", ".join(shown_options) or "the default options"

    def estimate_networks(self, *, num_classes: int, in_channels: int) -> list[nn.Module]:
        """Networks whose parameters bound those of every network the space builds (the supernet:
        it holds every candidate of every standalone network); built on the meta device."""
        return [self.build_supernet(num_classes=num_classes, in_channels=in_channels)]

    def parameter_estimate(self, *, num_classes: int = 10, in_channels: int = 3) -> int:
        """Parameters of the largest network of :meth:`estimate_networks`, counted on the meta device
        (nothing allocated); depth options above :data:`COUNTED_DEPTH` are counted at that depth and
        scaled. A network too large for torch to describe is a WsnasError."""
        import torch

        options = {k: v for k, v in self.describe().items() if k != "space"}
        deep = {k: options[k] for k in self.depth_options if options.get(k, 0) > COUNTED_DEPTH}
        space = type(self)(**{**options, **dict.fromkeys(deep, COUNTED_DEPTH)}) if deep else self
        try:
            with torch.device("meta"):
                count = max(sum(p.numel() for p in net.parameters())
                            for net in space.estimate_networks(num_classes=num_classes, in_channels=in_channels))
        except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
            raise WsnasError(f"{self.name} with {self.option_text()} describes a network too large to build "
                             f"({type(exc).__name__}); accepted: networks that fit in memory") from None
        return count * max(deep.values()) // COUNTED_DEPTH if deep else count

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
