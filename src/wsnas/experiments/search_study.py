"""The differentiable-search comparison on the 64-child space, against its full ground truth.

For every seed: DARTS, GDAS and PC-DARTS, each with the softmax and the GAEA parametrisation,
each followed by every registered selection method (:func:`wsnas.selection.selection_names`:
magnitude and perturbation, PT); and a fixed-alpha supernet (DARTS, uniform mixing never
updated) followed by the methods that do not need learned architecture weights (PT). Every
selected child is looked up in the ground truth trained here (every child from scratch,
``gt_seeds`` seeds, reused from the store), so the study reports its true rank.
:func:`wsnas.analysis.search.analyse_search_study` reads its numbers back from the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset
from wsnas.execution.executor import Executor, LocalExecutor
from wsnas.execution.jobs import DataSpec, Preloaded, job_data, job_space, kill_hook
from wsnas.groundtruth.run import groundtruth_config, run_groundtruth
from wsnas.groundtruth.truth import truth_from_store
from wsnas.report.rundir import record_run_dir
from wsnas.report.search import write_search_report
from wsnas.runs import open_run, running
from wsnas.selection import PTConfig, get_selectors, ordered, selection_label, selection_names, selector_class
from wsnas.selection.search import SEARCH_DEFAULTS, search_supernet_config, select_all, truth_of
from wsnas.spaces import Space
from wsnas.store import Store, config_hash
from wsnas.strategies import get_strategy, strategy_names
from wsnas.training.monitor import tensorboard_monitor
from wsnas.training.standalone import TrainConfig, default_config
from wsnas.training.trainer import RowCollector, SupernetTrainer, trainer_config

STRATEGIES = strategy_names(differentiable=True)
PARAMS = ("softmax", "gaea")


@dataclass(frozen=True)
class SearchStudyConfig:
    seeds: int = 3
    strategies: tuple = STRATEGIES
    params: tuple = PARAMS
    fixed_alpha: bool = True
    search: TrainConfig = field(default_factory=lambda: SEARCH_DEFAULTS["digits"])
    pt: PTConfig = field(default_factory=PTConfig)
    gt_seeds: int = 2
    groundtruth: TrainConfig = field(default_factory=lambda: default_config("digits"))

    @classmethod
    def quick(cls, dataset: str = "digits") -> SearchStudyConfig:
        gt = default_config(dataset)
        return cls(seeds=1, search=SEARCH_DEFAULTS.get(dataset, SEARCH_DEFAULTS["cifar10"]).with_overrides(epochs=4),
                   pt=PTConfig(interval=1), groundtruth=gt.with_overrides(epochs=max(1, gt.epochs // 2)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strategies"], d["params"] = list(self.strategies), list(self.params)
        d["search"], d["groundtruth"] = self.search.to_dict(), self.groundtruth.to_dict()
        return d


def study_runs(experiment: str, cfg: SearchStudyConfig) -> list[dict]:
    """Every search of the study: run id, strategy, options and seed."""
    runs = []
    blind = [m for m in selection_names() if not selector_class(m).needs_alpha]  # for fixed alpha
    for seed in range(cfg.seeds):
        for strategy in cfg.strategies:
            for param in cfg.params:
                runs.append({"run_id": f"{experiment}/{strategy}-{param}/{seed}", "strategy": strategy,
                             "options": {"param": param}, "seed": seed, "select": list(selection_names()),
                             "label": f"{strategy}-{param}"})
        if cfg.fixed_alpha and blind:
            runs.append({"run_id": f"{experiment}/fixed-alpha/{seed}", "strategy": "darts",
                         "options": {"fixed_alpha": True}, "seed": seed, "select": blind, "label": "fixed-alpha"})
    return runs


def run_search_study(space: Space, data: Dataset, cfg: SearchStudyConfig, *, store: Store, run_dir: str | Path,
                     experiment: str = "search", progress: bool = True, log=print,
                     executor: Executor | None = None, tensorboard: str | Path | None = None) -> str:
    """Ground truth (reused when stored), then every search and its selections; resumable. ``tensorboard``:
    a folder for live curves (each search's in ``<folder>/<run_id>``, the ground truth's as
    :func:`wsnas.groundtruth.run.run_groundtruth` writes them)."""
    if space.name != "tiny64":
        raise WsnasError(f"the search study needs a space whose every child has ground truth (tiny64), "
                         f"not {space.name!r}")
    run_dir = Path(run_dir)
    gt_cfg = groundtruth_config(space, data, cfg.groundtruth)
    runs = study_runs(experiment, cfg)
    study = open_run(store, experiment, "search-study", {
        "space": space.describe(), "data": data.describe(), "study": cfg.to_dict(), "runs": runs,
        "groundtruth": {"config_hash": config_hash(gt_cfg), "seeds": list(range(cfg.gt_seeds))}})
    with running(study):
        _run_study(space, data, cfg, runs, store=store, run_dir=run_dir, progress=progress, log=log,
                   executor=executor, tensorboard=tensorboard)
    return experiment


def _run_study(space: Space, data: Dataset, cfg: SearchStudyConfig, runs: list[dict], *, store: Store,
               run_dir: Path, progress: bool, log, executor: Executor | None,
               tensorboard: str | Path | None = None) -> None:
    """Ground truth, then every search not yet done (jobs on ``executor``) and its selections."""
    log(f"[1/2] ground truth: {len(space)} children x {cfg.gt_seeds} seeds")
    gt = run_groundtruth(space, data, cfg.groundtruth, seeds=list(range(cfg.gt_seeds)), archs=list(space.enumerate()),
                         store=store, progress=progress, executor=executor, tensorboard=tensorboard)
    truth = truth_from_store(store, space=space.name, dataset=data.name, config_hash=gt.config_hash)
    methods = ordered({m for r in runs for m in r["select"]})
    log(f"[2/2] searches: {len(runs)} ({cfg.search.epochs} epochs each), selections "
        + " and ".join(selection_label(m) for m in methods))
    sn_cfg = search_supernet_config(cfg.search)
    executor = executor or LocalExecutor()
    spec = DataSpec.of(data, executor.worker_device(data.device))
    space_desc, data_desc = space.describe(), data.describe()
    jobs, searches = [], {}
    for r in runs:
        strategy = get_strategy(r["strategy"], **r["options"])
        config = {**trainer_config(space, data, strategy, sn_cfg, r["seed"]),
                  "search": {"select": list(r["select"]), "pt": cfg.pt.to_dict()}}
        search = open_run(store, r["run_id"], "search", config, seed=r["seed"])
        if search.done:
            continue
        searches[r["run_id"]] = search
        jobs.append(SearchJob(run_id=r["run_id"], run_dir=str(run_dir / r["run_id"].replace("/", "_")),
                              strategy=r["strategy"], options=dict(r["options"]), seed=r["seed"], space=space_desc,
                              data=spec, data_describe=data_desc, train=cfg.search.to_dict(),
                              select=tuple(r["select"]), pt=cfg.pt.to_dict(),
                              progress=progress and isinstance(executor, LocalExecutor),
                              tensorboard=None if tensorboard is None else str(Path(tensorboard) / r["run_id"])))

    def on_result(job: SearchJob, result: dict) -> None:
        store.add_run_metrics(job.run_id, result["run_metrics"])
        picks = []
        for pick in result["selections"]:
            acc, rank = truth_of(truth, space, space.parse(pick["arch"]))
            store.add_selection(job.run_id, {**pick, "truth": acc, "truth_rank": rank,
                                             "truth_source": "store" if acc is not None else None})
            picks.append(f"{pick['method']} {pick['arch']} (rank {rank})")
        searches[job.run_id].finish()
        log(f"      {job.run_id}: " + ", ".join(picks))

    with running(*searches.values()), Preloaded(space, space_desc, data, spec):
        executor.run(search_job, jobs, on_result=on_result)


def search_study(space: Space, data: Dataset, cfg: SearchStudyConfig, *, study_dir: str | Path,
                 progress: bool = True, log=print, executor: Executor | None = None,
                 tensorboard: str | Path | None = None) -> dict:
    """The whole study in ``study_dir`` (its store ``results.db``, runs under ``search/``), then its
    report; returns the report's paths (``html``, ``md``) and its ``findings`` lines."""
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    with Store(study_dir / "results.db") as store:
        experiment = run_search_study(space, data, cfg, store=store, run_dir=study_dir / "search",
                                      progress=progress, log=log, executor=executor, tensorboard=tensorboard)
        record_run_dir(study_dir / "search", store.path, experiment)  # for `wsnas report STUDY_DIR/search`
        return write_search_report(store, experiment, study_dir / "search")


