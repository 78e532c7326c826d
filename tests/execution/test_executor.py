"""Executors for independent jobs: local (in order, in process), worker processes and Ray (a worker
killed mid-job)."""

import importlib.util
import os

import pytest
import torch

from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.data import load_dataset
from wsnas.execution.executor import LocalExecutor, ProcessExecutor, get_executor
from wsnas.execution.jobs import KILL_HOOK_ENV
from wsnas.groundtruth.run import run_groundtruth, train_one
from wsnas.spaces import get_space
from wsnas.store import Store
from wsnas.training.standalone import default_config

ARCHS = ["111", "222", "333", "444", "121", "212"]
METRICS = ("train_acc", "train_loss", "valid_acc", "valid_loss", "test_acc", "test_loss", "epochs")
HAS_RAY = importlib.util.find_spec("ray") is not None


def _square(x):
    return x * x


@pytest.fixture(scope="module")
def setup():
    space = get_space("tiny64", channels=4, stem_channels=8)
    data = load_dataset("digits", device="cpu", split_seed=0)
    cfg = default_config("digits").with_overrides(epochs=1, batch_size=128)
    return space, data, cfg, [space.resolve(a) for a in ARCHS]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a Ray job with one CPU trains on one thread: same arithmetic
    yield
    torch.set_num_threads(before)


def _table(db):
    with Store(db) as store:
        rows = store.groundtruth()
    keys = [(r["arch"], int(r["seed"])) for r in rows]
    assert len(keys) == len(set(keys)), "duplicate rows"
    return {(r["arch"], int(r["seed"])): tuple(r[m] for m in METRICS) for r in rows}


def test_local_executor_runs_in_order_in_process():
    seen = []
    LocalExecutor().run(_square, [3, 1, 2], on_result=lambda job, res: seen.append((job, res, os.getpid())))
    assert seen == [(3, 9, os.getpid()), (1, 1, os.getpid()), (2, 4, os.getpid())]
    assert isinstance(get_executor("local"), LocalExecutor)
    assert isinstance(get_executor(None), LocalExecutor)


def test_local_groundtruth_equals_the_plain_loop(tmp_path, setup, one_thread):
    """The default executor gives bit-identical numbers to training each job directly."""
    space, data, cfg, archs = setup
    with Store(tmp_path / "gt.db") as store:
        summary = run_groundtruth(space, data, cfg, seeds=[0, 1], archs=archs[:3], store=store,
                                  progress=False, executor=LocalExecutor())
    assert (summary.trained, summary.skipped) == (6, 0)
    table = _table(tmp_path / "gt.db")
    for seed in (0, 1):
        for arch in archs[:3]:
            result = train_one(space, arch, data, cfg, seed)
            assert table[(space.format(arch), seed)] == tuple(result[m] for m in METRICS)


