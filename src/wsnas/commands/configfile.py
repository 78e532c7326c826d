"""A command's configuration as a YAML file: ``--config FILE.yaml`` and ``--print-config``.

Nothing here knows a command: the keys of a file are the ``dest`` names of the command's own
argparse actions (``data_option``; the flag spelling ``data-option`` is accepted too), and each
value is typed by the action that declares it, through the same conversion argparse applies to
the command line (its ``type``, then its ``choices``), so a flag a command adds later is a key of
its files with no code here. A flag (``store_true``, ``--x/--no-x``) takes ``true``/``false``; a
repeatable option (``action="append"``, ``nargs``) takes a YAML list; ``null`` is accepted where
the option's default is None. Files are read with PyYAML's safe loader only.

The effective configuration is the parsers' defaults, then the file's values, then the flags the
command line gave (each later one wins; a flag replaces a list of the file, it does not extend
it). The command line's own values come from a second parse by a *probe* of the same parsers
(:func:`relax`): every default suppressed and nothing required, so its namespace holds exactly
what was given, and an argument the file supplies (a positional, a required option) may be
missing from it.

Errors are one line naming the file and the key (:class:`WsnasError`; the CLI prints them as
argparse's, ``wsnas CMD: error: ...``, exit status 2), raised before the command does anything.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml

from wsnas.core.errors import WsnasError, shown

#: The ``dest`` of ``--config`` and ``--print-config``: never keys of a configuration.
CONFIG_DESTS = ("config", "print_config")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--print-config`` on every leaf of ``parser`` (the parser itself, or
    each parser at the end of its sub-commands: ``wsnas store export``)."""
    for _, leaf in leaves(parser):
        g = leaf.add_argument_group("configuration file")
        g.add_argument("--config", default=None, metavar="FILE.yaml",
                       help="read the options from a YAML file (keys: the options' names, e.g. 'seed: 3', "
                            "'data_option: [limit=200]'); flags given on the command line override it")
        g.add_argument("--print-config", action="store_true",
                       help="print the effective configuration (defaults, --config file, flags) as YAML and "
                            "exit without doing anything; --config reads it back")


def subcommands(parser: argparse.ArgumentParser) -> argparse.Action | None:
    """The sub-parsers action of ``parser`` (``wsnas store``'s info/export), or None."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def leaves(parser: argparse.ArgumentParser, names: tuple[str, ...] = ()
           ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser at the end of a chain of sub-commands under ``parser``, with the names that
    lead to it (``(("store", "export"), parser)`` from the top parser)."""
    sub = subcommands(parser)
    if sub is None:
        yield names, parser
        return
    seen = set()
    for name, child in sub.choices.items():
        if id(child) not in seen:  # an alias names the same parser again
            seen.add(id(child))
            yield from leaves(child, (*names, name))


def chain(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.ArgumentParser]:
    """The parsers from ``parser`` down to the leaf that ``args`` chose (``[store, store export]``)."""
    parsers = [parser]
    while (sub := subcommands(parsers[-1])) is not None:
        parsers.append(sub.choices[getattr(args, sub.dest)])
    return parsers


