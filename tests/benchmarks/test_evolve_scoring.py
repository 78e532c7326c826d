"""benchmarks/evolve_scoring.py on tiny sizes: every (BN mode, way of scoring) side by side, the
same scores as one at a time, and the device's Markdown section rewritten with the notes kept."""

from __future__ import annotations

import json

import pytest
from conftest import BENCHMARKS as BENCH
from conftest import import_scripts


@pytest.fixture(scope="module")
def bench():
    return import_scripts([BENCH], "evolve_scoring")


def test_every_setting_is_measured_with_the_scores_of_one_at_a_time(bench, tmp_path, capsys):
    md = tmp_path / "scoring.md"
    md.write_text(bench.MD_TEMPLATE + "\nNotes written by hand.\n")
    out = tmp_path / "r.json"
    assert bench.main(["--threads", "1", "--rounds", "2", "--candidates", "3", "--recal-batches", "2",
                       "--data-option", "limit=40", "--space", "nb201", "--json", str(out),
                       "--markdown", str(md)]) == 0
    result = json.loads(out.read_text())
    rows = result["results"]
    assert [(r["bn_mode"], r["way"]) for r in rows] == [(bn, w[0]) for bn in bench.BN_MODES for w in bench.WAYS]
    for r in rows:
        assert len(r["rounds_ms"]) == 2 and r["ms_per_candidate"] > 0
        if r["way"] in ("one at a time", "batched"):
            assert r["max_loss_diff"] == 0 and r["max_acc_diff"] == 0 and r["arch_batch"] == 1
        else:
            assert r["max_loss_diff"] < 1e-4
    assert [r["speedup"] for r in rows if r["way"] == "one at a time"] == [1.0, 1.0]
    meta = result["meta"]
    assert meta["device"] == "cpu" and meta["threads"] == 1 and meta["load_before"] and meta["candidates"] == 3
    text = md.read_text()
    assert text.endswith("Notes written by hand.\n") and "Not measured yet. On a CUDA machine" in text
    cpu = text.split("<!-- BEGIN cpu -->")[1].split("<!-- END cpu -->")[0]
    assert "## CPU" in cpu and "| nb201 (channels=8, cells_per_stage=1) | recal | stacked 16 |" in cpu
    assert "load average" in cpu and "Not measured yet" not in cpu
