"""Bad input is refused (issue 18): every command exits 2 with one line on stderr naming the value
and what is accepted, before any training starts, and writes nothing (the store's tables, the
files beside it and the run directories stay as they were).

The commands run in this process (``wsnas.cli.main``); argparse's errors raise ``SystemExit(2)``,
counted as exit status 2. A table of command lines covers each refusal; Hypothesis generates bad
architecture strings, ``--space-option KEY=VALUE`` items, seeds, thread counts and run ids. The
generated values are bad by construction (never valid by chance), so no example trains anything.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import gt_row
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsnas.cli import main
from wsnas.spaces.darts import DARTS_V2, format_genotype
from wsnas.spaces.darts import OPS as DARTS_OPS
from wsnas.spaces.nb201 import OPS as NB201_OPS
from wsnas.spaces.tiny64 import Tiny64Space
from wsnas.store import Store

SEED_MAX = 2**63 - 1
# a training command that got past its checks would train little: one epoch on 200 images
QUICK = ["--epochs", "1", "--no-progress", "--data-option", "limit=200"]
# Hypothesis: a few examples each (every one runs a command), no deadline (the machine may be busy)
FEW = settings(max_examples=12, deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def run(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of ``wsnas ARGV``; nothing is left captured for the next call."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's errors
        code = exc.code
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, *fragments: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert re.match(r"wsnas [a-z]+( [a-z]+)?: error: ", lines[0]), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(root: Path) -> dict:
    """Every file under ``root`` with its size, and every table of every store there, row by row
    (SQLite's transient -wal, -shm and -journal files aside)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.name.endswith(("-wal", "-shm", "-journal")):
            continue
        out[str(path.relative_to(root))] = "dir" if path.is_dir() else path.stat().st_size
        if path.suffix == ".db":
            with sqlite3.connect(path) as conn:
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in sorted(tables):
                    out[f"{path.name}:{table}"] = sorted(map(repr, conn.execute(f"SELECT * FROM {table}")))
            conn.close()
    return out


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory) -> Path:
    """A store with a ground-truth row and a run, made once and copied into each test's directory."""
    path = tmp_path_factory.mktemp("store") / "s.db"
    with Store(path) as store:
        store.add_groundtruth(gt_row("111", 0, 0, 0.5))
        store.ensure_run("kept", "supernet", {"strategy": "uniform"}, seed=0)
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch, seeded_store):
    """A working directory (default run directories land in it) holding the store, a file, a truth
    table of another space and truth tables that are wrong."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSNAS_STORE", raising=False)
    shutil.copyfile(seeded_store, tmp_path / "s.db")
    (tmp_path / "a-file").write_text("not a directory\n")
    nb201 = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    (tmp_path / "nb201.csv").write_text(f"arch,test_acc\n{nb201},0.9\n")
    (tmp_path / "mixed.csv").write_text("index,arch,test_acc\n0,111,0.91\n1,112,93.5\n2,113,92.0\n")
    (tmp_path / "disagree.csv").write_text("index,arch,test_acc\n0,111,0.91\n5,113,0.93\n")
    (tmp_path / "partial.csv").write_text("index,arch,test_acc\n0,111,0.91\n1,112,0.93\n")
    (tmp_path / "pred.csv").write_text("step,111,112,113\n1,0.5,0.6,0.7\n")
    for name, text in CONFIG_FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def refused(argv: list[str], root: Path, capsys, *fragments: str) -> str:
    before = snapshot(root)
    code, err = run(argv, capsys)
    line = assert_refused(code, err, *fragments)
    assert snapshot(root) == before, "the command wrote something"
    return line


STORE = ["--store", "s.db"]
# --config files with one mistake each (tests/commands/test_configfile.py has every kind of value)
CONFIG_FILES = {"unknown-key.yaml": "epochs: 1\nsed: 3\n", "bad-seed.yaml": "epochs: 1\nseed: abc\n",
                "bad-choice.yaml": "bn_mode: fancy\n", "bad-flag.yaml": "no_progress: 'yes'\n",
                "scalar-for-list.yaml": "data_option: limit=200\n", "broken.yaml": "epochs: [1\n",
                "a-list.yaml": "- epochs\n", "export-unknown.yaml": "table: runs\nouts: x.csv\n"}
# every command that trains, with what it needs to train little once past its checks
TRAINING_COMMANDS = {"supernet": [*STORE, *QUICK], "search": [*STORE, *QUICK], "groundtruth": [*STORE, *QUICK],
                     "interference": [*STORE, *QUICK], "insights": ["--quick", "--no-report"]}
HUGE_INDEX = "9" * 5000  # more digits than Python converts to an int (4,300)

# (argv, fragments the one line names); every item of issue 18 and the commands that share it
CASES = {
    # integers of more than 4,300 digits as architecture indices
    "huge-index-spaces": (["spaces", "--space", "tiny64", "--arch", HUGE_INDEX], ["(5000 characters)", "0..63"]),
    "huge-index-cost": (["cost", "--space", "nb201", "--arch", HUGE_INDEX], ["0..15624"]),
    "huge-index-groundtruth": (["groundtruth", "--space", "nb201", "--archs", HUGE_INDEX, *STORE], ["0..15624"]),
    # seeds out of range: one argparse type names the accepted range
    "first-seed": (["groundtruth", "--first-seed", "99999999999999999999999", *STORE],
                   ["--first-seed", "99999999999999999999999", f"0..{SEED_MAX}"]),
    "first-seed-plus-seeds": (["groundtruth", "--first-seed", str(SEED_MAX), "--seeds", "2", *STORE],
                              ["--first-seed", f"0..{SEED_MAX}"]),
    "seed": (["supernet", "--seed", "99999999999999999999999", *STORE], ["--seed", f"0..{SEED_MAX}"]),
    "order-seed": (["supernet", "--order-seed", "-1", *STORE], ["--order-seed", "'-1'", f"0..{SEED_MAX}"]),
    "sample-seed": (["groundtruth", "--sample", "2", "--sample-seed", "-1", *STORE], ["--sample-seed", "'-1'"]),
    "search-seed": (["search", "--seed", str(2**63), *STORE], ["--seed", f"0..{SEED_MAX}"]),
    "interference-seed": (["interference", "--seed", "-3", *STORE], ["--seed", f"0..{SEED_MAX}"]),
    "split-seed": (["groundtruth", "--split-seed", "-1", *STORE], ["--split-seed", f"0..{SEED_MAX}"]),
    "pt-seed": (["select", "--run", "kept", "--pt-seed", "-1", *STORE], ["--pt-seed", f"0..{SEED_MAX}"]),
    "seed-not-integer": (["interference", "--probe-seed", "1e3", *STORE], ["'1e3' is not an integer"]),
    "workers-0": (["groundtruth", "--executor", "processes", "--workers", "0", "--archs", "111", *STORE],
                  ["--workers", "'0'", "a positive integer"]),
    # --threads 0, every command that has it
    **{f"threads-{cmd}": ([cmd, *extra, "--threads", "0", *STORE], ["--threads", "'0'", "a positive integer"])
       for cmd, extra in (("groundtruth", []), ("supernet", []), ("search", []), ("select", ["--run", "kept"]),
                          ("insights", []), ("interference", []))},
    # a run directory that is an existing file
    "run-dir-supernet": (["supernet", "--run-dir", "a-file", *STORE, *QUICK], ["--run-dir 'a-file'", "a file"]),
    "run-dir-below-a-file": (["supernet", "--run-dir", "a-file/run", *STORE, *QUICK], ["lies in 'a-file'"]),
    "run-dir-search": (["search", "--run-dir", "a-file", *STORE, *QUICK], ["--run-dir 'a-file'"]),
    "run-dir-interference": (["interference", "--run-dir", "a-file", *STORE, *QUICK], ["--run-dir 'a-file'"]),
    "run-dir-select": (["select", "--run", "kept", "--run-dir", "a-file", *STORE], ["--run-dir 'a-file'"]),
    "run-dir-insights": (["insights", "--run-dir", "a-file", "--quick", "--no-report"], ["--run-dir 'a-file'"]),
    "study-dir": (["search", "--study", "--study-dir", "a-file", "--quick"], ["--study-dir 'a-file'"]),
    # widths with no upper bound: the parameters' memory is estimated before a network is built
    "channels-groundtruth": (["groundtruth", "--space-option", "channels=100000000", *STORE, *QUICK],
                             ["tiny64 with channels=100000000", "parameters", "GiB of memory"]),
    "channels-supernet": (["supernet", "--space-option", "channels=100000000", *STORE, *QUICK],
                          ["channels=100000000", "GiB of memory"]),
    "channels-cost": (["cost", "--space", "nb201", "--arch", "0", "--space-option", "channels=100000000"],
                      ["nb201 with channels=100000000"]),
    "depth-nb201": (["cost", "--space", "nb201", "--arch", "0", "--space-option", "cells_per_stage=1000000000"],
                    ["nb201 with cells_per_stage=1000000000"]),
    # --archs together with --sample
    "archs-and-sample-groundtruth": (["groundtruth", "--archs", "111", "--sample", "2", *STORE],
                                     ["--archs '111' and --sample 2", "one of them"]),
    "archs-and-sample-supernet": (["supernet", "--archs", "111,112", "--sample", "2", *STORE, *QUICK],
                                  ["--archs '111,112' and --sample 2"]),
    # options that do not fit the space or the data
    "recipe-on-tiny64": (["groundtruth", "--recipe", "darts-eval", *STORE, *QUICK],
                         ["--recipe darts-eval", "tiny64 networks have no auxiliary head"]),
    "cutout-larger-than-the-images": (["groundtruth", "--cutout", "9", *STORE, *QUICK],
                                      ["--cutout 9", "8x8 images of digits", "0..8"]),
    "auxiliary-weight-without-a-head": (["groundtruth", "--auxiliary-weight", "0.4", *STORE, *QUICK],
                                        ["--auxiliary-weight 0.4", "no auxiliary head"]),
    "auxiliary-weight-auxiliary-false": (["groundtruth", "--space", "darts", "--sample", "1", "--auxiliary-weight",
                                          "0.4", "--space-option", "auxiliary=false", *STORE, *QUICK],
                                         ["darts networks (auxiliary=false) have no auxiliary head"]),
    "drop-path-without-drop-path": (["groundtruth", "--space", "nb201", "--sample", "1", "--drop-path", "0.2",
                                     *STORE, *QUICK], ["--drop-path 0.2", "nb201 networks have no drop-path"]),
    "auxiliary-head-on-small-images": (["groundtruth", "--space", "darts", "--sample", "1", *STORE, *QUICK],
                                       ["need images of at least 32x32", "digits has 8x8"]),
    # path traversal in a run id
    **{f"run-id-{cmd}": ([cmd, "--run", "../../../tmp/x", *extra, *STORE],
                         ["'../../../tmp/x'", "names joined by '/'", "not '.' or '..'"])
       for cmd, extra in (("supernet", QUICK), ("search", QUICK), ("interference", QUICK), ("select", []))},
    "run-id-absolute": (["supernet", "--run", "/tmp/x", *STORE, *QUICK], ["'/tmp/x'", "leading or trailing '/'"]),
    "experiment-id": (["insights", "--experiment", "a/../../b", "--quick"], ["'a/../../b'"]),
    "dense-every-insights": (["insights", "--dense-every", "0", "--quick", "--no-report"],
                             ["--dense-every", "'0'", "a positive integer"]),
    "dense-every-supernet": (["supernet", "--dense-every", "0", *STORE, *QUICK],
                             ["--dense-every", "'0'", "a positive integer"]),
    # tiny64 names: three digits 1-4; an index has no leading zeros
    "tiny64-011-spaces": (["spaces", "--space", "tiny64", "--arch", "011"],
                          ["'011'", "bad op '0'", "0..63, without leading zeros"]),
    "tiny64-011-cost": (["cost", "--space", "tiny64", "--arch", "011"], ["'011'"]),
    "tiny64-011-groundtruth": (["groundtruth", "--archs", "111,011", *STORE], ["'011'"]),
    "tiny64-5-digits": (["spaces", "--space", "tiny64", "--arch", "11111"], ["'11111'", "3 digits 1-4"]),
    # a ground truth of another space, before any training (supernet, search, insights)
    "truth-space-supernet": (["supernet", "--space", "nb201", "--sample", "2", "--truth", "tiny64-cifar10",
                              *STORE, *QUICK], ["'tiny64-cifar10' is a table of the tiny64 space, not of nb201"]),
    "truth-csv-space-supernet": (["supernet", "--truth", "nb201.csv", *STORE, *QUICK],
                                 ["'nb201.csv' is a table of the nb201 space, not of tiny64"]),
    "truth-space-search": (["search", "--space", "nb201", "--truth", "tiny64-cifar10", *STORE, *QUICK],
                           ["not of nb201"]),
    "truth-space-insights": (["insights", "--truth", "nb201.csv", "--quick", "--no-report"],
                             ["'nb201.csv' is a table of the nb201 space, not of tiny64"]),
    "truth-store-missing": (["supernet", "--truth", "store", "--store", "none.db", *QUICK],
                            ["'none.db' does not exist yet, so it holds no ground truth"]),
    "truth-lacks-children": (["supernet", "--truth", "partial.csv", *STORE, *QUICK],
                             ["'partial.csv' lacks 62 of the 64 children", "'113'"]),
    "truth-disagree-supernet": (["supernet", "--truth", "disagree.csv", *STORE, *QUICK], ["disagree"]),
    # truth tables that mix fractions with percentages, or whose index and arch disagree
    "truth-mixed-metrics": (["metrics", "--pred", "pred.csv", "--truth", "mixed.csv"],
                            ["data row 1 has 0.91, a fraction", "data row 2 has 93.5, a percentage"]),
    "truth-mixed-supernet": (["supernet", "--truth", "mixed.csv", *STORE, *QUICK], ["a fraction"]),
    "truth-disagree-metrics": (["metrics", "--pred", "pred.csv", "--truth", "disagree.csv"],
                               ["data row 2: index 5 and arch '113' disagree", "index 2 of tiny64"]),
    # --config files: an unknown key or a value of the wrong type names the key; a file that is no YAML
    # mapping or cannot be read is one line too
    "config-unknown-key": (["supernet", "--config", "unknown-key.yaml", *STORE],
                           ["wsnas supernet: error: unknown key 'sed' in unknown-key.yaml; accepted: space,"]),
    "config-bad-seed": (["supernet", "--config", "bad-seed.yaml", *STORE, *QUICK],
                        ["key 'seed' in bad-seed.yaml", "'abc' is not an integer"]),
    "config-bad-choice": (["supernet", "--config", "bad-choice.yaml", *STORE, *QUICK],
                          ["key 'bn_mode' in bad-choice.yaml", "'fancy'", "'running'"]),
    "config-bad-flag": (["groundtruth", "--config", "bad-flag.yaml", *STORE, *QUICK],
                        ["key 'no_progress' in bad-flag.yaml", "true or false"]),
    "config-scalar-for-list": (["search", "--config", "scalar-for-list.yaml", *STORE],
                               ["key 'data_option' in scalar-for-list.yaml", "accepted: a list"]),
    "config-syntax": (["insights", "--config", "broken.yaml", "--quick"],
                      ["config file 'broken.yaml' is not valid YAML", "line 2"]),
    "config-a-list": (["interference", "--config", "a-list.yaml", *STORE], ["holds a list, not a mapping"]),
    "config-missing": (["evolve", "--config", "none.yaml", *STORE], ["cannot read config file 'none.yaml'"]),
    "config-store-export": (["store", *STORE, "export", "--config", "export-unknown.yaml"],
                            ["wsnas store export: error: unknown key 'outs'", "accepted: store, table, out,"]),
    "config-key-of-another-command": (["select", "--config", "bad-choice.yaml", *STORE], ["unknown key 'bn_mode'"]),
    "config-missing-run": (["store", *STORE, "config", "--print-config"], ["required: RUN_ID"]),
    "store-config-unknown-run": (["store", *STORE, "config", "ghost"], ["run 'ghost' is not in the results store",
                                                                        "kept"]),
    "store-config-no-command": (["store", *STORE, "config", "kept"], ["run 'kept' (supernet) has no recorded"]),
    # --tensorboard DIR where a file is, every training command
    **{f"tensorboard-file-{cmd}": ([cmd, "--tensorboard", "a-file/tb", *extra], ["--tensorboard 'a-file/tb'",
                                                                              "lies in 'a-file'"])
       for cmd, extra in TRAINING_COMMANDS.items()},
    # argparse's own errors are one line too
    "unknown-option": (["supernet", "--no-such-option", *STORE], ["wsnas supernet: error: unrecognized arguments"]),
    "not-an-int": (["groundtruth", "--seeds", "two", *STORE], ["--seeds", "'two'"]),
}


@pytest.mark.parametrize("argv, fragments", CASES.values(), ids=CASES.keys())
def test_refused_in_one_line_before_any_work(workdir, capsys, argv, fragments):
    refused(argv, workdir, capsys, *fragments)


@pytest.mark.parametrize("command", TRAINING_COMMANDS)
def test_tensorboard_without_its_package_is_refused_before_any_work(workdir, capsys, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as when the package is not installed
    refused([command, "--tensorboard", "tb", *TRAINING_COMMANDS[command]], workdir, capsys,
            "--tensorboard 'tb' needs the tensorboard package; install it with `pip install 'wsnas[tensorboard]'`")
    assert not (workdir / "tb").exists()


def test_a_store_in_a_missing_directory_is_refused(workdir, capsys, monkeypatch):
    """$WSNAS_STORE (or --store) in a directory that does not exist: no directories are made."""
    monkeypatch.setenv("WSNAS_STORE", str(workdir / "no" / "such" / "dir" / "w.db"))
    line = refused(["groundtruth", *QUICK], workdir, capsys, "does not exist", "--store (or $WSNAS_STORE)")
    assert str(workdir / "no" / "such" / "dir") in line
    refused(["supernet", "--store", "gone/s.db", *QUICK], workdir, capsys, "'gone/s.db'", "'gone' does not exist")
    refused(["insights", "--store", "gone/s.db", "--quick"], workdir, capsys, "'gone' does not exist")
    # the insights study's own store, RUN_DIR/results.db, is made with its run directory by design
    assert not (workdir / "no").exists() and not (workdir / "gone").exists()


def test_a_run_id_is_resumed_only_with_the_same_children(workdir, capsys):
    """The children a supernet evaluates are part of its run's identity: a reused run id with other
    --archs is refused before it trains, and the first run's rows stay as they were."""
    small = ["--space-option", "channels=4", "--space-option", "stem_channels=8", "--batch-size", "256",
             "--threads", "1", "--run", "same", *STORE, *QUICK]
    code, err = run(["supernet", "--archs", "111,444", *small], capsys)
    assert code == 0, err
    line = refused(["supernet", "--archs", "111,222", *small], workdir, capsys, "run 'same' already exists")
    assert "archs" in line and "[0, 63]" in line and "[0, 21]" in line


