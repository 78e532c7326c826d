"""Search spaces. ``get_space(name, **options)`` builds one by name."""

from __future__ import annotations

from wsnas.core.errors import WsnasError
from wsnas.spaces.base import Arch, Choice, Space
from wsnas.spaces.darts import DartsSpace
from wsnas.spaces.nb201 import NB201Space
from wsnas.spaces.tiny64 import Tiny64Space

SPACES: dict[str, type[Space]] = {
    "tiny64": Tiny64Space,
    "darts": DartsSpace,
    "nb201": NB201Space,
}


def get_space(name: str, **options) -> Space:
    """The space called ``name`` with its network options; errors list the accepted names."""
    try:
        cls = SPACES[name]
    except KeyError:
        raise WsnasError(f"unknown space {name!r}; accepted: {', '.join(SPACES)}") from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise WsnasError(f"bad option for space {name!r}: {exc}") from None


__all__ = ["Arch", "Choice", "Space", "SPACES", "get_space"]
