"""Supernet instances as executor jobs: rows collected away from the store, resumed, run on Ray."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from wsnas.cli import main
from wsnas.data import load_dataset
from wsnas.evaluator import EvalConfig
from wsnas.execution.executor import get_executor
from wsnas.experiments.insights import (
    SWEEP_SHARING,
    InsightsConfig,
    default_experiment,
    study_instances,
    sweep_runs,
)
from wsnas.experiments.instances import Instance, build_trainer, run_instances
from wsnas.spaces import get_space
from wsnas.store import Store
from wsnas.supernet.sharing import parse_sharing
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import RowCollector, SupernetConfig

HAS_RAY = importlib.util.find_spec("ray") is not None
CFG = SupernetConfig(train=TrainConfig(epochs=2, batch_size=128), eval=EvalConfig(batch_size=128), dense_last=3)


@pytest.fixture(scope="module")
def setup():
    space = get_space("tiny64", channels=4, stem_channels=8)
    data = load_dataset("digits", device="cpu", split_seed=0, limit=200)  # a Ray worker reloads the same 200
    return space, data


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray job with one CPU trains on one thread: same arithmetic
    yield
    torch.set_num_threads(before)


def _instances(run_dir: Path) -> list[Instance]:
    return [Instance("s/0", str(run_dir / "s0"), seed=0),
            Instance("s/1", str(run_dir / "s1"), strategy="shuffle", seed=1, order_seed=5),
            Instance("g/4", str(run_dir / "g4"), seed=0, sharing=parse_sharing("group:4:random"))]


def _rows(db):
    with Store(db) as store:
        out = {}
        for run in store.list_runs("supernet"):
            preds = sorted((r["checkpoint"], r["arch"], r["accuracy"], r["loss"])
                           for r in store.predictions(run["run_id"]))
            steps = [(r["step"], r["arch"], r["loss"]) for r in store.train_steps(run["run_id"])]
            out[run["run_id"]] = (run["status"], preds, steps)
        return out


def test_local_instances_equal_trainers_writing_the_store(setup, tmp_path, one_thread):
    space, data = setup
    with Store(tmp_path / "jobs.db") as store:
        done = []
        run_instances(space, data, CFG, _instances(tmp_path / "a"), store=store, progress=False,
                      on_done=lambda inst, result: done.append(inst.run_id))
    assert done == ["s/0", "s/1", "g/4"]
    with Store(tmp_path / "direct.db") as store:
        for inst in _instances(tmp_path / "b"):
            trainer = build_trainer(inst, space, data, CFG, store=store)
            store.ensure_run(inst.run_id, "supernet", trainer.config(), seed=inst.seed)
            trainer.train()
            store.set_run_status(inst.run_id, "done")
    jobs, direct = _rows(tmp_path / "jobs.db"), _rows(tmp_path / "direct.db")
    assert jobs.keys() == direct.keys() == {"s/0", "s/1", "g/4"}
    for run_id, (status, preds, steps) in jobs.items():
        assert status == "done" and len(preds) == 64 * (2 + 3)
        assert preds == direct[run_id][1] and steps == direct[run_id][2], run_id
    with Store(tmp_path / "jobs.db") as store:  # a rerun finds everything done
        again = []
        run_instances(space, data, CFG, _instances(tmp_path / "a"), store=store, progress=False,
                      on_done=lambda inst, result: again.append(inst))
    assert again == []


def test_collected_rows_survive_a_resume(setup, tmp_path, one_thread):
    space = setup[0]
    data = load_dataset("digits")  # 9 steps an epoch: the dense evaluation (last 3 steps) all in epoch 2
    inst = _instances(tmp_path)[2]
    whole = RowCollector()
    build_trainer(inst, space, data, CFG, store=whole).train()

    class Stop(Exception):
        pass

    part = RowCollector()

    def stop(step, _):
        if step == trainer.steps_per_epoch + 1:
            raise Stop

    inst2 = Instance(inst.run_id, str(tmp_path / "again"), seed=inst.seed, sharing=inst.sharing)
    trainer = build_trainer(inst2, space, data, CFG, store=part)
    with pytest.raises(Stop):
        trainer.train(on_step=stop)
    resumed_rows = RowCollector()
    resumed = build_trainer(inst2, space, data, CFG, store=resumed_rows)
    assert resumed.try_resume() and resumed.epoch == 1
    assert len(resumed_rows.predictions) == 64  # the first epoch's evaluation, from the checkpoint
    resumed.train()
    assert resumed_rows.predictions == whole.predictions
    assert resumed_rows.train_steps == whole.train_steps


@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install 'wsnas[ray]'); CI installs it")
def test_ray_instances_survive_a_killed_worker(setup, tmp_path, one_thread, worker_killer):
    space, data = setup
    with Store(tmp_path / "local.db") as store:
        run_instances(space, data, CFG, _instances(tmp_path / "local"), store=store, progress=False)
    killer = worker_killer()
    executor = get_executor("ray", cpus_per_job=1, num_cpus=2, max_retries=3)
    with Store(tmp_path / "ray.db") as store:
        run_instances(space, data, CFG, _instances(tmp_path / "ray"), store=store, progress=False,
                      executor=executor)
    assert killer.join() not in (None, os.getpid()), "no worker was killed"
    ray_rows, local_rows = _rows(tmp_path / "ray.db"), _rows(tmp_path / "local.db")
    assert ray_rows.keys() == local_rows.keys()
    for run_id, (status, preds, steps) in ray_rows.items():
        assert status == "done" and [s[:2] for s in steps] == [s[:2] for s in local_rows[run_id][2]]
        assert [p[:2] for p in preds] == [p[:2] for p in local_rows[run_id][1]]
        np.testing.assert_allclose([p[2:] for p in preds], [p[2:] for p in local_rows[run_id][1]],
                                   rtol=0, atol=1e-6, err_msg=run_id)


def test_sweep_instances(tmp_path):
    cfg = InsightsConfig(instances={"seeds": 1, "orders": 0, "shuffle": 0},
                         sweep=("full", "group:1", "group:4", "prefix:0", "group:16:random@2"))
    runs = sweep_runs("sharing", cfg)
    assert list(runs) == ["full", "group:4:similarity", "prefix:0", "group:16:random@2"]  # group:1 is full
    instances = study_instances("sharing", cfg, tmp_path)
    assert [i.run_id for i in instances] == ["sharing/seeds/0"] + [f"sharing/sharing/{k}" for k in runs]
    assert len({i.run_dir for i in instances}) == len(instances)
    assert instances[2].sharing.groups == 4 and instances[2].strategy == "round_robin"
    assert len(SWEEP_SHARING) == 17 and len({parse_sharing(s).label for s in SWEEP_SHARING}) == 17


def test_experiments_in_one_run_directory_keep_their_own_checkpoints(tmp_path):
    cfg = InsightsConfig(instances={"seeds": 2, "orders": 1, "shuffle": 0})
    default = [i.run_dir for i in study_instances("insights", cfg, tmp_path)]
    assert default == [str(tmp_path / "supernets" / f) for f in ("seeds-0", "seeds-1", "orders-0")]
    other = [i.run_dir for i in study_instances("e5-recal", cfg, tmp_path)]
    assert other == [str(tmp_path / "e5-recal" / "supernets" / f) for f in ("seeds-0", "seeds-1", "orders-0")]
    sweep = InsightsConfig(instances={"seeds": 0, "orders": 0, "shuffle": 0}, sweep=("full",))
    assert [i.run_dir for i in study_instances("sharing", sweep, tmp_path)] == [str(tmp_path / "sharing" / "full")]
    assert ([i.run_dir for i in study_instances("sweep2", sweep, tmp_path)]
            == [str(tmp_path / "sweep2" / "sharing" / "full")])


def test_default_experiment_names_the_study():
    assert default_experiment(InsightsConfig()) == "insights"
    assert default_experiment(InsightsConfig(sweep=("full",))) == "sharing"
    assert default_experiment(InsightsConfig(strategies=("spos",))) == "strategies"


@pytest.mark.parametrize("args, fragment", [
    (["--sharing", "group:x"], "bad sharing 'group:x'"),
    (["--sharing", "group:65"], "cannot split 64 children into 65 groups"),
    (["--sweep-settings", "full"], "--sweep-settings needs --sweep sharing"),
    (["--sweep", "sharing", "--sweep-settings", "prefix:9", "--space-option", "cells=2"], "prefix:9"),
])
def test_bad_sharing_input(tmp_path, capsys, args, fragment):
    assert main(["insights", "--run-dir", str(tmp_path), "--no-progress", "--gt-epochs", "1", "--gt-seeds", "1",
                 "--space-option", "channels=4", "--space-option", "stem_channels=8", "--epochs", "1",
                 *args]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err