# ---------------------------------------------------------------------------------------------------
# generated bad values

TINY64_OPS = Tiny64Space().ops + ("dil_conv_3x3",)


def tiny64_valid(text: str) -> bool:
    """An independent statement of tiny64's names and indices (the module docstring's rule)."""
    t = text.strip()
    if re.fullmatch(r"[1-4]{3}", t) or re.fullmatch(r"0|[1-9][0-9]?", t) and int(t) < 64:
        return True
    parts = [p.strip() for p in t.split(",")]
    return len(parts) == 3 and all(p in TINY64_OPS for p in parts)


tiny64_bad = st.one_of(
    st.from_regex(r"\s*[0-9]{1,6}\s*", fullmatch=True),  # digit strings: 011, 5, 445, 64, 0063, ...
    st.text(max_size=12),
    st.integers(4301, 6000).map(lambda n: "9" * n),  # past Python's int-str conversion limit
    st.lists(st.sampled_from([*TINY64_OPS, "none", "conv", ""]), min_size=1, max_size=4).map(",".join),
).filter(lambda s: not tiny64_valid(s))

NB201_EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


@st.composite
def nb201_bad(draw) -> str:
    """An NB201 string with at least one bad op or input, or an index out of range or with a leading zero."""
    kind = draw(st.sampled_from(["string", "index"]))
    if kind == "index":
        return draw(st.one_of(st.integers(15625, 10**30).map(str), st.integers(0, 15624).map(lambda i: f"0{i}"),
                              st.integers(4301, 5000).map(lambda n: "1" * n)))
    ops = draw(st.lists(st.sampled_from(NB201_OPS), min_size=6, max_size=6))
    srcs = [str(i) for _, i in NB201_EDGES]
    bad = draw(st.integers(0, 5))
    if draw(st.booleans()):
        ops[bad] = draw(st.sampled_from(["conv", "nor_conv_5x5", "", "None", "skip", "avg_pool_3x3 x"]))
    else:
        srcs[bad] = draw(st.sampled_from(["", "x", "9", "-1", "²", "1" * 4400])
                         .filter(lambda s: s.lstrip("0") != srcs[bad].lstrip("0")))
    cells = [[], [], []]
    for (node, _), op, src in zip(NB201_EDGES, ops, srcs):
        cells[node - 1].append(f"{op}~{src}")
    return "+".join("|" + "|".join(c) + "|" for c in cells)


