"""Finding a study's store and experiment from its run directory (``write_study_report``).

The report itself is tested in test_render.py and, through the command, in
tests/commands/test_report.py; these are the cases that fail before any report is written.
"""

from __future__ import annotations

import json

import pytest

from wsnas.core.errors import WsnasError
from wsnas.report import write_study_report
from wsnas.store import Store


def test_experiment_json_must_hold_an_object(tmp_path):
    (tmp_path / "experiment.json").write_text(json.dumps(["insights"]))
    with pytest.raises(WsnasError, match="holds a list, expected an object with 'experiment' and 'store'"):
        write_study_report(tmp_path)
    (tmp_path / "experiment.json").write_text("{not json")
    with pytest.raises(WsnasError, match="give --experiment and --store, or delete the file"):
        write_study_report(tmp_path)


def test_the_store_is_found_but_never_created(tmp_path):
    with pytest.raises(WsnasError, match="does not exist"):
        write_study_report(tmp_path)
    assert not (tmp_path / "results.db").exists()
    # a study folder RUN_DIR/<experiment>/ uses RUN_DIR/results.db when it has none itself
    Store(tmp_path / "results.db").close()
    (tmp_path / "sharing").mkdir()
    with pytest.raises(WsnasError, match=f"no insights experiment 'sharing' in {tmp_path / 'results.db'}"):
        write_study_report(tmp_path / "sharing", experiment="sharing")
    # the recorded store wins when it exists; a given one wins over it
    other = tmp_path / "other.db"
    Store(other).close()
    (tmp_path / "sharing" / "experiment.json").write_text(json.dumps({"experiment": "x", "store": str(other)}))
    with pytest.raises(WsnasError, match=f"no insights experiment 'x' in {other}"):
        write_study_report(tmp_path / "sharing")
    with pytest.raises(WsnasError, match=f"no insights experiment 'y' in {tmp_path / 'results.db'}"):
        write_study_report(tmp_path / "sharing", store_path=tmp_path / "results.db", experiment="y")
