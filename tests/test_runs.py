"""The run lifecycle (wsnas.runs): created or resumed, running, done, or interrupted on any exception."""

from __future__ import annotations

import pytest

from wsnas.core.errors import Diverged, WsnasError
from wsnas.runs import open_run, recorded_command, running, train_run
from wsnas.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "results.db") as s:
        yield s


def status(store: Store, run_id: str) -> str:
    return store.get_run(run_id)["status"]


def test_open_run_creates_then_resumes_the_same_run(store):
    run = open_run(store, "a", "supernet", {"x": 1}, seed=3)
    assert (run.status, run.done) == ("created", False)
    with running(run):
        assert status(store, "a") == "running"
    assert status(store, "a") == "done"
    again = open_run(store, "a", "supernet", {"x": 1}, seed=3)
    assert again.done
    with pytest.raises(WsnasError, match="'a'"):
        open_run(store, "a", "supernet", {"x": 2}, seed=3)  # other settings never mix under one id


def test_runs_opened_inside_a_recorded_command_keep_it(store):
    open_run(store, "before", "supernet", {"x": 1})
    with recorded_command("supernet", {"seed": 3, "threads": 1}):
        open_run(store, "a", "supernet", {"x": 1}, seed=3)
        with recorded_command("evolve", {"run": "a"}):  # the innermost command
            open_run(store, "b", "evolve", {})
        open_run(store, "before", "supernet", {"x": 1})  # resumed: it had no command
    with recorded_command("supernet", {"seed": 3, "threads": 2}):
        assert open_run(store, "a", "supernet", {"x": 1}, seed=3).status == "created"  # same identity: resumed
    open_run(store, "after", "k", {})
    commands = {r["run_id"]: r["command"] for r in store.list_runs()}
    assert commands == {"before": {"command": "supernet", "options": {"seed": 3, "threads": 1}},
                        "a": {"command": "supernet", "options": {"seed": 3, "threads": 1}},
                        "b": {"command": "evolve", "options": {"run": "a"}}, "after": None}


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_any_exception_marks_unfinished_runs_interrupted_and_goes_on(store, exc):
    first, second = open_run(store, "a", "k", {}), open_run(store, "b", "k", {})
    with pytest.raises(type(exc)), running(first, second):
        first.finish()  # its results came back before the failure
        raise exc
    assert status(store, "a") == "done"
    assert status(store, "b") == "interrupted"


def test_a_diverged_run_is_marked_diverged_and_the_others_interrupted(store):
    first, second = open_run(store, "a", "k", {}), open_run(store, "b", "k", {})
    with pytest.raises(Diverged), running(first, second):
        raise Diverged("b diverged", epoch=3, loss=float("nan"), run_id="b")
    assert (status(store, "a"), status(store, "b")) == ("interrupted", "diverged")
    alone = open_run(store, "c", "k", {})
    with pytest.raises(Diverged), running(alone):
        raise Diverged("training diverged", epoch=1)  # no run named: the one run of the block
    assert status(store, "c") == "diverged"
    assert not open_run(store, "c", "k", {}).done  # a rerun trains it again


class FakeTrainer:
    def __init__(self, fail: bool = False, checkpoint: bool = False):
        self.fail, self.checkpoint, self.calls = fail, checkpoint, []

    def config(self) -> dict:
        return {"trainer": 1}

    def try_resume(self) -> bool:
        self.calls.append("resume")
        return self.checkpoint

    def train(self, **kwargs) -> dict:
        self.calls.append(("train", kwargs))
        if self.fail:
            raise KeyboardInterrupt
        return {"epoch": 2}


def test_train_run_resumes_trains_and_finishes(store):
    trainer = FakeTrainer(checkpoint=True)
    summary, resumed = train_run(store, "r", "supernet", trainer, seed=0, on_step=None)
    assert (summary, resumed) == ({"epoch": 2}, True)
    assert trainer.calls == ["resume", ("train", {"on_step": None})]
    run = store.get_run("r")
    assert (run["kind"], run["config"], run["seed"], run["status"]) == ("supernet", {"trainer": 1}, 0, "done")


def test_train_run_interrupted(store):
    with pytest.raises(KeyboardInterrupt):
        train_run(store, "r", "supernet", FakeTrainer(fail=True))
    assert status(store, "r") == "interrupted"


def test_a_killed_supernet_command_leaves_its_run_interrupted(tmp_path, monkeypatch, capsys):
    """Ctrl-C in `wsnas supernet` (one line, exit 130) marks the run interrupted, not running."""
    from wsnas.cli import main
    from wsnas.training.trainer import SupernetTrainer

    def interrupted(self, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SupernetTrainer, "train", interrupted)
    db = tmp_path / "r.db"
    code = main(["supernet", "--store", str(db), "--run", "s", "--run-dir", str(tmp_path / "s"), "--epochs", "1",
                 "--space-option", "channels=4", "--space-option", "stem_channels=8", "--no-progress"])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    with Store(db, create=False) as s:
        assert s.get_run("s")["status"] == "interrupted"
