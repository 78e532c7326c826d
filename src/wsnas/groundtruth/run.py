"""Ground truth for many architectures: independent from-scratch trainings, stored one by one.

Each (architecture, seed) pair is one job. A job's result is committed to the store the moment
it finishes, keyed by its full identity (space, architecture, dataset, seed, epochs, config
hash), so an interrupted run loses at most the job in flight and a rerun skips what is done.

The jobs run on an :mod:`wsnas.executor`: in this process (the default) or as Ray tasks. A job
is small (the space's settings, a dataset spec, the training config, the architecture and the
seed); a worker rebuilds the space and loads the dataset once per process (:func:`train_job`),
and only the driver writes the store.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from wsnas.data import Dataset, load_dataset
from wsnas.errors import WsnasError
from wsnas.executor import Executor, LocalExecutor
from wsnas.groundtruth.train import TrainConfig, train_from_scratch
from wsnas.metrics import kendall_tau
from wsnas.spaces import Arch, Space, get_space
from wsnas.store import Store, code_version, config_hash


def groundtruth_config(space: Space, data: Dataset, cfg: TrainConfig) -> dict:
    """Everything that defines a ground-truth training except the architecture and seed."""
    return {"space": space.describe(), "data": data.describe(), "train": cfg.to_dict()}


def train_one(space: Space, arch: Arch, data: Dataset, cfg: TrainConfig, seed: int) -> dict:
    """Train one architecture from scratch under ``seed`` (initial weights and batch order)."""
    torch.manual_seed(seed)
    model = space.build_network(arch, num_classes=data.num_classes, in_channels=data.in_channels)
    return train_from_scratch(model, data, cfg, seed)


@dataclass(frozen=True)
class DataSpec:
    """What a worker needs to load the driver's dataset itself: small and picklable."""

    name: str
    data_dir: str | None = None
    split_seed: int = 0
    device: str = "cpu"
    options: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, data: Dataset, device: str | None = None) -> DataSpec:
        """The spec that reloads ``data`` (on ``device``, default the data's own)."""
        data_dir = data.source if data.source and Path(data.source).is_dir() else None
        options: dict = {"augment": data.augment}
        if data.name == "cifar10":
            options["valid_size"] = len(data.valid)
        return cls(name=data.name, data_dir=data_dir, split_seed=int(data.split_seed),
                   device=str(device or data.device), options=tuple(sorted(options.items())))

    def load(self) -> Dataset:
        return load_dataset(self.name, data_dir=self.data_dir, device=self.device,
                            split_seed=self.split_seed, **dict(self.options))


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


# Per-process cache of rebuilt spaces and loaded datasets: a worker loads each once.
_CACHE: dict[str, object] = {}

#: Test hook: when set to a directory, the first job to start (over all workers) writes its PID
#: to DIR/worker.pid and waits there (up to 120 s) to be killed; its retry then runs normally.
KILL_HOOK_ENV = "WSNAS_TEST_KILL_DIR"


def _key(kind: str, value) -> str:
    return kind + ":" + json.dumps(value, sort_keys=True, default=str)


def _job_space(job: GroundTruthJob) -> Space:
    key = _key("space", job.space)
    if key not in _CACHE:
        options = dict(job.space)
        _CACHE[key] = get_space(options.pop("space"), **options)
    return _CACHE[key]  # type: ignore[return-value]


def _job_data(job: GroundTruthJob) -> Dataset:
    key = _key("data", job.data)
    if key not in _CACHE:
        data = job.data.load()
        if data.describe() != job.data_describe:
            raise WsnasError(f"the dataset loaded from {job.data} differs from the driver's")
        _CACHE[key] = data
    return _CACHE[key]  # type: ignore[return-value]


def _kill_hook() -> None:
    folder = os.environ.get(KILL_HOOK_ENV)
    if not folder:
        return
    try:
        fd = os.open(Path(folder) / "worker.pid", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)


def train_job(job: GroundTruthJob) -> dict:
    """Run one job (the executors' job function): train ``job.arch`` under ``job.seed``."""
    _kill_hook()
    return train_one(_job_space(job), job.arch, _job_data(job), TrainConfig(**job.train), job.seed)


class _Preloaded:
    """Put the driver's own space and dataset in the cache for the jobs run in this process."""

    def __init__(self, jobs: Sequence[GroundTruthJob], space: Space, data: Dataset) -> None:
        self.keys = {}
        if jobs:
            self.keys = {_key("space", jobs[0].space): space, _key("data", jobs[0].data): data}

    def __enter__(self) -> None:
        self.added = [k for k in self.keys if k not in _CACHE]
        _CACHE.update({k: self.keys[k] for k in self.added})

    def __exit__(self, *exc) -> None:
        for k in self.added:
            _CACHE.pop(k, None)


@dataclass
class GroundTruthSummary:
    """What a ground-truth run did and how stable its ranking is across seeds."""

    config_hash: str
    total: int
    trained: int
    skipped: int
    seed_taus: dict[tuple[int, int], float]
    complete_seeds: list[int]

    @property
    def mean_seed_tau(self) -> float:
        return float(np.mean(list(self.seed_taus.values()))) if self.seed_taus else float("nan")


def run_groundtruth(space: Space, data: Dataset, cfg: TrainConfig, *, seeds: Sequence[int],
                    archs: Sequence[Arch], store: Store, progress: bool = True,
                    metric: str = "test_acc", executor: Executor | None = None) -> GroundTruthSummary:
    """Train every architecture for every seed (seed-major), skipping jobs already stored.

    The jobs run on ``executor`` (default: in this process, in order); each result is written
    to ``store`` here, in the driver, as soon as it arrives.
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

    def on_result(job: GroundTruthJob, result: dict) -> None:
        nonlocal trained
        store.add_groundtruth({
            "space": space.name, "arch": job.name, "arch_index": space.index(job.arch),
            "dataset": data.name, "seed": job.seed, "config_hash": chash,
            "config_json": json.dumps(config, sort_keys=True),
            "code_version": version, **result,
        })
        trained += 1
        bar.set_postfix_str(f"seed {job.seed} arch {job.name}")
        bar.update(1)

    try:
        with _Preloaded(work, space, data):
            executor.run(train_job, work, on_result=on_result)
    finally:
        bar.close()
    return GroundTruthSummary(
        config_hash=chash, total=total, trained=trained, skipped=total - len(jobs),
        **seed_stability(store, space, data.name, chash, [space.format(a) for a in archs], metric),
    )


def seed_stability(store: Store, space: Space, dataset: str, chash: str, names: Sequence[str],
                   metric: str = "test_acc") -> dict:
    """Kendall tau between the rankings of every two seeds complete on ``names``."""
    by_seed: dict[int, dict[str, float]] = {}
    for row in store.groundtruth(space=space.name, dataset=dataset, config_hash=chash):
        by_seed.setdefault(int(row["seed"]), {})[row["arch"]] = float(row[metric])
    complete = sorted(s for s, vals in by_seed.items() if all(n in vals for n in names))
    taus = {}
    for a, b in itertools.combinations(complete, 2):
        taus[(a, b)] = kendall_tau([by_seed[a][n] for n in names], [by_seed[b][n] for n in names])
    return {"seed_taus": taus, "complete_seeds": complete}
