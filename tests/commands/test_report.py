"""Tests of the ``wsnas report`` command through ``wsnas.cli.main``.

The study here is the smallest one the report can describe: one ground-truth seed (so no
ceiling), a single supernet instance (so no S-Tau), no dense evaluation and no fine-tuning;
the report must still be written, with dashes where numbers are missing.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import IMG_TAG, build_tiny_study

from wsnas import cli
from wsnas.groundtruth.truth import load_truth
from wsnas.metrics import gt_tau, top_n_rank
from wsnas.runs import open_run
from wsnas.store import Store


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


# -- every kind of run directory ---------------------------------------------------------------------------------

RUNTIME = ["--no-progress", "--threads", "1"]
TINY = ["--space", "tiny64", "--space-option", "channels=4", "--space-option", "stem_channels=8", "--space-option",
        "cells=1"]
SEARCH = ["--population", "6", "--generations", "2", "--parents", "2", "--mutations", "2", "--crossovers", "2",
          "--recal-batches", "1", *RUNTIME]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-epoch supernet run of 12 tiny64 children against a built-in ground truth, one constrained
    two-objective search of it, and a validation of evolution against random search."""
    root = tmp_path_factory.mktemp("runs")
    db = str(root / "r.db")
    out = {}
    for name, args in (
            ("supernet", ["supernet", *TINY, "--sample", "12", "--data-option", "limit=200", "--epochs", "2",
                          "--batch-size", "64", "--dense-last", "3", "--truth", "tiny64-cifar10", "--run", "sn",
                          "--run-dir", str(root / "sn"), "--store", db, *RUNTIME]),
            ("evolve", ["evolve", "--run", "sn", "--run-dir", str(root / "sn"), "--store", db, *SEARCH,
                        "--objectives", "acc,params", "--max-params", "1150", "--out-dir", str(root / "search")]),
            ("validation", ["evolve", "--run", "sn", "--run-dir", str(root / "sn"), "--store", db, *SEARCH,
                            "--validate-seeds", "2", "--truth", "tiny64-cifar10", "--search-run", "v",
                            "--out-dir", str(root / "validation")])):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert cli.main(args) == 0, name
        out[name] = buffer.getvalue()

    class Runs:
        path = root
        store = db
        printed = out

    return Runs


def _report(wsnas_main, capsys, run_dir, *extra) -> tuple[str, str, str]:
    """``wsnas report RUN_DIR`` (must succeed): its output, report.md and report.html."""
    assert wsnas_main(["report", str(run_dir), *extra]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith(f"report: {run_dir / 'report.html'} and {run_dir / 'report.md'}")
    return out, (run_dir / "report.md").read_text(encoding="utf-8"), (run_dir / "report.html").read_text(
        encoding="utf-8")


def _table(md: str, title: str) -> list[list[str]]:
    """The rows (cells, unescaped) of the Markdown table under ``## title``."""
    section = md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip().replace("\\", "") for c in line.strip("|").split(" | ")] for line in lines[2:]]


def test_a_supernet_run_directory(wsnas_main, runs, capsys, tmp_path):
    run_dir = runs.path / "sn"
    assert json.loads((run_dir / "experiment.json").read_text())["truth"] == "tiny64-cifar10"
    out, md, page = _report(wsnas_main, capsys, run_dir)
    with Store(runs.store, read_only=True) as store:
        labels, archs, matrix = store.prediction_matrix("sn")
    final = matrix[labels.index("epoch:2")]
    truth = load_truth("tiny64-cifar10")
    gt = truth.accuracy[[truth.position(a) for a in archs]]
    # the numbers `wsnas supernet` printed, from the store
    assert f"GT-Tau {gt_tau(final, gt):.3f}, Spearman" in out
    assert f"T1R {top_n_rank(final, gt, 1)}, T3R {top_n_rank(final, gt, 3)}" in out
    assert f"GT-Tau {gt_tau(final, gt):.4f}" in runs.printed["supernet"]
    ranking = _table(md, "Children ranked by their shared-weight accuracy")
    assert len(ranking) == 10 and [r[0] for r in ranking] == [str(k) for k in range(1, 11)]
    best = sorted(range(len(archs)), key=lambda j: -final[j])
    assert [r[1] for r in ranking] == [archs[j] for j in best[:10]]
    assert ranking[0][2] == f"{100 * final[best[0]]:.2f}"
    position = truth.position(ranking[0][1])
    assert ranking[0][3:] == [f"{100 * truth.accuracy[position]:.2f}", str(int(truth.ranks()[position]))]
    epochs = _table(md, "Training per epoch")
    assert [r[0] for r in epochs] == ["1", "2"] and len(epochs[0]) == 6  # with GT-Tau per epoch
    assert page.count(IMG_TAG) == 1 and 'data-figure="figures/training.png"' in page and "http" not in page.lower()
    # the same run reported elsewhere, named by --store and --run, without a ground truth
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out, md, _ = _report(wsnas_main, capsys, elsewhere, "--store", runs.store, "--run", "sn")
    assert "GT-Tau" not in out and "none given" in md and len(_table(md, "Training per epoch")[0]) == 5