@st.composite
def darts_bad(draw) -> str:
    """The published DARTS-V2 genotype with one op or input index broken, or text that is no genotype."""
    text = format_genotype(DARTS_V2)
    kind = draw(st.sampled_from(["op", "input", "text"]))
    if kind == "op":
        op = draw(st.sampled_from(DARTS_OPS))
        return text.replace(f"'{op}'", f"'{op}x'", 1) if f"'{op}'" in text else text.replace("'skip_connect'", "''", 1)
    if kind == "input":
        return text.replace(", 0)", draw(st.sampled_from([", 9)", ", -1)", ", 'a')", ", " + "7" * 5000 + ")"])), 1)
    return draw(st.text(max_size=40).filter(lambda s: not re.fullmatch(r"\s*[0-9]+\s*", s)))


@FEW
@given(command=st.sampled_from(["spaces", "cost"]),
       space_arch=st.one_of(st.tuples(st.just("tiny64"), tiny64_bad), st.tuples(st.just("nb201"), nb201_bad()),
                            st.tuples(st.just("darts"), darts_bad())))
def test_a_bad_architecture_is_refused(workdir, capsys, command, space_arch):
    space, arch = space_arch
    refused([command, "--space", space, f"--arch={arch}"], workdir, capsys)


# every option of every space, with values bad by construction
WIDTHS = {"tiny64": ("channels", "stem_channels", "cells"), "nb201": ("channels", "cells_per_stage"),
          "darts": ("channels", "layers", "search_channels", "search_layers")}