def test_unknown_executor_is_one_line_exit_2(capsys):
    with pytest.raises(WsnasError, match="unknown executor 'dask'; accepted: local, processes, ray"):
        get_executor("dask")
    assert main(["groundtruth", "--executor", "dask", "--archs", "111", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "wsnas groundtruth: error: unknown executor 'dask'; accepted: local, processes, ray"
    assert main(["insights", "--executor", "dask", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "wsnas insights: error: unknown executor 'dask'; accepted: local, processes, ray"


def test_missing_ray_says_how_to_install(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["groundtruth", "--executor", "ray", "--archs", "111", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'wsnas[ray]'" in err


def test_bad_ray_resources_are_user_errors():
    if not HAS_RAY:
        pytest.skip("ray is not installed (pip install 'wsnas[ray]')")
    with pytest.raises(WsnasError, match="cpus-per-job"):
        get_executor("ray", cpus_per_job=0)
    with pytest.raises(WsnasError, match="gpus-per-job"):
        get_executor("ray", gpus_per_job=-1)


@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install 'wsnas[ray]'); CI installs it")
def test_ray_survives_a_killed_worker_and_matches_local(tmp_path, setup, one_thread, monkeypatch, worker_killer):
    space, data, cfg, archs = setup
    local_db, ray_db = tmp_path / "local.db", tmp_path / "ray.db"
    with Store(local_db) as store:
        run_groundtruth(space, data, cfg, seeds=[0], archs=archs, store=store, progress=False)
    expected = _table(local_db)

    # The first job to start writes its worker's PID and waits; we SIGKILL that worker, Ray
    # reruns the job elsewhere and the run still completes.
    killer = worker_killer()
    executor = get_executor("ray", cpus_per_job=1, num_cpus=2, max_retries=3)
    with Store(ray_db) as store:
        summary = run_groundtruth(space, data, cfg, seeds=[0], archs=archs, store=store,
                                  progress=False, executor=executor)
    assert killer.join() not in (None, os.getpid()), "no worker was killed"
    assert (summary.trained, summary.skipped, summary.total) == (len(archs), 0, len(archs))
    assert _table(ray_db) == expected  # complete, duplicate-free, same numbers as local

    monkeypatch.delenv(KILL_HOOK_ENV)
    with Store(ray_db) as store:  # a rerun skips everything without starting Ray
        again = run_groundtruth(space, data, cfg, seeds=[0], archs=archs, store=store, progress=False,
                                executor=executor)
    assert (again.trained, again.skipped) == (0, len(archs))


@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install 'wsnas[ray]'); CI installs it")
def test_ray_keeps_finished_results_and_reports_a_failed_job_in_one_line():
    def fails_on_two(x):  # nested, so that Ray pickles it by value (tests/ is not importable)
        if x == 2:
            raise WsnasError("job two is broken")
        return x

    got = []
    executor = get_executor("ray", num_cpus=2, max_retries=0)
    with pytest.raises(WsnasError) as info:
        executor.run(fails_on_two, [1, 2, 3], on_result=lambda job, result: got.append(result))
    assert sorted(got) == [1, 3]
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "1 of 3 jobs failed" in message and "job two is broken" in message


def test_processes_survive_a_killed_worker_and_match_local(tmp_path, setup, one_thread, monkeypatch, worker_killer):
    """Two one-thread worker processes: a worker SIGKILLed mid-job loses only the jobs in flight,
    which run again in a fresh pool; the table equals the in-process one (same threads)."""
    space, data, cfg, archs = setup
    local_db, proc_db = tmp_path / "local.db", tmp_path / "proc.db"
    with Store(local_db) as store:
        run_groundtruth(space, data, cfg, seeds=[0], archs=archs, store=store, progress=False)
    killer = worker_killer()
    executor = get_executor("processes", workers=2)
    assert (executor.workers, executor.threads) == (2, max(1, (os.cpu_count() or 1) // 2))
    executor.threads = 1  # the same arithmetic as the in-process run on one thread
    with Store(proc_db) as store:
        summary = run_groundtruth(space, data, cfg, seeds=[0], archs=archs, store=store,
                                  progress=False, executor=executor)
    assert killer.join() not in (None, os.getpid()), "no worker was killed"
    assert (summary.trained, summary.skipped) == (len(archs), 0)
    assert _table(proc_db) == _table(local_db)


def test_processes_keep_finished_results_and_report_failures_in_one_line():
    import math

    got = []
    with pytest.raises(WsnasError) as info:  # math.sqrt(-1) raises in its worker
        ProcessExecutor(workers=2).run(math.sqrt, [4.0, -1.0, 9.0], on_result=lambda job, r: got.append(r))
    assert sorted(got) == [2.0, 3.0]
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("1 of 3 jobs failed; finished results are kept") and "math domain error" in message


def test_processes_give_up_on_a_job_that_kills_its_worker_every_time():
    got = []
    with pytest.raises(WsnasError, match="3 of 3 jobs failed.*its worker process died"):
        # os._exit(0) ends the worker before it can answer: the job is lost on every try
        ProcessExecutor(workers=1, max_retries=1).run(os._exit, [0, 0, 0], on_result=lambda j, r: got.append(r))
    assert got == []


def test_bad_worker_counts_are_user_errors():  # the command line's --workers 0: tests/commands/test_bad_input.py
    with pytest.raises(WsnasError, match="--workers must be at least 1, got 0"):
        ProcessExecutor(workers=0)


@pytest.mark.parametrize("jobs, cores, workers", [
    (9, 2, 3),     # 3 rounds of 3 sharing 2 cores: 4.5 job-lengths; 2 workers: 5 (one core idles for the last)
    (128, 2, 2),   # even: one per core
    (4, 2, 2),
    (1, 2, 1),     # one job: one worker with both cores' threads
    (3, 2, 3),     # 1.5 job-lengths against 2
    (5, 2, 2),     # 3 rounds either way with 2 or 3 workers: the fewer
    (9, 16, 9),    # fewer jobs than cores: one each
    (0, 2, 1),
])
def test_balanced_workers_finish_equal_jobs_soonest(jobs, cores, workers):
    from wsnas.execution.executor import balanced_workers

    assert balanced_workers(jobs, cores) == workers


def test_default_process_executor_sizes_each_call_by_its_jobs():
    executor = ProcessExecutor()
    executor.cores = 2
    assert executor.sizes(9) == (3, 1) and executor.sizes(128) == (2, 1) and executor.sizes(1) == (1, 2)
    fixed = ProcessExecutor(workers=2, threads=1)
    assert fixed.sizes(9) == (2, 1) and fixed.sizes(1) == (1, 1)