def chosen_names(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The sub-command names below ``parser`` that ``args`` chose (``["export"]`` under store)."""
    return [getattr(args, subcommands(p).dest) for p in chain(parser, args)[:-1]]


def option_actions(parsers: Sequence[argparse.ArgumentParser]) -> list[argparse.Action]:
    """The actions whose values make up a configuration, in the parsers' order: every option and
    positional except help, version, sub-commands and ``--config``/``--print-config``."""
    out = []
    for p in parsers:
        for action in p._actions:
            if (action.dest == argparse.SUPPRESS or action.dest in CONFIG_DESTS
                    or isinstance(action, (argparse._SubParsersAction, argparse._HelpAction,
                                           argparse._VersionAction))):
                continue
            out.append(action)
    return out


def relax(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` and every parser under it a probe: no defaults (its namespace holds only what
    the command line gave) and nothing required (the file may give it)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            action.default = argparse.SUPPRESS
            action.required = False
            parser._defaults.pop(action.dest, None)  # set_defaults(space=None) sets both
    for group in parser._mutually_exclusive_groups:
        group.required = False
    sub = subcommands(parser)
    if sub is not None:
        for child in {id(c): c for c in sub.choices.values()}.values():
            relax(child)


def given(probe_args: argparse.Namespace, parsers: Sequence[argparse.ArgumentParser]) -> dict[str, Any]:
    """The option values the command line gave, from the namespace of a :func:`relax` ed probe."""
    dests = {a.dest for a in option_actions(parsers)}
    return {k: v for k, v in vars(probe_args).items() if k in dests}


def defaults(parsers: Sequence[argparse.ArgumentParser]) -> dict[str, Any]:
    """Every option's default, as the command line without it would set it (argparse runs a string
    default through the option's type)."""
    out: dict[str, Any] = {}
    for action in option_actions(parsers):
        if action.dest in out:  # two flags of one dest (--arch and its alias --genotype)
            continue
        value = next(p for p in parsers if action in p._actions).get_default(action.dest)
        if isinstance(value, str) and action.type is not None:
            value = action.type(value)
        out[action.dest] = copy.copy(value)
    return out


def effective(parsers: Sequence[argparse.ArgumentParser], args: argparse.Namespace) -> dict[str, Any]:
    """The configuration ``args`` holds: each option's value, in the parsers' order, as plain YAML and
    JSON values (copies, so a command that changes its arguments does not change it; a value of
    another type, such as a path an option's ``type`` made, as its text, which the type reads back)."""
    return {dest: _plain(getattr(args, dest)) for dest in defaults(parsers)}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


# ---------------------------------------------------------------------------------------------------
# reading a file


def keys(parsers: Sequence[argparse.ArgumentParser]) -> dict[str, argparse.Action]:
    """Each accepted key and the action it sets: the ``dest`` and, for an option, its flags without
    the leading dashes, in both spellings (``data_option``, ``data-option``; ``genotype`` for the
    ``--genotype`` alias of ``arch``); never a ``--no-x`` negation."""
    out: dict[str, argparse.Action] = {}
    for action in option_actions(parsers):
        out.setdefault(action.dest, action)
        out.setdefault(action.dest.replace("_", "-"), action)
        negations = ({f"--no-{s[2:]}" for s in action.option_strings if s.startswith("--")}
                     if isinstance(action, argparse.BooleanOptionalAction) else set())
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in negations:
                out.setdefault(flag[2:], action)
                out.setdefault(flag[2:].replace("-", "_"), action)
    return out


def load(path: str) -> dict:
    """The mapping a YAML file holds (an empty file: none), read with ``yaml.safe_load``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise WsnasError(f"config file {path!r} is not UTF-8 text; accepted: a YAML file") from None
    except OSError as exc:
        raise WsnasError(f"cannot read config file {path!r}: {exc.strerror or exc}; accepted: a readable "
                         "YAML file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise WsnasError(f"config file {path!r} is not valid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise WsnasError(f"config file {path!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WsnasError(f"config file {path!r} holds {_kind(data)}, not a mapping of option names to values; "
                         "accepted: lines such as 'seed: 3'")
    return data


def read_config(path: str, parsers: Sequence[argparse.ArgumentParser]) -> dict[str, Any]:
    """The option values of the YAML file ``path``, by ``dest``, typed by their actions; a one-line
    :class:`WsnasError` for an unknown key, a key given twice or a value of the wrong type."""
    data = load(path)
    accepted = keys(parsers)
    default = defaults(parsers)
    out: dict[str, Any] = {}
    first: dict[str, str] = {}
    for key, value in data.items():
        action = accepted.get(key) if isinstance(key, str) else None
        if action is None:
            names = ", ".join(default)
            raise WsnasError(f"unknown key {shown(key)} in {path}; accepted: {names}")
        if action.dest in first:
            raise WsnasError(f"key {key!r} in {path} sets {action.dest!r} again (as {first[action.dest]!r} "
                             "did); accepted: one key per option")
        first[action.dest] = key
        out[action.dest] = _typed(action, value, f"key {key!r} in {path}", default[action.dest])
    return out


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {shown(value)}"


def _is_list(action: argparse.Action) -> bool:
    """Whether the option's value is a list (repeatable, or several values per flag)."""
    return (isinstance(action, (argparse._AppendAction, argparse._ExtendAction))
            or action.nargs in (argparse.ZERO_OR_MORE, argparse.ONE_OR_MORE)
            or isinstance(action.nargs, int) and action.nargs >= 1)


def _is_flag(action: argparse.Action) -> bool:
    """Whether the option takes no value (``store_true``, ``--x/--no-x``)."""
    return action.nargs == 0


def _is_boolean(action: argparse.Action) -> bool:
    return isinstance(action, argparse.BooleanOptionalAction) or isinstance(action.const, bool)


def _typed(action: argparse.Action, value: Any, where: str, default: Any) -> Any:
    """``value`` as the command line would have set ``action``'s dest (whose default is ``default``)."""
    if value is None:
        if default is None:
            return None
        raise WsnasError(f"{where} is null; accepted: {_accepted(action)}")
    if _is_flag(action):
        if isinstance(value, bool) if _is_boolean(action) else value in (action.const, default):
            return value
        raise WsnasError(f"{where} is {_kind(value)}; accepted: {_accepted(action)}")
    if _is_list(action):
        if not isinstance(value, list):
            raise WsnasError(f"{where} is {_kind(value)}; accepted: {_accepted(action)}")
        if action.nargs == argparse.ONE_OR_MORE and not value:
            raise WsnasError(f"{where} is an empty list; accepted: {_accepted(action)}")
        return [_scalar(action, item, where) for item in value]
    return _scalar(action, value, where)


def _accepted(action: argparse.Action) -> str:
    """What a key of ``action`` takes, for an error line."""
    if _is_flag(action):
        return "true or false" if _is_boolean(action) else f"{action.const!r} or the default"
    name = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
    one = ("one of " + ", ".join(map(repr, action.choices)) if action.choices is not None
           else f"what {name} takes")
    return f"a list, each item {one}" if _is_list(action) else one


def _scalar(action: argparse.Action, value: Any, where: str) -> Any:
    """One value through the action's type and choices, as argparse converts a command-line string."""
    if isinstance(value, (dict, list)) or isinstance(value, bool):
        raise WsnasError(f"{where} is {_kind(value)}; accepted: {_accepted(action)}")
    if isinstance(value, (datetime.date, datetime.datetime)):
        value = value.isoformat()  # YAML reads 2024-01-01 as a date; the option takes text
    text = value if isinstance(value, str) else str(value)
    convert = action.type if action.type is not None else str
    try:
        out = convert(text)
    except argparse.ArgumentTypeError as exc:
        raise WsnasError(f"{where}: {exc}") from None
    except (TypeError, ValueError):
        name = getattr(convert, "__name__", repr(convert))
        raise WsnasError(f"{where}: {shown(text)} is not a valid {name}") from None
    if action.choices is not None and out not in action.choices:
        raise WsnasError(f"{where}: {shown(out)} is not accepted; accepted: "
                         f"{', '.join(map(repr, action.choices))}")
    return out


# ---------------------------------------------------------------------------------------------------
# merging and printing


def required_missing(parsers: Sequence[argparse.ArgumentParser], values: Mapping[str, Any]) -> list[str]:
    """What argparse would call missing: required options and positionals with no value, and
    required groups (``--arch`` or ``--genotype``) none of whose options has one."""
    def unset(action: argparse.Action) -> bool:
        value = values.get(action.dest)
        return value is None or (_is_list(action) and value == [] and action.nargs == argparse.ONE_OR_MORE)

    missing = []
    grouped = set()
    for p in parsers:
        for group in p._mutually_exclusive_groups:
            grouped.update(id(a) for a in group._group_actions)
            if group.required and all(unset(a) for a in group._group_actions):
                flags = " ".join(f for a in group._group_actions for f in a.option_strings)
                missing.append(f"one of the arguments {flags}")
    for action in option_actions(parsers):
        if id(action) in grouped or not unset(action):
            continue
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            missing.append(action.metavar or action.dest)
        elif action.required:
            missing.append("/".join(action.option_strings))
    return missing


def merge(parsers: Sequence[argparse.ArgumentParser], from_file: Mapping[str, Any],
          from_command_line: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then the file's values, then the command line's; refuses what is still missing."""
    values = defaults(parsers)
    values.update(from_file)
    values.update(from_command_line)
    missing = required_missing(parsers, values)
    if missing:
        raise WsnasError(f"the following arguments are required: {', '.join(missing)} (on the command line or "
                         "in the --config file)")
    return values


def to_yaml(options: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """``options`` as YAML that :func:`read_config` reads back, keys in their given order; ``header``
    lines become comments above them."""
    text = yaml.safe_dump(dict(options), sort_keys=False, default_flow_style=False, width=1_000_000)
    return "".join(f"# {line}\n" for line in header) + text


__all__ = ["CONFIG_DESTS", "add_config_options", "chain", "chosen_names", "defaults", "effective", "given",
           "keys", "leaves", "load", "merge", "option_actions", "read_config", "relax", "required_missing",
           "subcommands", "to_yaml"]