FRACTIONS = {"tiny64": ("bn_momentum",), "nb201": ("bn_momentum",), "darts": ()}
BOOLS = {"tiny64": (), "nb201": ("affine", "track_running_stats"), "darts": ("auxiliary",)}
CHOICES = {"tiny64": {"dil": ("5x5", "3x3"), "combine": ("concat", "sum")}, "nb201": {}, "darts": {}}
NUMBER_LIKE = re.compile(r"\s*[-+]?[0-9.eE_]*\s*|\s*(?i:[-+]?(nan|inf|infinity))\s*")
not_a_number = st.text(max_size=8).filter(lambda s: not NUMBER_LIKE.fullmatch(s))
bad_width = st.one_of(
    st.integers(max_value=0).map(str),  # not positive
    st.integers(10**9, 10**40).map(str),  # a network no machine holds: refused by its memory estimate
    st.floats().map(repr),  # a float, even 2.0, is no width
    st.sampled_from(["true", "false", "", "1.0", "2.", "1e3"]),
    not_a_number,
)
bad_fraction = st.one_of(st.floats(max_value=0.0).map(repr), st.floats(min_value=1.0, exclude_min=True).map(repr),
                         st.sampled_from(["nan", "inf", "-inf", "true", ""]), not_a_number)
bad_bool = st.one_of(st.integers().filter(lambda i: i not in (0, 1)).map(str),
                     st.sampled_from(["yes", "no", "", "2.5"]),
                     not_a_number.filter(lambda s: s.strip().lower() not in ("true", "false")))


