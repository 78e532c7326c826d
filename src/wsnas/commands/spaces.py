"""List search spaces, and translate architectures between canonical strings and indices.

Examples:
  wsnas spaces                         # the spaces and their sizes (installed plug-ins too)
  wsnas spaces --space tiny64 --list   # every architecture with its index
  wsnas spaces --space tiny64 --arch 434 --arch 5
"""

from __future__ import annotations

import argparse

from wsnas.commands.common import ARCH_RULE, add_space_options, space_from_args
from wsnas.core.errors import WsnasError
from wsnas.spaces import get_space, space_names


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_space_options(p, default=None)
    p.add_argument("--arch", action="append", default=[],
                   help=f"an architecture to show, repeatable; {ARCH_RULE}")
    p.add_argument("--list", action="store_true", help="list every architecture with its index")


def option_sets(space, shown: int = 3) -> str:
    """The space's distinct option sets, most used first, each with how many choices offer it:
    ``3 x {a, b, c}`` (every choice of tiny64), ``16 x {...}; 2 x {...}; ...`` (DARTS)."""
    counts: dict[tuple[str, ...], int] = {}
    for choice in space.choices:
        counts[tuple(choice.options)] = counts.get(tuple(choice.options), 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties in the space's order
    text = "; ".join(f"{n} x {{{', '.join(options)}}}" for options, n in ranked[:shown])
    more = len(ranked) - shown
    return text + (f"; and {more} more option set{'s' if more > 1 else ''}" if more > 0 else "")


def run(args: argparse.Namespace) -> int:
    if args.space is None:
        for name in space_names():
            try:
                space = get_space(name)
            except WsnasError as exc:  # a broken plug-in does not hide the others
                print(f"{name}: {exc}")
                continue
            print(f"{name}: {len(space)} architectures, {len(space.choices)} choices: {option_sets(space)}")
        return 0
    space = space_from_args(args)
    if args.list:
        for i, arch in enumerate(space.enumerate()):
            print(f"{i}\t{space.format(arch)}")
    for key in args.arch:
        arch = space.resolve(key)
        print(f"{space.index(arch)}\t{space.format(arch)}\t"
              + ", ".join(f"{c.name}={o}" for c, o in zip(space.choices, arch.ops)))
    if not args.list and not args.arch:
        print(f"{space.name}: {len(space)} architectures; choices: "
              + "; ".join(f"{c.name} in {{{', '.join(c.options)}}}" for c in space.choices))
    return 0
