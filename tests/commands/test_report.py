"""Tests of the ``wsnas report`` command through ``wsnas.cli.main``.

The study here is the smallest one the report can describe: one ground-truth seed (so no
ceiling), a single supernet instance (so no S-Tau), no dense evaluation and no fine-tuning;
the report must still be written, with dashes where numbers are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import IMG_TAG, build_tiny_study

from wsnas import cli


@pytest.fixture
def wsnas_main(monkeypatch):
    """``cli.main`` with only the report command registered (as in test_metrics_cli)."""
    monkeypatch.setattr(cli, "COMMANDS", {"report": cli.COMMANDS["report"]})
    return cli.main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("study")
    build_tiny_study(run_dir, gt_seeds=1, instances={"seeds": 1}, dense_last=0, finetune_steps=0)
    return run_dir


def test_report_writes_the_files(wsnas_main, run_dir, capsys):
    assert json.loads((run_dir / "experiment.json").read_text())["experiment"] == "insights"
    assert wsnas_main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"report: {run_dir / 'report.html'} and {run_dir / 'report.md'}")
    assert (run_dir / "report.html").is_file() and (run_dir / "report.md").is_file()
    drawn = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    assert drawn == ["gt_tau_epochs.png", "scatter.png"]  # nothing dense, no fine-tuning
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.count(IMG_TAG) == 2 and "http" not in page.lower()
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "| different seeds | 1 | – (paper 0.5415) |" in md
    assert "| ground truth vs itself (independent trainings) | – | – (paper 0.712) |" in md
    assert "Not checked on this data" in md


def test_report_finds_the_store_when_the_run_directory_moved(wsnas_main, run_dir, tmp_path,
                                                             capsys):
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "results.db").write_bytes((run_dir / "results.db").read_bytes())
    (moved / "experiment.json").write_text(json.dumps(
        {"experiment": "insights", "store": str(tmp_path / "gone" / "results.db")}))
    assert wsnas_main(["report", str(moved)]) == 0
    assert (moved / "report.md").is_file()
    capsys.readouterr()


def test_missing_run_directory_is_a_one_line_error(wsnas_main, tmp_path, capsys):
    assert wsnas_main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wsnas report: error: ")
    assert "does not exist" in err


def test_unknown_experiment_is_a_one_line_error(wsnas_main, run_dir, capsys):
    assert wsnas_main(["report", str(run_dir), "--experiment", "other"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no insights experiment 'other'" in err


def test_missing_store_is_a_one_line_error(wsnas_main, tmp_path, capsys):
    assert wsnas_main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wsnas report: error: ")
    assert not (tmp_path / "results.db").exists()  # a read-only command creates nothing


def test_unreadable_experiment_json_is_a_one_line_error(wsnas_main, tmp_path, capsys):
    (tmp_path / "experiment.json").write_text("{not json")
    assert wsnas_main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "experiment.json" in err