@st.composite
def space_option_bad(draw) -> tuple[str, str]:
    space = draw(st.sampled_from(sorted(WIDTHS)))
    kinds = ["width", "unknown", "no-equals"] + (["fraction"] if FRACTIONS[space] else []) + \
        (["bool"] if BOOLS[space] else []) + (["choice"] if CHOICES[space] else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "no-equals":
        return space, draw(st.text(max_size=12).filter(lambda s: "=" not in s))
    if kind == "unknown":
        known = {*WIDTHS[space], *FRACTIONS[space], *BOOLS[space], *CHOICES[space]}
        key = draw(st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda k: k not in known))
        return space, f"{key}={draw(st.text(max_size=6))}"
    if kind == "width":
        return space, f"{draw(st.sampled_from(WIDTHS[space]))}={draw(bad_width)}"
    if kind == "fraction":
        return space, f"{draw(st.sampled_from(FRACTIONS[space]))}={draw(bad_fraction)}"
    if kind == "bool":
        return space, f"{draw(st.sampled_from(BOOLS[space]))}={draw(bad_bool)}"
    key = draw(st.sampled_from(sorted(CHOICES[space])))
    return space, f"{key}={draw(st.text(max_size=6).filter(lambda v: v.strip() not in CHOICES[space][key]))}"


