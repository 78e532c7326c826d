"""The report of one supernet run (``wsnas.report.supernet``) on stored rows; a real run through
``wsnas report`` is tested in tests/commands/test_report.py."""

from __future__ import annotations

import pytest

from wsnas.core.errors import WsnasError
from wsnas.report.supernet import write_supernet_report
from wsnas.runs import open_run
from wsnas.store import Store

CONFIG = {"space": {"space": "tiny64"}, "data": {"name": "digits"}, "strategy": {"strategy": "uniform"},
          "supernet": {"train": {"epochs": 3, "batch_size": 64, "lr": 0.025}, "dense_last": 0}}


def test_a_run_without_an_epoch_yet_is_reported_as_such(tmp_path):
    with Store(tmp_path / "r.db") as store:
        open_run(store, "sn", "supernet", CONFIG, seed=0)
        paths = write_supernet_report(store, "sn", tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "> **Warning:** The run has no evaluation after an epoch yet: nothing is ranked." in md
    assert "**training:** 0 of 3 epochs, batch 64" in md and "## Figures" not in md
    assert paths["figures"] == [] and paths["summary"] == []


def test_a_run_of_another_kind_is_refused(tmp_path):
    with Store(tmp_path / "r.db") as store:
        open_run(store, "s", "search", CONFIG, seed=0)
        with pytest.raises(WsnasError, match="no supernet run 's' in .*; found: none"):
            write_supernet_report(store, "s", tmp_path)
