"""Executors for independent jobs: in this process (``local``), in worker processes of this
machine (``processes``) or on a Ray cluster (``ray``).

An executor runs a module-level, picklable function over a list of small, picklable jobs and
hands every ``(job, result)`` back to the caller *in the driver* as soon as it finishes, so the
caller alone writes the results store (SQLite allows one writer) and a crash loses nothing
that finished::

    executor = get_executor("ray", address="auto", cpus_per_job=1)
    executor.run(train_job, jobs, on_result=lambda job, result: store.add(...))

:class:`LocalExecutor` (the default) runs the jobs one after the other, in order, in this
process. :class:`ProcessExecutor` runs them in a pool of worker processes on this machine
(the standard library's :mod:`concurrent.futures`, started with ``spawn``), each worker with
its share of the cores as torch threads: on a small CPU, two one-thread workers do more work
per second than one two-thread process (``benchmarks/executor_throughput.py`` measures it).
:class:`RayExecutor` submits every job as a Ray task with its CPU/GPU request, retries a job
whose worker died or raised, and streams results back as they complete (``ray.wait``). It starts
a private local Ray instance when no address is given and shuts it down afterwards.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

from wsnas.core.errors import WsnasError
from wsnas.core.runtime import process_settings

EXECUTORS = ("local", "processes", "ray")

Job = Any
OnResult = Callable[[Any, Any], None]


class Executor:
    """Runs ``fn(job)`` for every job and calls ``on_result(job, result)`` in the driver."""

    name = "executor"

    def run(self, fn: Callable[[Job], Any], jobs: Sequence[Job], *, on_result: OnResult) -> None:
        raise NotImplementedError

    def worker_device(self, device) -> str:
        """The device a job should put its data on, given the driver's ``device``."""
        return str(device)

    def describe(self) -> dict:
        return {"executor": self.name}


class LocalExecutor(Executor):
    """In this process, one job after the other, in order (exceptions propagate at once)."""

    name = "local"

    def run(self, fn: Callable[[Job], Any], jobs: Sequence[Job], *, on_result: OnResult) -> None:
        for job in jobs:
            on_result(job, fn(job))


def _ray_call(fn: Callable[[Job], Any], job: Job, threads: int, settings: dict | None = None) -> Any:
    """The body of a Ray task or a worker process's job: the driver's process settings
    (:mod:`wsnas.core.runtime`) and torch's threads, then the job."""
    import torch

    from wsnas.core.runtime import apply_settings

    apply_settings(settings or {})

    if threads >= 1 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return fn(job)


