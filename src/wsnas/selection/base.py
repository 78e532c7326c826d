"""The selection interface and its registry: every selection method is a :class:`Selector`.

A selector is built by name with its options (:func:`get_selector`) and turns a trained
differentiable search into one architecture (:meth:`Selector.select`). Methods that change the
supernet (PT tunes it in memory) run after those that leave it untouched (:func:`ordered`), so a
search selected by several methods gives each the supernet it would have had alone, as far as
that is possible. :func:`register_selector` adds a method; the commands, the search, the study and
its report read the accepted names from here (:func:`selection_names`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset
from wsnas.spaces import Arch


class Selector:
    """One selection method. Subclasses set ``name`` and implement :meth:`select`.

    Options are keyword arguments of the constructor (``get_selector(name, **options)``); an
    unknown option is a ``TypeError`` there, reported as a one-line :class:`WsnasError`.
    """

    #: the method's name: the ``--select`` / ``--method`` value and the stored ``method``
    name: ClassVar[str] = ""
    #: how reports name it (default: ``name``)
    label: ClassVar[str] = ""
    #: it changes the supernet it selects from (weights, architecture weights, decisions): it runs
    #: after every method that does not
    changes_supernet: ClassVar[bool] = False
    #: its choice comes from the values of the learned architecture weights, so a fixed-alpha
    #: supernet (uniform weights, never updated) gives it nothing to go on
    needs_alpha: ClassVar[bool] = True

    def select(self, trainer, data: Dataset, *, progress: bool = True) -> Arch:
        """The architecture this method picks from ``trainer`` (a trained
        :class:`~wsnas.training.trainer.SupernetTrainer` with a differentiable strategy)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


# name -> class, in registration order (the order reports list the methods in)
SELECTORS: dict[str, type[Selector]] = {}


def register_selector(cls: type[Selector]) -> type[Selector]:
    """Add a selection method (usable as a class decorator); its ``name`` must be new."""
    if not (isinstance(cls, type) and issubclass(cls, Selector)):
        raise WsnasError(f"a selection method must be a Selector subclass, not {cls!r}")
    name = cls.name
    if not name or any(c in name for c in ", \t\n") or name != name.strip():
        raise WsnasError(f"selection method {cls.__name__} needs a name without commas or spaces, got {name!r}")
    if SELECTORS.get(name, cls) is not cls:
        raise WsnasError(f"selection method {name!r} is already registered ({SELECTORS[name].__name__})")
    SELECTORS[name] = cls
    return cls


def unregister_selector(name: str) -> None:
    """Remove a selection method (tests register their own and take them away again)."""
    SELECTORS.pop(name, None)


def _unknown(name: str) -> WsnasError:
    return WsnasError(f"unknown selection {name!r}; accepted: {', '.join(selection_names())}")


def selector_class(name: str) -> type[Selector]:
    """The class registered as ``name`` (a one-line error naming the accepted ones otherwise)."""
    try:
        return SELECTORS[name]
    except KeyError:
        raise _unknown(name) from None


def selection_names() -> tuple[str, ...]:
    """Every registered method, in the order they run (methods that change the supernet last)."""
    return tuple(ordered(SELECTORS))


def check_selections(methods: Iterable[str]) -> tuple[str, ...]:
    """``methods`` as a tuple, if it is non-empty and every name is registered; a one-line error otherwise."""
    methods = tuple(methods)
    bad = [m for m in methods if m not in SELECTORS]
    if bad or not methods:
        raise _unknown((bad or [""])[0])
    return methods


def get_selector(name: str, **options) -> Selector:
    """The selection method ``name`` built with ``options``."""
    cls = selector_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise WsnasError(f"bad option for selection {name!r}: {exc}") from None


def get_selectors(methods: Iterable[str], options: Mapping[str, Mapping] | None = None) -> list[Selector]:
    """One selector per distinct name of ``methods``, in the order they run; ``options[name]``
    are that method's options (methods without an entry get their defaults)."""
    options = options or {}
    return [get_selector(m, **dict(options.get(m) or {})) for m in ordered(check_selections(methods))]


def ordered(methods: Iterable[str | Selector]) -> list:
    """Distinct ``methods`` (names or selectors) in the order they run: those that leave the supernet
    untouched first, then those that change it; registration order within each (whatever order
    they were given in)."""
    rank = {name: i for i, name in enumerate(SELECTORS)}

    def key(m: str | Selector) -> tuple[bool, int]:
        cls = type(m) if isinstance(m, Selector) else selector_class(m)
        return cls.changes_supernet, rank.get(cls.name, len(rank))

    seen: dict[str, str | Selector] = {}
    for m in methods:
        seen.setdefault(m.name if isinstance(m, Selector) else m, m)
    return sorted(seen.values(), key=key)


def selection_label(name: str) -> str:
    """How reports name the method ``name`` (its ``label``, else its name)."""
    cls = SELECTORS.get(name)
    return (cls.label if cls is not None else "") or name


def select_magnitude(strategy) -> Arch:
    """The argmax architecture of a differentiable strategy's current weights (decided edges kept)."""
    if not strategy.differentiable:
        raise WsnasError(f"magnitude selection needs a differentiable search, not {strategy.name!r}")
    weights = strategy.arch.selection_weights()
    for e, op in strategy.decided.items():
        if op is not None:
            weights[e] = 0.0
            weights[e, op] = 1.0
    keep = None
    if any(op is None for op in strategy.decided.values()):
        keep = [e for e in range(len(weights)) if strategy.decided.get(e, 0) is not None]
    if keep is not None:
        return strategy.relaxation.discretize(weights, exclude=strategy.exclude, keep=keep)
    return strategy.relaxation.discretize(weights, exclude=strategy.exclude)


__all__ = ["SELECTORS", "Selector", "check_selections", "get_selector", "get_selectors", "ordered", "register_selector",
           "select_magnitude", "selection_label", "selection_names", "selector_class", "unregister_selector"]
