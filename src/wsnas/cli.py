"""The ``wsnas`` command.

Each sub-command lives in ``wsnas.commands.<name>`` and exposes two functions:
``add_arguments(parser)`` to declare its options and ``run(args) -> int`` to execute.
User errors (:class:`wsnas.core.errors.WsnasError`) are printed as one line without a traceback;
so are the errors argparse finds in the command line (an unknown option, a value of the wrong
type), without its usage text: ``wsnas CMD --help`` prints that.

Exit status: 0 success; 2 a user error; 1 a full disk or quota (``ENOSPC``, ``EDQUOT``,
``EFBIG``: one line naming the file; what was written before stays, rerun to continue); 130
Ctrl-C; 141 (128 + SIGPIPE, as for a Unix tool killed by it) when the reader of the output
went away (``wsnas spaces --list | head``), quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from wsnas import __version__
from wsnas.commands import configfile
from wsnas.core.errors import WsnasError
from wsnas.core.files import FULL_DISK
from wsnas.core.runtime import tune_allocator
from wsnas.runs import recorded_command

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "groundtruth": ("wsnas.commands.groundtruth", "train architectures from scratch and store their accuracy"),
    "metrics": ("wsnas.commands.metrics", "ranking metrics of predictions against a ground truth"),
    "store": ("wsnas.commands.store", "inspect and export the results store"),
    "spaces": ("wsnas.commands.spaces", "list search spaces, parse and index architectures"),
    "supernet": ("wsnas.commands.supernet", "train one supernet with a single-path strategy and rank children"),
    "search": ("wsnas.commands.search", "differentiable search (DARTS, GDAS, PC-DARTS; softmax or GAEA) and selection"),
    "select": ("wsnas.commands.select", "select an architecture from a finished search (magnitude or PT)"),
    "evolve": ("wsnas.commands.evolve", "evolutionary or random search on a trained supernet, with constraints"),
    "insights": ("wsnas.commands.insights", "the 64-child weight-sharing study, end to end, with its report"),
    "report": ("wsnas.commands.report", "write the HTML/Markdown report of a study or run directory from its store"),
    "benchmark": ("wsnas.commands.benchmark", "convert and query NAS-Bench-201 / NATS-Bench results"),
    "cost": ("wsnas.commands.cost", "parameters and FLOPs of an architecture"),
    "interference": ("wsnas.commands.interference", "measure interference between children and gradient variance"),
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``wsnas CMD: error: ...``, and exit status 2."""

    def error(self, message: str):
        line = " ".join(f"{self.prog}: error: {message}".split())
        self.exit(2, f"{line} (see {self.prog} --help)\n")


EPILOG = """\
every command takes --config FILE.yaml (its options from a YAML file, keys as the options' names:
'seed: 3', 'data_option: [limit=200]'; flags given on the command line override the file) and
--print-config (print the effective configuration as YAML and exit); `wsnas store config RUN`
prints the configuration a stored run was made with, which --config reproduces:
  wsnas supernet --epochs 5 --print-config > run.yaml
  wsnas supernet --config run.yaml --seed 1
  wsnas store config supernet/uniform/0 > again.yaml && wsnas supernet --config again.yaml"""


class _Probe(Parser):
    """A parser that reports what it cannot parse to :func:`parse_args` instead of printing it."""

    class Refused(Exception):
        pass

    def error(self, message: str):
        raise self.Refused(message)

    def exit(self, status: int = 0, message: str | None = None):
        raise self.Refused(message)

    def _print_message(self, message: str, file=None) -> None:  # --help, --version: the real parser prints
        pass


def build_parser(parser_class: type[argparse.ArgumentParser] = Parser) -> argparse.ArgumentParser:
    parser = parser_class(
        prog="wsnas",
        description="Weight-sharing neural architecture search, measured against ground truth.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wsnas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        configfile.add_config_options(p)
        p.set_defaults(_run=module.run, _parser=p)
    return parser


def _given(argv: list[str]) -> argparse.Namespace | None:
    """What the command line gives, and nothing else (no defaults; nothing required, since a
    --config file may give it), or None when the command line is refused, asks for --help or
    --version, or leaves arguments over: the real parser then says so."""
    probe = build_parser(_Probe)
    configfile.relax(probe)
    try:
        args, rest = probe.parse_known_args(argv)
    except _Probe.Refused:
        return None
    return None if rest else args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments ``wsnas ARGV`` runs with: the command's defaults, then its ``--config`` file,
    then the flags given; argparse's errors and the file's are one line and exit with status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    probe = _given(argv)
    if probe is None or not (getattr(probe, "config", None) or getattr(probe, "print_config", False)):
        args, rest = parser.parse_known_args(argv)
        if rest:  # reported by the sub-command's parser, so the line names the command
            args._parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return args
    command = configfile.subcommands(parser).choices[probe.command]
    parsers = configfile.chain(command, probe)
    try:
        from_file = configfile.read_config(probe.config, parsers) if getattr(probe, "config", None) else {}
        values = configfile.merge(parsers, from_file, configfile.given(probe, parsers))
    except WsnasError as exc:
        parsers[-1].error(str(exc))
    args = argparse.Namespace(command=probe.command, **values)
    for p in parsers[:-1]:
        sub = configfile.subcommands(p)
        setattr(args, sub.dest, getattr(probe, sub.dest))
    args.config = getattr(probe, "config", None)
    args.print_config = bool(getattr(probe, "print_config", False))
    args._run, args._parser = command.get_default("_run"), command
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parsers = configfile.chain(args._parser, args)
    options = configfile.effective(parsers, args)
    name = " ".join([args.command, *configfile.chosen_names(args._parser, args)])
    try:
        if args.print_config:
            sys.stdout.write(configfile.to_yaml(options))
            sys.stdout.flush()
            return 0
        tune_allocator()
        with recorded_command(name, options):
            status = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except WsnasError as exc:
        print(f"wsnas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except OSError as exc:
        if exc.errno not in FULL_DISK:
            raise
        what = f"cannot write {exc.filename!r}: " if exc.filename else ""
        if not exc.filename and not _writable(sys.stdout):  # e.g. wsnas spaces --list > /dev/full
            what = "cannot write the standard output: "
            _silence_stdout()
        reason = os.strerror(exc.errno)
        print(f"wsnas {args.command}: error: {what}{reason[:1].lower()}{reason[1:]}; free some space "
              "and rerun (finished results are kept)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"wsnas {args.command}: interrupted; finished results are kept, rerun to continue",
              file=sys.stderr)
        return 130


def _writable(stream) -> bool:
    """Whether ``stream`` takes a flush and an empty write (which /dev/full refuses too)."""
    try:
        stream.flush()
        fd = stream.fileno()
    except (AttributeError, ValueError):  # not a file (captured in a test): nothing to tell
        return True
    except OSError:
        return False
    try:
        os.write(fd, b"")
    except OSError:
        return False
    return True


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe
    again (https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # stdout is not a file (e.g. captured in a test)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
