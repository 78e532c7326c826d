"""Ground truth for many architectures: independent from-scratch trainings, stored one by one.

Each (architecture, seed) pair is one job. A job's result is committed to the store the moment
it finishes, keyed by its full identity (space, architecture, dataset, seed, epochs, config
hash), so an interrupted run loses at most the job in flight and a rerun skips what is done.

The jobs run on an :mod:`wsnas.execution.executor`: in this process (the default) or as Ray tasks. A job
is small (the space's settings, a dataset spec, the training config, the architecture and the
seed); a worker rebuilds the space and loads the dataset once per process (:func:`train_job`),
and only the driver writes the store.

With ``tensorboard`` (a folder), the driver also writes each finished training's accuracies and
loss as TensorBoard scalars into ``<folder>/groundtruth/<config hash>`` (:func:`tensorboard_run`),
tags ``groundtruth/<column>``, the step counting the trainings of that config finished so far
(a rerun continues the count); the seed-to-seed tau follows at the end.

:func:`run_groundtruth` runs the jobs; :func:`run_groundtruth_with_best` (``wsnas groundtruth``)
also times them and reads back the best of the trained architectures (mean over seeds).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from wsnas.core.errors import Diverged
from wsnas.data import Dataset
from wsnas.execution.executor import Executor, LocalExecutor
from wsnas.execution.jobs import DataSpec, Preloaded, job_data, job_space, kill_hook
from wsnas.groundtruth.truth import truth_from_store
from wsnas.metrics import kendall_tau
from wsnas.spaces import Arch, Space
from wsnas.store import Store, code_version, config_hash
from wsnas.training.monitor import tensorboard_monitor
from wsnas.training.standalone import TrainConfig, train_from_scratch

#: The columns of a finished training written as TensorBoard scalars (``groundtruth/<column>``).
TENSORBOARD_COLUMNS = ("test_acc", "valid_acc", "train_acc", "train_loss", "test_loss", "valid_loss", "seconds")


def groundtruth_config(space: Space, data: Dataset, cfg: TrainConfig) -> dict:
    """Everything that defines a ground-truth training except the architecture and seed."""
    return {"space": space.describe(), "data": data.describe(), "train": cfg.to_dict()}


def tensorboard_run(chash: str) -> str:
    """The folder, under ``--tensorboard DIR``, of the ground truth with config hash ``chash``."""
    return f"groundtruth/{chash}"


def train_one(space: Space, arch: Arch, data: Dataset, cfg: TrainConfig, seed: int) -> dict:
    """Train one architecture from scratch under ``seed`` (initial weights and batch order)."""
    torch.manual_seed(seed)
    model = space.build_network(arch, num_classes=data.num_classes, in_channels=data.in_channels)
    return train_from_scratch(model, data, cfg, seed)


@dataclass(frozen=True)
class GroundTruthJob:
    """One (architecture, seed) training, as it travels to a worker."""

    space: dict  # Space.describe()
    data: DataSpec
    data_describe: dict = field(repr=False)  # the driver's Dataset.describe(), checked by the worker
    train: dict = field(repr=False)  # TrainConfig.to_dict()
    arch: Arch = field(repr=False)
    name: str = ""
    seed: int = 0

    def __str__(self) -> str:
        return f"seed {self.seed} arch {self.name}"


def train_job(job: GroundTruthJob) -> dict:
    """Run one job (the executors' job function): train ``job.arch`` under ``job.seed``.

    A training that diverges is a result too, not a failure to retry: ``{"diverged_epoch": E,
    "train_loss": loss, "seconds": ...}`` instead of its accuracies.
    """
    kill_hook()
    start = time.perf_counter()
    try:
        return train_one(job_space(job.space), job.arch, job_data(job.data, job.data_describe),
                         TrainConfig(**job.train), job.seed)
    except Diverged as exc:
        return {"diverged_epoch": exc.epoch, "train_loss": exc.loss, "epochs": job.train["epochs"],
                "seconds": time.perf_counter() - start}


@dataclass
class GroundTruthSummary:
    """What a ground-truth run did and how stable its ranking is across seeds."""

    config_hash: str
    total: int
    trained: int
    skipped: int
    seed_taus: dict[tuple[int, int], float]
    complete_seeds: list[int]
    # the jobs of this call whose loss became NaN or infinite: arch, seed, epoch, loss
    diverged: list[dict] = field(default_factory=list)

    @property
    def mean_seed_tau(self) -> float:
        return float(np.mean(list(self.seed_taus.values()))) if self.seed_taus else float("nan")


def run_groundtruth(space: Space, data: Dataset, cfg: TrainConfig, *, seeds: Sequence[int],
                    archs: Sequence[Arch], store: Store, progress: bool = True,
                    metric: str = "test_acc", executor: Executor | None = None,
                    log: Callable[[str], None] | None = None,
                    tensorboard: str | Path | None = None) -> GroundTruthSummary:
    """Train every architecture for every seed (seed-major), skipping jobs already stored.

    The jobs run on ``executor`` (default: in this process, in order); each result is written
    to ``store`` here, in the driver, as soon as it arrives. A job whose loss becomes NaN or
    infinite is stored as ``diverged`` (no accuracy; a rerun skips it, no ground truth reads
    it), listed in the summary's ``diverged`` and, with ``log``, reported as it arrives.
    ``tensorboard``: a folder for live scalars (the module docstring).
    """
    executor = executor or LocalExecutor()
    config = groundtruth_config(space, data, cfg)
    chash = config_hash(config)
    done = store.groundtruth_done(space.name, data.name, cfg.epochs, chash)
    jobs = [(seed, arch) for seed, arch in itertools.product(seeds, archs)
            if (space.format(arch), seed) not in done]
    total = len(seeds) * len(archs)
    bar = tqdm(total=total, initial=total - len(jobs), desc=f"groundtruth {space.name}/{data.name}",
               unit="job", disable=not progress, dynamic_ncols=True)
    version = code_version()
    spec = DataSpec.of(data, executor.worker_device(data.device))
    space_desc, data_desc, train_dict = space.describe(), data.describe(), cfg.to_dict()
    work = [GroundTruthJob(space=space_desc, data=spec, data_describe=data_desc, train=train_dict,
                           arch=arch, name=space.format(arch), seed=seed) for seed, arch in jobs]
    trained = 0
    diverged: list[dict] = []
    folder = None if tensorboard is None or not work else Path(tensorboard) / tensorboard_run(chash)
    monitor = tensorboard_monitor(folder)

    def on_result(job: GroundTruthJob, result: dict) -> None:
        nonlocal trained
        result = dict(result)
        epoch = result.pop("diverged_epoch", None)
        if epoch is not None:  # recorded as diverged, without accuracy: never a ground-truth value
            result["status"] = "diverged"
            diverged.append({"arch": job.name, "seed": job.seed, "epoch": epoch, "loss": result["train_loss"]})
            if log is not None:
                log(diverged_line(diverged[-1]))
        store.add_groundtruth({
            "space": space.name, "arch": job.name, "arch_index": space.index(job.arch),
            "dataset": data.name, "seed": job.seed, "config_hash": chash,
            "config_json": json.dumps(config, sort_keys=True),
            "code_version": version, **result,
        })
        trained += 1
        monitor.on_metrics("groundtruth", {k: result[k] for k in TENSORBOARD_COLUMNS if result.get(k) is not None},
                           total - len(jobs) + trained)  # the trainings of this config finished so far
        bar.set_postfix_str(f"seed {job.seed} arch {job.name}")
        bar.update(1)

    try:
        with monitor, Preloaded(space, space_desc, data, spec):
            executor.run(train_job, work, on_result=on_result)
            summary = GroundTruthSummary(
                config_hash=chash, total=total, trained=trained, skipped=total - len(jobs), diverged=diverged,
                **seed_stability(store, space, data.name, chash, [space.format(a) for a in archs], metric),
            )
            if summary.seed_taus:
                monitor.on_metrics("groundtruth", {"mean_seed_tau": summary.mean_seed_tau}, total)
    finally:
        bar.close()
    return summary


def diverged_line(job: dict) -> str:
    """What to say about a job that diverged (``GroundTruthSummary.diverged``)."""
    return (f"arch {job['arch']} seed {job['seed']} diverged at epoch {job['epoch']} (loss {job['loss']}); "
            "not stored as ground truth")


def seed_stability(store: Store, space: Space, dataset: str, chash: str, names: Sequence[str],
                   metric: str = "test_acc") -> dict:
    """Kendall tau between the rankings of every two seeds complete on ``names``."""
    by_seed: dict[int, dict[str, float]] = {}
    for row in store.groundtruth(space=space.name, dataset=dataset, config_hash=chash):
        if row["status"] == "done" and row[metric] is not None:  # a seed with a diverged arch is incomplete
            by_seed.setdefault(int(row["seed"]), {})[row["arch"]] = float(row[metric])
    complete = sorted(s for s, vals in by_seed.items() if all(n in vals for n in names))
    taus = {}
    for a, b in itertools.combinations(complete, 2):
        taus[(a, b)] = kendall_tau([by_seed[a][n] for n in names], [by_seed[b][n] for n in names])
    return {"seed_taus": taus, "complete_seeds": complete}


def run_groundtruth_with_best(space: Space, data: Dataset, cfg: TrainConfig, *, seeds: Sequence[int],
                              archs: Sequence[Arch], store: Store, progress: bool = True,
                              executor: Executor | None = None, best: int = 5,
                              log: Callable[[str], None] | None = None,
                              tensorboard: str | Path | None = None) -> dict:
    """:func:`run_groundtruth`, timed, and the best architectures of ``archs`` read back from ``store``.

    Returns ``{"summary": GroundTruthSummary, "seconds": wall time, "best": [(arch, accuracy)]}``:
    ``best`` holds the ``best`` architectures of ``archs`` with the highest mean test accuracy
    over the seeds stored under this run's config hash (:func:`truth_from_store`), best first
    (ties in the table's order; none when every training diverged).
    """
    start = time.perf_counter()
    summary = run_groundtruth(space, data, cfg, seeds=seeds, archs=archs, store=store, progress=progress,
                              executor=executor, log=log, tensorboard=tensorboard)
    if not store.groundtruth_values("test_acc", space=space.name, dataset=data.name,
                                    config_hash=summary.config_hash):
        return {"summary": summary, "seconds": time.perf_counter() - start, "best": []}
    table = truth_from_store(store, space=space.name, dataset=data.name, config_hash=summary.config_hash)
    names = {space.format(a) for a in archs}
    order = sorted((i for i, a in enumerate(table.archs) if a in names), key=lambda i: -table.accuracy[i])
    top = [(table.archs[i], float(table.accuracy[i])) for i in order[:best]]
    return {"summary": summary, "seconds": time.perf_counter() - start, "best": top}
