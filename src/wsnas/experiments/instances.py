"""Supernet instances of a study as independent executor jobs.

A study (several seeds, orders, sharing settings) trains many supernets that do not depend on
each other. Each one is a :class:`SupernetJob` handed to an :mod:`wsnas.execution.executor`: in this
process (``local``) or as a Ray task. The job trains its instance with a
:class:`~wsnas.training.trainer.RowCollector` in place of the store, so the rows (predictions and the
child each step trained) travel in its checkpoint and back to the driver, which alone writes
the store. A job whose worker dies is retried and resumes from the instance's last checkpoint
(``<run_dir>`` must be reachable by the workers: the same machine, or a shared file system);
an instance the store marks ``done`` is not run again.

With ``tensorboard`` (a folder) each job writes its instance's live curves into
``<folder>/<run_id>`` itself, as it trains (:class:`~wsnas.training.monitor.TensorBoardMonitor`;
with Ray the folder, like the run directory, must be reachable by the workers), GT-Tau after every
evaluation included when the driver passes the ground truth (``truth``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from wsnas.data import Dataset
from wsnas.execution.executor import Executor, LocalExecutor
from wsnas.execution.jobs import DataSpec, Preloaded, job_data, job_space, kill_hook
from wsnas.runs import Run, open_run, running
from wsnas.spaces import Space
from wsnas.store import Store
from wsnas.strategies import get_strategy
from wsnas.supernet.sharing import Sharing
from wsnas.training.monitor import tensorboard_monitor
from wsnas.training.trainer import RowCollector, SupernetConfig, SupernetTrainer, trainer_config


@dataclass(frozen=True)
class Instance:
    """One supernet of a study: its run id, strategy (with its ``options``, as ``(name, value)``
    pairs: ``(("credit", "path"),)``), seeds, sharing, and its own number of epochs where it
    differs from the study's (``epochs``; the sharing sweep's prefix rows)."""

    run_id: str
    run_dir: str
    strategy: str = "round_robin"
    seed: int = 0
    order_seed: int | None = None
    sharing: Sharing = field(default_factory=Sharing)
    options: tuple[tuple[str, Any], ...] = ()
    epochs: int | None = None

    def supernet_config(self, cfg: SupernetConfig) -> SupernetConfig:
        """``cfg`` with this instance's own number of epochs, if it has one."""
        if self.epochs is None:
            return cfg
        return dataclasses.replace(cfg, train=cfg.train.with_overrides(epochs=self.epochs))

    def build_strategy(self):
        """The instance's strategy; the trainer adapts it to ``sharing`` (``with_sharing``)."""
        options = dict(self.options)
        if self.order_seed is not None:
            options["order_seed"] = self.order_seed
        return get_strategy(self.strategy, **options)


@dataclass(frozen=True)
class SupernetJob:
    """An :class:`Instance` as it travels to a worker."""

    instance: Instance
    space: dict  # Space.describe()
    data: DataSpec
    data_describe: dict = field(repr=False)
    config: dict = field(repr=False)  # SupernetConfig.to_dict(execution=True)
    progress: bool = False
    tensorboard: str | None = None  # the folder of the instance's live curves (None: none)
    truth: tuple[tuple[str, float], ...] | None = field(default=None, repr=False)  # (child, accuracy): GT-Tau

    def __str__(self) -> str:
        return self.instance.run_id


def build_trainer(instance: Instance, space: Space, data: Dataset, cfg: SupernetConfig, *,
                  store=None, progress: bool = False) -> SupernetTrainer:
    """The trainer of ``instance`` (its checkpoint directory is ``instance.run_dir``); ``cfg`` is
    the study's, adapted to the instance (:meth:`Instance.supernet_config`)."""
    return SupernetTrainer(space, data, instance.build_strategy(), instance.supernet_config(cfg), seed=instance.seed,
                           run_dir=instance.run_dir, store=store, run_id=instance.run_id,
                           progress=progress, sharing=instance.sharing)


