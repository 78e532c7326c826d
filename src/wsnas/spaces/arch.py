"""Choices and architectures: the plain values a space is made of (no networks, no spaces)."""

from __future__ import annotations

from dataclasses import dataclass

from wsnas.core.errors import WsnasError


@dataclass(frozen=True)
class Choice:
    """One categorical decision: a name (e.g. an edge ``0->1``) and its options (op names)."""

    name: str
    options: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError(f"choice {self.name!r} has no options")
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"choice {self.name!r} has duplicate options {self.options}")

    def option_index(self, option: str) -> int:
        try:
            return self.options.index(option)
        except ValueError:
            raise WsnasError(
                f"unknown option {option!r} for {self.name}; accepted: {', '.join(self.options)}"
            ) from None


@dataclass(frozen=True)
class Arch:
    """One architecture: the option picked for every choice of a space, in choice order."""

    space: str
    ops: tuple[str, ...]

    def __str__(self) -> str:  # the canonical string needs the space; this is for debugging
        return f"{self.space}:{'/'.join(self.ops)}"


__all__ = ["Arch", "Choice"]