@FEW
@given(space_option=space_option_bad())
def test_a_bad_space_option_is_refused(workdir, capsys, space_option):
    space, option = space_option
    refused(["spaces", "--space", space, f"--space-option={option}"], workdir, capsys)


def seed_valid(text: str) -> bool:
    return bool(re.fullmatch(r"\s*[+-]?[0-9]+\s*", text)) and 0 <= int(text) <= SEED_MAX


@FEW
@given(flag=st.sampled_from(["--seed", "--order-seed", "--sample-seed", "--split-seed"]),
       seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=SEED_MAX + 1)).map(str) |
       st.text(max_size=8).filter(lambda s: not seed_valid(s)))
def test_a_bad_seed_is_refused(workdir, capsys, flag, seed):
    refused(["supernet", f"{flag}={seed}", *STORE, *QUICK], workdir, capsys)


@FEW
@given(command=st.sampled_from(["groundtruth", "supernet", "search", "insights", "interference"]),
       threads=st.integers(max_value=0).map(str))
def test_a_bad_thread_count_is_refused(workdir, capsys, command, threads):
    refused([command, f"--threads={threads}", *QUICK], workdir, capsys, "a positive integer")


run_id_ok = re.compile(r"[A-Za-z0-9_.:=@-]+")


@FEW
@given(run_id=st.one_of(
    st.text(max_size=20),
    st.lists(st.sampled_from(["..", ".", "", "a", "x_1", "../b", "c d", "é"]), min_size=1, max_size=4).map("/".join),
).filter(lambda r: not all(run_id_ok.fullmatch(p) and p not in (".", "..") for p in r.split("/"))))
def test_a_run_id_that_is_not_a_name_is_refused(workdir, capsys, run_id):
    refused(["select", f"--run={run_id}", *STORE], workdir, capsys, "names joined by '/'")