def balanced_workers(jobs: int, cores: int) -> int:
    """Worker processes for ``jobs`` jobs of equal length on ``cores`` cores: the fewest that
    finish soonest, when each worker runs its share one after another and workers beyond the
    cores share them (at most twice as many workers as cores).

    One per core when the jobs divide evenly; 9 jobs on 2 cores: 3 workers, done after 4.5
    job-lengths, where 2 take 5 (the last job runs alone while a core idles); 1 job: 1 worker
    with every core's threads.
    """
    jobs, cores = max(1, int(jobs)), max(1, int(cores))

    def makespan(workers: int) -> float:
        return -(-jobs // workers) * max(workers, cores) / cores

    return min(range(1, 2 * cores + 1), key=lambda w: (makespan(w), w))


class ProcessExecutor(Executor):
    """Jobs in ``workers`` processes of this machine; results stream back as they finish.

    ``workers`` defaults to :func:`balanced_workers` for the jobs of each call (one per core
    when they divide evenly). Each worker runs ``threads`` torch threads (default: the machine's
    cores shared out, at least one) and the driver's process settings. A job that raises does not stop the others:
    every finished result reaches ``on_result`` first, then one line names the failures. A
    worker that dies (killed, out of memory) takes the jobs in flight with it: they are run
    again in a fresh pool, up to ``max_retries`` times. On Ctrl-C (or an error in
    ``on_result``) jobs not yet started are cancelled and the workers stopped; what finished is
    kept, so a rerun continues.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, threads: int | None = None, max_retries: int = 3) -> None:
        cores = os.cpu_count() or 1
        for flag, value in (("--workers", workers), ("threads per worker", threads)):
            if value is not None and (isinstance(value, bool) or int(value) < 1):
                raise WsnasError(f"{flag} must be at least 1, got {value}")
        if max_retries < 0:
            raise WsnasError(f"max_retries must be non-negative, got {max_retries}")
        self.cores = cores
        self.workers = int(workers) if workers is not None else None  # None: balanced per call
        self.threads = int(threads) if threads is not None else \
            (None if workers is None else max(1, cores // self.workers))
        self.max_retries = int(max_retries)

    def describe(self) -> dict:
        return {"executor": self.name, "workers": self.workers or "balanced", "threads": self.threads or "shared out",
                "max_retries": self.max_retries}

    def sizes(self, jobs: int) -> tuple[int, int]:
        """(worker processes, torch threads per worker) for a call with ``jobs`` jobs."""
        workers = min(self.workers or balanced_workers(jobs, self.cores), max(1, jobs))
        return workers, self.threads or max(1, self.cores // workers)

    def run(self, fn: Callable[[Job], Any], jobs: Sequence[Job], *, on_result: OnResult) -> None:
        jobs = list(jobs)
        failures: list[tuple[Job, BaseException]] = []
        todo, tries = list(range(len(jobs))), 0
        while todo:
            lost = self._round(fn, jobs, todo, on_result, failures)
            tries += 1
            if lost and tries > self.max_retries:
                failures.extend((jobs[i], RuntimeError("its worker process died")) for i in lost)
                lost = []
            todo = lost
        if failures:
            job, exc = failures[0]
            raise WsnasError(f"{len(failures)} of {len(jobs)} jobs failed; finished results are kept, "
                             f"a rerun continues; first failure ({job}): {_one_line(exc)}")

    def _round(self, fn, jobs: list, todo: list[int], on_result: OnResult,
               failures: list[tuple[Job, BaseException]]) -> list[int]:
        """Run ``jobs[i]`` for ``i`` in ``todo`` in one pool; the indices lost with a dead worker."""
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        before = set(multiprocessing.active_children())
        workers, threads = self.sizes(len(todo))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        settings = process_settings()
        pending = {pool.submit(_ray_call, fn, jobs[i], threads, settings): i for i in todo}
        lost: list[int] = []
        try:
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    exc = future.exception()
                    if isinstance(exc, BrokenProcessPool):
                        lost.append(i)
                    elif exc is not None:
                        failures.append((jobs[i], exc))
                    else:
                        on_result(jobs[i], future.result())
        finally:
            if pending:  # interrupted: stop the workers rather than wait for the jobs they run
                pool.shutdown(wait=False, cancel_futures=True)
                for process in set(multiprocessing.active_children()) - before:
                    process.terminate()
            pool.shutdown(wait=True)
        return sorted(lost)


class RayExecutor(Executor):
    """Every job a Ray task; results stream back to the driver as they finish.

    Args:
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
            ``None`` starts a local Ray instance for the run and shuts it down afterwards.
        cpus_per_job: CPUs a job asks for (also its torch thread count).
        gpus_per_job: GPUs a job asks for; fractions (0.25, 0.5) pack several jobs per GPU.
            With GPUs the jobs put their data on ``cuda`` (the GPU Ray assigns them).
        max_retries: how often a job whose worker died or that raised is run again.
        num_cpus: CPUs of a local instance (default: this machine's cores); ignored with
            ``address``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_job: float = 1, gpus_per_job: float = 0,
                 max_retries: int = 3, num_cpus: int | None = None) -> None:
        if not cpus_per_job or cpus_per_job <= 0:
            raise WsnasError(f"--ray-cpus-per-job must be positive, got {cpus_per_job}")
        if gpus_per_job is None or gpus_per_job < 0:
            raise WsnasError(f"--ray-gpus-per-job must be non-negative, got {gpus_per_job}")
        if gpus_per_job > 1 and gpus_per_job != int(gpus_per_job):
            raise WsnasError(f"--ray-gpus-per-job above 1 must be a whole number, got {gpus_per_job}")
        if max_retries < 0:
            raise WsnasError(f"max_retries must be non-negative, got {max_retries}")
        self.address = address or None
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        self.max_retries = int(max_retries)
        self.num_cpus = num_cpus
        self._ray = _import_ray()

    def worker_device(self, device) -> str:
        return "cuda" if self.gpus_per_job > 0 else "cpu"

    def describe(self) -> dict:
        return {"executor": self.name, "address": self.address, "cpus_per_job": self.cpus_per_job,
                "gpus_per_job": self.gpus_per_job, "max_retries": self.max_retries}

    def _start(self) -> bool:
        """Connect to (or start) Ray; True when this call started it (and must shut it down)."""
        ray = self._ray
        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(include_dashboard=False, num_cpus=self.num_cpus or os.cpu_count() or 1, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local instance"
            raise WsnasError(f"could not start Ray ({where}): {_one_line(exc)}") from None
        return True

    def run(self, fn: Callable[[Job], Any], jobs: Sequence[Job], *, on_result: OnResult) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        ray = self._ray
        started = self._start()
        pending: dict = {}
        try:
            remote = ray.remote(
                num_cpus=self.cpus_per_job, num_gpus=self.gpus_per_job,
                max_calls=0,  # keep warm workers, GPU tasks included (Ray's GPU default is 1)
                max_retries=self.max_retries, retry_exceptions=True,
            )(_ray_call)
            threads = max(1, int(self.cpus_per_job))
            fn_ref = ray.put(fn)
            settings = process_settings()
            pending = {remote.remote(fn_ref, job, threads, settings): job for job in jobs}
            failures: list[tuple[Job, BaseException]] = []
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # the job failed max_retries + 1 times
                        failures.append((job, exc))
                        continue
                    on_result(job, result)
            if failures:
                job, exc = failures[0]
                raise WsnasError(f"{len(failures)} of {len(jobs)} jobs failed after {self.max_retries} "
                                 f"retries; finished results are kept; first failure ({job}): "
                                 f"{_one_line(getattr(exc, 'cause', None) or exc)}")
        finally:
            for ref in pending:  # interrupted: do not leave work running on the cluster
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort
                    pass
            if started:
                ray.shutdown()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise WsnasError("the ray executor needs Ray: pip install 'wsnas[ray]'") from None
    return ray


def get_executor(name: str | None = "local", **options) -> Executor:
    """The executor called ``name`` (``local``, ``processes`` or ``ray``); options go to its
    constructor."""
    if name in (None, "local"):
        return LocalExecutor()
    if name == "processes":
        return ProcessExecutor(**options)
    if name == "ray":
        return RayExecutor(**options)
    raise WsnasError(f"unknown executor {name!r}; accepted: {', '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ProcessExecutor", "RayExecutor", "get_executor"]