@dataclass(frozen=True)
class SearchJob:
    """One search of the study and its selections, as it travels to a worker."""

    run_id: str
    run_dir: str
    strategy: str
    options: dict
    seed: int
    space: dict
    data: DataSpec
    data_describe: dict = field(repr=False)
    train: dict = field(repr=False)
    select: tuple = field(default_factory=selection_names)
    pt: dict = field(default_factory=dict, repr=False)
    progress: bool = False
    tensorboard: str | None = None  # the folder of the search's live curves (None: none)

    def __str__(self) -> str:
        return self.run_id


def search_job(job: SearchJob) -> dict:
    """Search (resuming from the run's checkpoint), then select; rows return to the driver."""
    kill_hook()
    space, data = job_space(job.space), job_data(job.data, job.data_describe)
    collector = RowCollector()
    trainer = SupernetTrainer(space, data, get_strategy(job.strategy, **job.options),
                              search_supernet_config(TrainConfig(**job.train)), seed=job.seed, run_dir=job.run_dir,
                              store=collector, run_id=job.run_id, archs=[], progress=job.progress)
    trainer.try_resume()
    with tensorboard_monitor(job.tensorboard) as monitor:
        trainer.train(monitor=monitor)
    picks = select_all(trainer, data, get_selectors(job.select, {"pt": job.pt}), progress=job.progress)
    return {"run_metrics": collector.run_metrics,
            "selections": [{"method": m, "arch": space.format(a), "arch_index": space.index(a), "seconds": sec}
                           for m, a, sec in picks]}


__all__ = ["PARAMS", "STRATEGIES", "SearchStudyConfig", "run_search_study", "search_study", "study_runs"]