def supernet_job(job: SupernetJob) -> dict:
    """Train one instance (resuming from its checkpoint) and return every row it produced."""
    kill_hook()
    start = time.perf_counter()
    space = job_space(job.space)
    data = job_data(job.data, job.data_describe)
    collector = RowCollector()
    trainer = build_trainer(job.instance, space, data, SupernetConfig.from_dict(job.config),
                            store=collector, progress=job.progress)
    trainer.try_resume()
    with tensorboard_monitor(job.tensorboard, truth=None if job.truth is None else dict(job.truth)) as monitor:
        trainer.train(monitor=monitor)
    return {"predictions": collector.predictions, "train_steps": collector.train_steps,
            "run_metrics": collector.run_metrics,
            "history": list(trainer.history), "seconds": time.perf_counter() - start,
            "bank_bytes": trainer.bank.memory_bytes() if trainer.bank is not None else 0}


def run_instances(space: Space, data: Dataset, cfg: SupernetConfig, instances: Sequence[Instance], *,
                  store: Store, executor: Executor | None = None, progress: bool = True,
                  on_done: Callable[[Instance, dict], None] | None = None,
                  tensorboard: str | Path | None = None, truth: Mapping[str, float] | None = None) -> None:
    """Train every instance not yet ``done`` in ``store`` on ``executor``; write their rows here.

    ``on_done(instance, result)`` is called in the driver after an instance's rows are stored.
    ``tensorboard``: a folder for the instances' live curves, ``truth`` the children's ground-truth
    accuracies by name for their GT-Tau (the module docstring).
    """
    executor = executor or LocalExecutor()
    todo: dict[str, Run] = {}
    for inst in instances:
        config = trainer_config(space, data, inst.build_strategy(), inst.supernet_config(cfg), inst.seed,
                                inst.sharing)
        run = open_run(store, inst.run_id, "supernet", config, seed=inst.seed)
        if not run.done:
            todo[inst.run_id] = run
    if not todo:
        return
    spec = DataSpec.of(data, executor.worker_device(data.device))
    space_desc, data_desc = space.describe(), data.describe()
    local = isinstance(executor, LocalExecutor)
    jobs = [SupernetJob(instance=inst, space=space_desc, data=spec, data_describe=data_desc,
                        config=cfg.to_dict(execution=True), progress=progress and local,
                        tensorboard=None if tensorboard is None else str(Path(tensorboard) / inst.run_id),
                        truth=None if truth is None else tuple(truth.items()))
            for inst in instances if inst.run_id in todo]
    bar = tqdm(total=len(instances), initial=len(instances) - len(todo), desc="supernet instances",
               unit="run", disable=not progress, dynamic_ncols=True)

    def on_result(job: SupernetJob, result: dict) -> None:
        run_id = job.instance.run_id
        store.add_predictions(run_id, result["predictions"])
        store.add_train_steps(run_id, result["train_steps"])
        store.add_run_metrics(run_id, result["run_metrics"])
        todo[run_id].finish()
        bar.set_postfix_str(run_id)
        bar.update(1)
        if on_done is not None:
            on_done(job.instance, result)

    try:
        with running(*todo.values()), Preloaded(space, space_desc, data, spec):
            executor.run(supernet_job, jobs, on_result=on_result)
    finally:
        bar.close()


def load_final(instance: Instance, space: Space, data: Dataset, cfg: SupernetConfig) -> SupernetTrainer:
    """The trained instance, loaded from its last checkpoint (for fine-tuning or selection)."""
    from wsnas.core.errors import WsnasError

    trainer = build_trainer(instance, space, data, cfg)
    if not trainer.try_resume() or trainer.epoch < instance.supernet_config(cfg).train.epochs:
        raise WsnasError(f"no final checkpoint of {instance.run_id} in {Path(instance.run_dir)}; with a "
                         "remote Ray cluster the run directory must be on a shared file system")
    return trainer


__all__ = ["Instance", "SupernetJob", "build_trainer", "load_final", "run_instances", "supernet_job"]
