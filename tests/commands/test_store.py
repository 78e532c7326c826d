"""Tests of the ``wsnas store`` command: info and export."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml
from conftest import HASH, gt_row, pred, read_text

import wsnas.store.schema as store_schema
from wsnas import cli
from wsnas.store import SCHEMA_VERSION, Store


@pytest.fixture
def wsnas_main(monkeypatch):
    """``wsnas.cli.main`` with only the store command registered, independent of the others."""
    monkeypatch.setattr(cli, "COMMANDS", {"store": cli.COMMANDS["store"]})
    return cli.main


def filled_store(path: Path) -> None:
    with Store(path) as s:
        s.add_groundtruth_many([gt_row("111", 0, 0, 0.5), gt_row("112", 1, 0, 0.75)])
        s.ensure_run("uniform-s0", "supernet", {"strategy": "uniform"}, seed=0)
        s.add_predictions("uniform-s0", [pred("epoch:1", "111", 0, 0.5),
                                         pred("epoch:1", "112", 1, 0.25)])
        s.set_run_status("uniform-s0", "done")


def test_cli_info(tmp_path, wsnas_main, capsys):
    path = tmp_path / "study.db"
    filled_store(path)
    assert wsnas_main(["store", "--store", str(path), "info"]) == 0
    out = capsys.readouterr().out
    assert f"store: {path.resolve()}" in out
    assert f"schema version: {SCHEMA_VERSION}" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["runs", "1"] in lines and ["groundtruth", "2"] in lines
    assert ["predictions", "2"] in lines
    assert ["tiny64", "digits", HASH, "3", "2", "1"] in lines
    run_line = next(line for line in lines if line and line[0] == "uniform-s0")
    assert run_line[1:3] == ["supernet", "done"]


def test_cli_info_of_an_empty_store(tmp_path, wsnas_main, capsys):
    path = tmp_path / "new.db"
    Store(path).close()
    assert wsnas_main(["store", "--store", str(path), "info"]) == 0
    assert "runs: none" in capsys.readouterr().out


def test_cli_export(tmp_path, wsnas_main, capsys):
    path = tmp_path / "study.db"
    filled_store(path)
    out = tmp_path / "gt.csv"
    assert wsnas_main(["store", "--store", str(path), "export", "groundtruth",
                       "--out", str(out)]) == 0
    assert "wrote 2 rows of groundtruth" in capsys.readouterr().out
    assert read_text(out).splitlines()[0] == ",".join(store_schema.GT_COLUMNS)

    wide = tmp_path / "wide.csv"
    assert wsnas_main(["store", "--store", str(path), "export", "predictions",
                       "--run", "uniform-s0", "--wide", "--out", str(wide)]) == 0
    assert "wrote 1 checkpoint of run 'uniform-s0'" in capsys.readouterr().out
    assert read_text(wide) == ",0,1\nepoch:1,0.5,0.25\n"

    assert wsnas_main(["store", "--store", str(path), "export", "groundtruth", "--wide",
                       "--out", str(wide)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wsnas store: error: --wide") and err.count("\n") == 1

    assert wsnas_main(["store", "--store", str(path), "export", "results",
                       "--out", str(wide)]) == 2
    assert "unknown table 'results'" in capsys.readouterr().err


def test_cli_missing_store_is_a_one_line_error(tmp_path, wsnas_main, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSNAS_STORE", raising=False)
    for argv in (["store", "info"], ["store", "export", "runs", "--out", "runs.csv"]):
        assert wsnas_main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert "wsnas store: error: results store 'wsnas.db' does not exist" in captured.err
    assert not (tmp_path / "wsnas.db").exists() and not (tmp_path / "runs.csv").exists()


def test_help_describes_the_command():
    from wsnas.commands import store as command

    assert "wsnas store export predictions --run" in command.__doc__


def test_cli_info_of_an_empty_file_writes_nothing(tmp_path, wsnas_main, capsys):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    assert wsnas_main(["store", "--store", str(path), "info"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty.db' is empty" in err
    assert path.read_bytes() == b"" and [p.name for p in tmp_path.iterdir()] == ["empty.db"]


def test_cli_info_of_another_programs_database_leaves_its_journal(tmp_path, wsnas_main, capsys):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    conn.close()
    before = path.read_bytes()
    assert wsnas_main(["store", "--store", str(path), "info"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a wsnas results store" in err
    assert path.read_bytes() == before  # not switched to WAL before being refused


@pytest.mark.parametrize("damage", ["garbage", "dropped-table"])
def test_cli_damaged_store_is_one_line_naming_it(tmp_path, wsnas_main, capsys, damage):
    path = tmp_path / "study.db"
    with Store(path) as s:
        s.ensure_run("r", "supernet", {})
        s.add_predictions("r", [pred(f"step:{i}", "111", 0, 0.5) for i in range(2000)])
    if damage == "garbage":
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.seek(size // 3)
            handle.write(b"\x00garbage" * (size // 24))
        found = "database disk image is malformed"
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE runs")
        conn.close()
        found = "table 'runs' is missing"
    for argv in (["info"], ["export", "predictions", "--out", str(tmp_path / "p.csv")]):
        assert wsnas_main(["store", "--store", str(path), *argv]) == 2
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
        assert captured.err.startswith("wsnas store: error: results store")
        assert str(path) in captured.err and found in captured.err


def test_cli_config_prints_the_command_of_a_run(tmp_path, wsnas_main, capsys):
    path = tmp_path / "study.db"
    filled_store(path)  # its run was made through the API: no command
    options = {"seed": 3, "space_option": ["channels=4"], "truth": None, "lr": 0.05, "no_progress": True}
    with Store(path) as s:
        s.ensure_run("made", "supernet", {"x": 1}, command={"command": "supernet", "options": options})
    assert wsnas_main(["store", "--store", str(path), "config", "made"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# run made (supernet, created), made by `wsnas supernet`")
    assert "#   wsnas supernet --config FILE\n" in out
    assert yaml.safe_load(out) == options
    assert [line.split(":")[0] for line in out.splitlines() if not line.startswith(("#", "-"))] == list(options)

    assert wsnas_main(["store", "--store", str(path), "config", "uniform-s0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wsnas store: error: run 'uniform-s0' (supernet) has no recorded "
                                                   "command")
    assert wsnas_main(["store", "--store", str(path), "config", "ghost"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run 'ghost' is not in the results store" in err and "uniform-s0, made" in err


def test_a_supernet_run_is_made_again_from_its_stored_configuration(tmp_path, capsys, monkeypatch):
    """wsnas store config RUN > c.yaml; wsnas supernet --config c.yaml finds the finished run in its store,
    and with another store and run directory trains it again to the same predictions, bit for bit."""
    monkeypatch.chdir(tmp_path)
    first = ["supernet", "--archs", "111,234,444", "--epochs", "1", "--data-option", "limit=200", "--seed", "2",
             "--space-option", "channels=4", "--space-option", "stem_channels=8", "--batch-size", "64",
             "--threads", "1", "--no-progress", "--store", "a.db", "--run-dir", "run-a"]
    assert cli.main(first) == 0
    capsys.readouterr()
    assert cli.main(["store", "--store", "a.db", "config", "supernet/uniform/2"]) == 0
    Path("c.yaml").write_text(capsys.readouterr().out)

    assert cli.main(["supernet", "--config", "c.yaml"]) == 0  # the same store and run directory: found, finished
    assert "run supernet/uniform/2: 1 epochs (resumed)" in capsys.readouterr().out
    assert cli.main(["supernet", "--config", "c.yaml", "--store", "b.db", "--run-dir", "run-b"]) == 0
    assert "(resumed)" not in capsys.readouterr().out

    def stored(db: str):
        with Store(db, read_only=True) as s:
            run = s.get_run("supernet/uniform/2")
            rows = [(p["checkpoint"], p["arch"], p["accuracy"], p["loss"]) for p in s.predictions(run["run_id"])]
            return run, rows

    (run_a, preds_a), (run_b, preds_b) = stored("a.db"), stored("b.db")
    assert len(preds_a) == 3 and preds_a == preds_b
    assert run_a["config"] == run_b["config"] and run_b["status"] == "done"
    assert run_a["command"]["options"]["space_option"] == ["channels=4", "stem_channels=8"]
    assert {k: v for k, v in run_b["command"]["options"].items() if k not in ("store", "run_dir")} == \
        {k: v for k, v in run_a["command"]["options"].items() if k not in ("store", "run_dir")}
