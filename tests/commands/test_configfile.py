"""``--config FILE.yaml`` and ``--print-config`` (wsnas.commands.configfile, through wsnas.cli).

The commands are taken from the parser itself (every leaf of ``wsnas.cli.build_parser()``), so a
command or an option added later is covered with no change here. The reference for what a file
means is argparse: a file plus flags must give the arguments that the same values given as
flags give (the flags winning, a flag's list replacing the file's). Nothing here runs a command's
work: ``wsnas.cli.parse_args`` returns the arguments a command would run with.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsnas import cli
from wsnas.commands import configfile
from wsnas.commands.common import positive_int_arg, run_id_arg, seed_arg

PARSER = cli.build_parser()
LEAVES = {" ".join(names): leaf for names, leaf in configfile.leaves(PARSER)}


def parsers_of(names: tuple[str, ...]) -> list[argparse.ArgumentParser]:
    """The parsers from the command's to the leaf (``store``, ``store export``)."""
    out = [configfile.subcommands(PARSER).choices[names[0]]]
    for name in names[1:]:
        out.append(configfile.subcommands(out[-1]).choices[name])
    return out


def required_argv(names: tuple[str, ...]) -> list[str]:
    """The leaf's command line with a value for everything it requires (values of no meaning: nothing runs)."""
    argv, positionals = list(names), []
    for parser in parsers_of(names):
        for group in parser._mutually_exclusive_groups:
            if group.required:
                argv += [group._group_actions[0].option_strings[-1], "x"]
        for action in configfile.option_actions([parser]):
            if not action.option_strings and action.nargs is None:
                positionals.append("x")
            elif action.required:
                argv += [action.option_strings[-1], "x"]
    return argv + positionals


def print_config(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert cli.main([*argv, "--print-config"]) == 0
    return capsys.readouterr().out


def options(args: argparse.Namespace) -> dict:
    return configfile.effective(configfile.chain(args._parser, args), args)


def test_every_command_has_config_and_print_config():
    assert "supernet" in LEAVES and "store export" in LEAVES and "benchmark query" in LEAVES
    for name, leaf in LEAVES.items():
        flags = {f for a in leaf._actions for f in a.option_strings}
        assert {"--config", "--print-config"} <= flags, name
    assert "--config" in PARSER.format_help() and "--print-config" in PARSER.format_help()
    assert "wsnas store config" in PARSER.format_help()


@pytest.mark.parametrize("names", [n for n, _ in configfile.leaves(PARSER)], ids=list(LEAVES))
def test_print_config_round_trips_for_every_command(names, tmp_path, capsys):
    """--print-config prints the defaults and the flags; fed back with --config it gives the same
    arguments as the command line it came from, and prints the same configuration again."""
    argv = required_argv(names)
    text = print_config(argv, capsys)
    plain = cli.parse_args(argv)
    printed = yaml.safe_load(text)
    assert printed == options(plain)
    assert list(printed) == list(configfile.defaults(parsers_of(names)))  # every option, in the parsers' order
    path = tmp_path / "c.yaml"
    path.write_text(text)
    again = cli.parse_args([*names, "--config", str(path)])
    assert options(again) == options(plain)
    assert yaml.safe_load(print_config([*names, "--config", str(path)], capsys)) == printed


def test_print_config_does_no_work(tmp_path, capsys):
    db = tmp_path / "s.db"
    text = print_config(["supernet", "--store", str(db), "--run-dir", str(tmp_path / "run"), "--epochs", "3"], capsys)
    assert yaml.safe_load(text)["epochs"] == 3 and yaml.safe_load(text)["store"] == str(db)
    assert list(tmp_path.iterdir()) == []


def test_file_values_are_typed_and_flags_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: '3'\nlr: 0.05\nspace-option: [channels=4, stem_channels=8]\nno_progress: true\n"
                    "bn-mode: recal\nepochs: 2\n")
    args = cli.parse_args(["supernet", "--config", str(path), "--epochs", "5", "--space-option", "cells=2"])
    assert args.seed == 3 and args.lr == 0.05 and args.no_progress is True and args.bn_mode == "recal"
    assert args.epochs == 5  # the flag wins
    assert args.space_option == ["cells=2"]  # a flag's list replaces the file's
    assert args.strategy == "uniform" and args.data_option == []  # the defaults
    assert args.config == str(path) and args._run is cli.importlib.import_module("wsnas.commands.supernet").run


def test_positionals_and_required_options_may_come_from_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("table: runs\nout: runs.csv\n")
    args = cli.parse_args(["store", "--store", "other.db", "export", "--config", str(path)])
    assert (args.command, args.action, args.table, args.out, args.store) == ("store", "export", "runs", "runs.csv",
                                                                            "other.db")
    args = cli.parse_args(["store", "export", "groundtruth", "--config", str(path)])
    assert args.table == "groundtruth"  # the command line's positional wins
    path.write_text("store: s.db\n")  # a key of the command's own parser (wsnas store --store)
    assert cli.parse_args(["store", "info", "--config", str(path)]).store == "s.db"
    path.write_text("genotype: '0'\n")  # --genotype, an alias of --arch: a required group
    assert cli.parse_args(["cost", "--config", str(path)]).arch == "0"