def test_an_evolve_search_directory(wsnas_main, runs, capsys):
    run_dir = runs.path / "search"
    out, md, page = _report(wsnas_main, capsys, run_dir)
    with Store(runs.store, read_only=True) as store:
        candidates = store.candidates("evolve/sn/evolution/0")
        metrics = store.run_metrics("evolve/sn/evolution/0")
    front = sorted((c for c in candidates if c["on_front"]), key=lambda c: (-c["score"], c["position"]))
    rows = _table(md, "Pareto front")
    assert [r[0] for r in rows] == [c["arch"] for c in front]
    assert [r[2] for r in rows] == [f"{c['params']:,}" for c in front]
    redraws = int(sum(m["value"] for m in metrics if m["name"] == "redraws"))
    assert f"{len(candidates)} candidates evaluated; {redraws} draws broke a constraint" in out
    assert f"{redraws} draws broke a constraint" in runs.printed["evolve"]
    assert [r[3] for r in _table(md, "Per generation")] == [
        str(int(m["value"])) for m in metrics if m["name"] == "redraws"]
    assert "**constraints:** max params 1150" in md.replace("\\", "")
    assert f"Best: {front[0]['arch']}, {100 * front[0]['score']:.2f}%" in out
    assert page.count(IMG_TAG) == 1 and 'data-figure="candidates.png"' in page


def test_a_validation_directory(wsnas_main, runs, capsys, tmp_path):
    run_dir = runs.path / "validation"
    table = (run_dir / "validation.md").read_text()
    out, md, page = _report(wsnas_main, capsys, run_dir)
    assert (run_dir / "validation.md").read_text() == table  # rewritten the same, from the store
    printed = [line.replace("\\", "") for line in table.splitlines() if line.startswith("| ")]
    assert printed[1:] == [line.replace("\\", "") for line in md.splitlines() if line.startswith("| ")][1:]
    assert "Exhaustive: the supernet's top-1 over all 64 architectures" in out
    assert page.count(IMG_TAG) == 1 and 'data-figure="validation.png"' in page
    # without a recorded ground truth, a validation needs --truth
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "experiment.json").write_text(json.dumps({"experiment": "v", "store": runs.store}))
    assert wsnas_main(["report", str(bare)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give --truth" in err
    out, md, _ = _report(wsnas_main, capsys, bare, "--truth", "tiny64-cifar10")
    assert printed[1:] == [line.replace("\\", "") for line in md.splitlines() if line.startswith("| ")][1:]


def test_a_run_of_another_kind_or_none_is_one_line(wsnas_main, tmp_path, capsys):
    with Store(tmp_path / "results.db") as store:
        open_run(store, "s", "search", {"x": 1})
    assert wsnas_main(["report", str(tmp_path), "--run", "s"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run 's' of" in err and "is a search run; `wsnas report` describes" in err
    assert wsnas_main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no insights experiment 'insights'" in err
    assert "accepted: a directory whose experiment.json names an insights study" in err
    assert "a supernet run (wsnas supernet)" in err and "(wsnas evolve --validate-seeds)" in err


def test_user_templates_replace_the_shipped_ones(wsnas_main, run_dir, tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    (study / "results.db").write_bytes((run_dir / "results.db").read_bytes())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "insights.md").write_text('{% extends "wsnas/insights.md" %}{% block findings %}\n\nMY FINDINGS: '
                                      "{{ report.findings|length }}\n{% endblock %}")
    _, md, page = _report(wsnas_main, capsys, study, "--template", str(mine))
    assert "MY FINDINGS: " in md and "## Findings on this data" not in md and "## Tables 1 and 2" in md
    assert "Findings on this data" in page  # no insights.html in the folder: the shipped one
    # a broken template: one line naming it, before anything is written
    (mine / "insights.html").write_text("<h1>{{ report.title }</h1>")
    for name in ("report.md", "report.html"):
        (study / name).unlink()
    shutil.rmtree(study / "figures")
    assert wsnas_main(["report", str(study), "--template", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"template {mine / 'insights.html'}, line 1: " in err
    assert not (study / "report.md").exists() and not (study / "figures").exists()
    assert wsnas_main(["report", str(study), "--template", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--template" in err and "is not a directory" in err
