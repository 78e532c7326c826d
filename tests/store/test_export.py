"""Tests of the store's CSV exports."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import CONFIG, HASH, gt_row, pred, read_text

import wsnas.store.schema as store_schema
from wsnas.core.errors import WsnasError


def test_export_csv(store, tmp_path):
    store.add_groundtruth_many([gt_row("112", 1, 0, 0.75), gt_row("111", 0, 0, 0.5)])
    out = tmp_path / "out" / "gt.csv"
    assert store.export_csv("groundtruth", out) == 2
    with open(out, newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == list(store_schema.GT_COLUMNS)
    first = dict(zip(lines[0], lines[1], strict=True))
    assert first["arch"] == "112" and first["arch_index"] == "1" and first["test_acc"] == "0.75"
    assert first["train_acc"] == "" and first["config_hash"] == HASH
    assert json.loads(first["config_json"]) == CONFIG

    store.ensure_run("r1", "supernet", {"lr": 0.1})
    store.ensure_run("r2", "supernet", {"lr": 0.2})
    store.add_predictions("r1", [pred("epoch:1", "111", 0, 0.5)])
    store.add_predictions("r2", [pred("epoch:1", "111", 0, 0.25), pred("epoch:1", "112", 1, 0.5)])
    assert store.export_csv("predictions", tmp_path / "p.csv") == 3
    assert store.export_csv("predictions", tmp_path / "p2.csv", run_id="r2") == 2
    assert store.export_csv("runs", tmp_path / "runs.csv", run_id="r1") == 1
    header = read_text(tmp_path / "p2.csv").splitlines()[0]
    assert header == "run_id,checkpoint,epoch,step,arch,arch_index,accuracy,loss,created_at"

    with pytest.raises(WsnasError, match="unknown table 'results'.*runs, groundtruth, predictions"):
        store.export_csv("results", tmp_path / "x.csv")
    with pytest.raises(WsnasError, match="'groundtruth' has no run_id column"):
        store.export_csv("groundtruth", tmp_path / "x.csv", run_id="r1")
    with pytest.raises(WsnasError, match="run 'r3' is not in the results store"):
        store.export_csv("predictions", tmp_path / "x.csv", run_id="r3")
    assert not (tmp_path / "x.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_export_prediction_matrix_csv_wide_format(store, tmp_path):
    store.ensure_run("r", "supernet", {})
    store.add_predictions("r", [pred("epoch:2", "b", 5, 0.5), pred("epoch:2", "a", 2, 0.25)])
    store.add_predictions("r", [pred("epoch:10", "a", 2, 0.75)])
    out = tmp_path / "matrix.csv"
    assert store.export_prediction_matrix_csv("r", out) == 2
    assert read_text(out) == ",2,5\nepoch:2,0.25,0.5\nepoch:10,0.75,\n"