def test_booleans_of_both_kinds(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("single_level: false\nfixed-alpha: true\n")
    args = cli.parse_args(["search", "--config", str(path)])
    assert args.single_level is False and args.fixed_alpha is True
    assert cli.parse_args(["search", "--config", str(path), "--single-level"]).single_level is True
    path.write_text("single_level: null\n")  # its default is None
    assert cli.parse_args(["search", "--config", str(path)]).single_level is None


def test_an_empty_file_is_the_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing\n")
    assert options(cli.parse_args(["supernet", "--config", str(path)])) == options(cli.parse_args(["supernet"]))


def refusal(argv: list[str], capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("text, fragments", [
    ("sed: 3\n", ["wsnas supernet: error: unknown key 'sed' in", "accepted: space, space_option, data,", "seed"]),
    ("config: x.yaml\n", ["unknown key 'config'"]),
    ("print_config: true\n", ["unknown key 'print_config'"]),
    ("no-no-progress: true\n", ["unknown key 'no-no-progress'"]),
    ("1: 3\n", ["unknown key 1 in"]),
    ("seed: abc\n", ["key 'seed' in", "seed 'abc' is not an integer", "0..9223372036854775807"]),
    ("seed: 1.5\n", ["key 'seed' in", "'1.5' is not an integer"]),
    ("seed: true\n", ["key 'seed' in", "is bool True; accepted: what --seed takes"]),
    ("seed: null\n", ["key 'seed' in", "is null"]),
    ("epochs: two\n", ["key 'epochs' in", "'two' is not a valid int"]),
    ("lr: [0.1]\n", ["key 'lr' in", "is a list; accepted: what --lr takes"]),
    ("data: {name: digits}\n", ["key 'data' in", "is a mapping"]),
    ("bn_mode: fancy\n", ["key 'bn_mode' in", "'fancy' is not accepted; accepted: 'running', 'batch'"]),
    ("no_progress: 1\n", ["key 'no_progress' in", "accepted: true or false"]),
    ("no_progress: 'yes'\n", ["key 'no_progress' in", "accepted: true or false"]),
    ("space_option: channels=4\n", ["key 'space_option' in", "is str 'channels=4'; accepted: a list"]),
    ("space_option: [[channels=4]]\n", ["key 'space_option' in", "is a list"]),
    ("data_option: null\n", ["key 'data_option' in", "is null"]),
    ("data_option: [limit=1]\ndata-option: [limit=2]\n", ["key 'data-option' in", "sets 'data_option' again"]),
    ("threads: 0\n", ["key 'threads' in", "'0' is not accepted; accepted: a positive integer"]),
    ("seed: [1\n", ["is not valid YAML", "line 2, column 1"]),
    ("seed: 1\n  lr: 2\n", ["is not valid YAML", "line 2"]),
    ("- seed\n", ["holds a list, not a mapping of option names to values"]),
    ("just text\n", ["holds str 'just text', not a mapping"]),
    ("!!python/object/apply:os.system ['echo hi']\n", ["is not valid YAML"]),
])
def test_a_bad_file_is_one_line_naming_the_key(tmp_path, capsys, text, fragments):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    err = refusal(["supernet", "--config", str(path)], capsys)
    for fragment in fragments:
        assert fragment in err, err


def test_files_that_cannot_be_read(tmp_path, capsys):
    err = refusal(["supernet", "--config", str(tmp_path / "none.yaml")], capsys)
    assert "cannot read config file" in err and "none.yaml" in err and "No such file" in err
    err = refusal(["supernet", "--config", str(tmp_path)], capsys)
    assert "cannot read config file" in err and "directory" in err
    (tmp_path / "latin.yaml").write_bytes("data: caf\xe9\n".encode("latin-1"))
    assert "is not UTF-8 text" in refusal(["supernet", "--config", str(tmp_path / "latin.yaml")], capsys)


def test_what_is_still_missing_is_named(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("table: runs\n")
    err = refusal(["store", "export", "--config", str(path)], capsys)
    assert "wsnas store export: error: the following arguments are required: --out" in err
    err = refusal(["cost", "--print-config"], capsys)
    assert "one of the arguments --arch --genotype" in err


def test_the_command_line_is_checked_as_without_a_file(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\n")
    assert "unrecognized arguments: --nope" in refusal(["supernet", "--config", str(path), "--nope"], capsys)
    assert "--seed" in refusal(["supernet", "--config", str(path), "--seed", "x"], capsys)


def test_help_is_the_real_parser_s(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["store", "export", "--config", "c.yaml", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--out FILE.csv" in out and "[--out" not in out and "--print-config" in out


# ---------------------------------------------------------------------------------------------------
# property: a file and flags mean what the same values as flags mean

NAME = st.text(alphabet="abcxyz019_.=:,", min_size=1, max_size=8)
RUN_ID = st.from_regex(r"[A-Za-z0-9_]{1,6}(/[A-Za-z0-9_]{1,6}){0,2}", fullmatch=True)


def value_of(action: argparse.Action):
    """A strategy of values the action accepts, as Python values (what the parsed namespace holds)."""
    if action.nargs == 0:
        return st.booleans()
    if action.choices is not None:
        one = st.sampled_from(list(action.choices))
    else:
        one = {int: st.integers(0, 10**6), float: st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
               seed_arg: st.integers(0, 2**63 - 1), positive_int_arg: st.integers(1, 10**4),
               run_id_arg: RUN_ID, None: NAME}[action.type]
    if isinstance(action, argparse._AppendAction):
        return st.lists(one, max_size=3)
    return one


def as_flags(action: argparse.Action, value) -> list[str]:
    """``value`` as the command line gives it (nothing for a flag left at false)."""
    if action.nargs == 0:
        if isinstance(action, argparse.BooleanOptionalAction):
            return [action.option_strings[0] if value else action.option_strings[1]]
        return [action.option_strings[0]] if value else []
    if not action.option_strings:
        return [str(value)]
    items = value if isinstance(value, list) else [value]
    return [t for item in items for t in (action.option_strings[-1], str(item))]


def representable(action: argparse.Action, value) -> bool:
    """Whether flags can give ``value`` (store_true cannot say false; an empty list has no flag)."""
    if action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction):
        return bool(value)
    return not (isinstance(value, list) and not value)


@st.composite
def configurations(draw):
    names = draw(st.sampled_from([n for n, _ in configfile.leaves(PARSER)]))
    parsers = parsers_of(names)
    actions = {}
    for action in configfile.option_actions(parsers):
        actions.setdefault(action.dest, action)
    needed = {a.dest for a in actions.values() if a.required or (not a.option_strings and a.nargs is None)}
    needed |= {g._group_actions[0].dest for p in parsers for g in p._mutually_exclusive_groups if g.required}
    chosen = draw(st.sets(st.sampled_from(sorted(actions)), max_size=8)) | needed
    positional_side = draw(st.sampled_from(["file", "flags"]))
    file_values, flag_values = {}, {}
    for dest in sorted(chosen):
        action = actions[dest]
        value = draw(value_of(action))
        side = positional_side if not action.option_strings else draw(st.sampled_from(["file", "flags", "both"]))
        if side in ("file", "both") or not representable(action, value):
            file_values[dest] = value
        if side in ("flags", "both") and representable(action, value):
            flag_values[dest] = draw(value_of(action).filter(lambda v, a=action: representable(a, v))) \
                if side == "both" else value
    return names, actions, file_values, flag_values


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=configurations())
def test_a_file_and_flags_mean_the_same_values_as_flags(tmp_path, case):
    names, actions, file_values, flag_values = case
    path = Path(tmp_path) / "c.yaml"
    path.write_text(configfile.to_yaml(file_values))

    def argv(values: dict) -> list[str]:
        opts = [t for dest, v in values.items() if actions[dest].option_strings for t in as_flags(actions[dest], v)]
        pos = [t for dest, v in values.items() if not actions[dest].option_strings for t in as_flags(actions[dest], v)]
        return [*opts, *pos]

    parent, leaf = names[:1], names[1:]  # a parent's option (store --store) goes before the leaf's name
    parent_dests = {a.dest for a in configfile.option_actions(parsers_of(names)[:1])} if leaf else set()

    def line(values: dict) -> list[str]:
        return [*parent, *argv({k: v for k, v in values.items() if k in parent_dests}), *leaf,
                *argv({k: v for k, v in values.items() if k not in parent_dests})]

    expected = cli.parse_args(line({**{k: v for k, v in file_values.items() if k not in flag_values}, **flag_values}))
    got = cli.parse_args([*line(flag_values), "--config", str(path)])
    assert options(got) == options(expected)


def test_values_of_other_types_are_printed_as_their_text(tmp_path):
    """An option whose type makes a path (none does yet) is printed as text, which the type reads back."""
    parser = argparse.ArgumentParser(prog="wsnas x")
    parser.add_argument("--where", type=Path, default=Path("a/b"))
    parser.add_argument("--sizes", type=int, nargs="+", default=(1, 2))
    args = parser.parse_args([])
    assert configfile.effective([parser], args) == {"where": "a/b", "sizes": [1, 2]}
    path = tmp_path / "c.yaml"
    path.write_text(configfile.to_yaml(configfile.effective([parser], args)))
    assert configfile.read_config(str(path), [parser]) == {"where": Path("a/b"), "sizes": [1, 2]}
