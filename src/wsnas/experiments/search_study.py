"""The differentiable-search comparison on the 64-child space, against its full ground truth.

For every seed: DARTS, GDAS and PC-DARTS, each with the softmax and the GAEA parametrisation,
each followed by magnitude and perturbation (PT) selection; and a fixed-alpha supernet (DARTS,
uniform mixing never updated) followed by PT. Every selected child is looked up in the ground
truth trained here (every child from scratch, ``gt_seeds`` seeds, reused from the store), so
the study reports its true rank. :func:`analyse_search_study` reads only the store.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset
from wsnas.execution.executor import Executor, LocalExecutor
from wsnas.execution.jobs import DataSpec, Preloaded, job_data, job_space, kill_hook
from wsnas.groundtruth.run import groundtruth_config, run_groundtruth
from wsnas.selection import PTConfig
from wsnas.selection.search import SEARCH_DEFAULTS, search_supernet_config, select_all, truth_of
from wsnas.spaces import Space, get_space
from wsnas.store import Store, config_hash
from wsnas.strategies import get_strategy, strategy_names
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
    for seed in range(cfg.seeds):
        for strategy in cfg.strategies:
            for param in cfg.params:
                runs.append({"run_id": f"{experiment}/{strategy}-{param}/{seed}", "strategy": strategy,
                             "options": {"param": param}, "seed": seed, "select": ["magnitude", "pt"],
                             "label": f"{strategy}-{param}"})
        if cfg.fixed_alpha:
            runs.append({"run_id": f"{experiment}/fixed-alpha/{seed}", "strategy": "darts",
                         "options": {"fixed_alpha": True}, "seed": seed, "select": ["pt"], "label": "fixed-alpha"})
    return runs


def run_search_study(space: Space, data: Dataset, cfg: SearchStudyConfig, *, store: Store, run_dir: str | Path,
                     experiment: str = "search", progress: bool = True, log=print,
                     executor: Executor | None = None) -> str:
    """Ground truth (reused when stored), then every search and its selections; resumable."""
    if space.name != "tiny64":
        raise WsnasError(f"the search study needs a space whose every child has ground truth (tiny64), "
                         f"not {space.name!r}")
    run_dir = Path(run_dir)
    gt_cfg = groundtruth_config(space, data, cfg.groundtruth)
    runs = study_runs(experiment, cfg)
    store.ensure_run(experiment, "search-study", {
        "space": space.describe(), "data": data.describe(), "study": cfg.to_dict(), "runs": runs,
        "groundtruth": {"config_hash": config_hash(gt_cfg), "seeds": list(range(cfg.gt_seeds))}})
    store.set_run_status(experiment, "running")
    log(f"[1/2] ground truth: {len(space)} children x {cfg.gt_seeds} seeds")
    gt = run_groundtruth(space, data, cfg.groundtruth, seeds=list(range(cfg.gt_seeds)), archs=list(space.enumerate()),
                         store=store, progress=progress, executor=executor)
    truth = store.truth_table(space=space.name, dataset=data.name, config_hash=gt.config_hash)
    log(f"[2/2] searches: {len(runs)} ({cfg.search.epochs} epochs each), selections magnitude and PT")
    sn_cfg = search_supernet_config(cfg.search)
    executor = executor or LocalExecutor()
    spec = DataSpec.of(data, executor.worker_device(data.device))
    space_desc, data_desc = space.describe(), data.describe()
    jobs = []
    for r in runs:
        strategy = get_strategy(r["strategy"], **r["options"])
        config = {**trainer_config(space, data, strategy, sn_cfg, r["seed"]),
                  "search": {"select": list(r["select"]), "pt": cfg.pt.to_dict()}}
        store.ensure_run(r["run_id"], "search", config, seed=r["seed"])
        if (store.get_run(r["run_id"]) or {}).get("status") == "done":
            continue
        jobs.append(SearchJob(run_id=r["run_id"], run_dir=str(run_dir / r["run_id"].replace("/", "_")),
                              strategy=r["strategy"], options=dict(r["options"]), seed=r["seed"], space=space_desc,
                              data=spec, data_describe=data_desc, train=cfg.search.to_dict(),
                              select=tuple(r["select"]), pt=cfg.pt.to_dict(),
                              progress=progress and isinstance(executor, LocalExecutor)))

    def on_result(job: SearchJob, result: dict) -> None:
        store.add_run_metrics(job.run_id, result["run_metrics"])
        picks = []
        for pick in result["selections"]:
            acc, rank = truth_of(truth, space, space.parse(pick["arch"]))
            store.add_selection(job.run_id, {**pick, "truth": acc, "truth_rank": rank,
                                             "truth_source": "store" if acc is not None else None})
            picks.append(f"{pick['method']} {pick['arch']} (rank {rank})")
        store.set_run_status(job.run_id, "done")
        log(f"      {job.run_id}: " + ", ".join(picks))

    with Preloaded(space, space_desc, data, spec):
        executor.run(search_job, jobs, on_result=on_result)
    store.set_run_status(experiment, "done")
    return experiment


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
    select: tuple = ("magnitude", "pt")
    pt: dict = field(default_factory=dict, repr=False)
    progress: bool = False

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
    trainer.train()
    picks = select_all(trainer, data, job.select, PTConfig(**job.pt), progress=job.progress)
    return {"run_metrics": collector.run_metrics,
            "selections": [{"method": m, "arch": space.format(a), "arch_index": space.index(a), "seconds": sec}
                           for m, a, sec in picks]}


def analyse_search_study(store: Store, experiment: str = "search") -> dict:
    """Per setting: mean true rank of the selected child per selection, final entropy, time."""
    run = store.get_run(experiment)
    if run is None or run["kind"] != "search-study":
        raise WsnasError(f"no search study {experiment!r} in {store.path}")
    cfg = run["config"]
    truth = store.truth_table(space=cfg["space"]["space"], dataset=cfg["data"]["name"],
                              config_hash=cfg["groundtruth"]["config_hash"])
    settings: dict[str, dict] = {}
    curves = []
    for r in cfg["runs"]:
        if store.get_run(r["run_id"]) is None:
            continue
        sel = {s["method"]: s for s in store.selections(r["run_id"])}
        entropy = store.run_metrics(r["run_id"], name="entropy")
        seconds = sum(m["value"] or 0.0 for m in store.run_metrics(r["run_id"], name="epoch_seconds"))
        free = store.run_metrics(r["run_id"], name="param_free_ops")
        s = settings.setdefault(r["label"], {"label": r["label"], "runs": []})
        s["runs"].append({"run_id": r["run_id"], "seed": r["seed"], "selections": sel,
                          "entropy": entropy[-1]["value"] if entropy else None,
                          "param_free_ops": free[-1]["value"] if free else None, "search_seconds": seconds})
        if entropy:
            argmax = {m["epoch"]: m["value"] for m in store.run_metrics(r["run_id"], name="argmax_index")}
            truth_acc = [float(truth.accuracy[truth.position(int(argmax[m["epoch"]]))])
                         if argmax.get(m["epoch"]) is not None else None for m in entropy]
            curves.append({"label": r["label"], "seed": r["seed"], "epochs": [m["epoch"] for m in entropy],
                           "entropy": [m["value"] for m in entropy], "argmax_truth": truth_acc})
    for s in settings.values():
        for method in ("magnitude", "pt"):
            ranks = [x["selections"][method]["truth_rank"] for x in s["runs"]
                     if method in x["selections"] and x["selections"][method]["truth_rank"] is not None]
            accs = [x["selections"][method]["truth"] for x in s["runs"]
                    if method in x["selections"] and x["selections"][method]["truth"] is not None]
            s[method] = {"n": len(ranks), "rank": float(np.mean(ranks)) if ranks else None,
                         "best_rank": min(ranks) if ranks else None,
                         "accuracy": float(np.mean(accs)) if accs else None}
        ent = [x["entropy"] for x in s["runs"] if x["entropy"] is not None]
        s["entropy"] = float(np.mean(ent)) if ent else None
        free = [x["param_free_ops"] for x in s["runs"] if x["param_free_ops"] is not None]
        s["param_free_ops"] = float(np.mean(free)) if free else None
        s["search_seconds"] = float(np.mean([x["search_seconds"] for x in s["runs"]]))
    n = len(truth)
    result = {"experiment": experiment, "status": run["status"], "config": cfg, "settings": settings,
              "curves": curves, "truth": {"n": n, "best": float(np.nanmax(truth.accuracy)),
                                          "random_rank": (n + 1) / 2,
                                          "max_entropy": math.log(_n_ops(cfg["space"]))}}
    result["findings"] = search_findings(result)
    return result


def _n_ops(described: dict) -> int:
    options = dict(described)
    return len(get_space(options.pop("space"), **options).relaxation().options)


def search_findings(a: dict) -> list[dict]:
    """The papers' claims, each checked on this data."""
    out = []
    settings = a["settings"]
    pairs = [(s, settings.get(f"{s}-softmax"), settings.get(f"{s}-gaea")) for s in STRATEGIES]
    pairs = [(s, soft, gaea) for s, soft, gaea in pairs if soft and gaea and soft["entropy"] is not None
             and gaea["entropy"] is not None]
    if pairs:
        lower = [s for s, soft, gaea in pairs if gaea["entropy"] < soft["entropy"]]
        out.append({"claim": "GAEA's architecture weights are sparser (lower entropy) than softmax's",
                    "holds": len(lower) == len(pairs),
                    "evidence": "; ".join(f"{s}: {gaea['entropy']:.4f} vs {soft['entropy']:.4f}"
                                          for s, soft, gaea in pairs)
                                + " (final mean entropy in nats, GAEA vs softmax; uniform "
                                + f"{a['truth']['max_entropy']:.4f})"})
    both = [(s["magnitude"]["rank"], s["pt"]["rank"]) for s in settings.values()
            if s.get("magnitude", {}).get("rank") is not None and s.get("pt", {}).get("rank") is not None]
    if both:
        mag, pt = float(np.mean([b[0] for b in both])), float(np.mean([b[1] for b in both]))
        out.append({"claim": "perturbation-based selection picks better children than the argmax of alpha",
                    "holds": pt < mag,
                    "evidence": f"mean true rank of the selected child {pt:.1f} with PT vs {mag:.1f} with magnitude "
                                f"over {len(both)} settings (1 = best of {a['truth']['n']}; chance "
                                f"{a['truth']['random_rank']:.1f})"})
    fixed, darts = settings.get("fixed-alpha"), settings.get("darts-softmax")
    if fixed and darts and fixed.get("pt", {}).get("rank") is not None and \
            darts.get("magnitude", {}).get("rank") is not None:
        f, d = fixed["pt"]["rank"], darts["magnitude"]["rank"]
        out.append({"claim": "a fixed-alpha supernet with PT selects better than DARTS with the argmax",
                    "holds": f < d,
                    "evidence": f"mean true rank {f:.1f} vs {d:.1f} (paper, NB201 CIFAR-10: 93.80% vs 54.30%)"})
    return out


__all__ = ["PARAMS", "STRATEGIES", "SearchStudyConfig", "analyse_search_study", "run_search_study", "study_runs"]
