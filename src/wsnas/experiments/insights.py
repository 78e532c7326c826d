"""The 64-child insights study (Zhang et al., 2020), end to end.

Steps, each resumable (the store and per-instance checkpoints hold everything done):

1. ground truth: every child trained from scratch for ``gt_seeds`` seeds (reused if stored);
2. supernets, one instance per (group, k):
   * ``seeds``   — round-robin order, instance k uses seed k (initial weights and data order);
   * ``orders``  — seed 0, one fixed random order of the children drawn with order seed k;
   * ``shuffle`` — seed 0, a fresh random order every 64 steps drawn with order seed 1000 + k;
   every child is evaluated after every epoch and after each of the last ``dense_last``
   mini-batches;
3. fine-tuning of every child from the final snapshot of instance ``seeds/0``.

With ``sharing`` every instance uses that partial-sharing setting (:mod:`wsnas.supernet.sharing`).
A sharing sweep (``sweep``) adds one round-robin instance (seed 0) per sharing setting, run
ids ``<experiment>/sharing/<label>``: the paper's Table 3.

A strategy comparison (``strategies``, the PA&DA study) adds ``strategy_seeds`` instances per
entry (seed k), run ids ``<experiment>/strategies/<label>/<k>``, with the gradient-variance
monitor on (``grad_window``). An entry is a single-path strategy with optional options,
``name[:KEY=VALUE]...`` (``pada:credit=path``; :func:`parse_strategy_entry`); its label is the
strategy's comparison name followed by the options that differ from their defaults, so an entry
without options keeps the plain name (``pada``) and the run ids of studies made before options.

The supernet instances are independent jobs on the executor (:mod:`wsnas.experiments.instances`).

The experiment is recorded as a run of kind ``insights`` whose config lists its instances;
:mod:`wsnas.analysis.insights` and the report read only the store.

:func:`run_insights` runs (or continues) the study in a given store; :func:`insights_study`
(``wsnas insights``) opens the study's store (``RUN_DIR/results.db`` by default), runs it and
then writes its report (:func:`wsnas.report.write_insights_report`) into :func:`report_dir`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from wsnas.analysis.comparison import option_text
from wsnas.analysis.insights import dense_window
from wsnas.core.errors import WsnasError
from wsnas.data import Dataset
from wsnas.evaluator import EvalConfig
from wsnas.execution.executor import Executor
from wsnas.experiments.instances import Instance, load_final, run_instances
from wsnas.groundtruth.run import groundtruth_config, run_groundtruth
from wsnas.groundtruth.truth import resolve_truth
from wsnas.report import write_insights_report
from wsnas.report.rundir import record_run_dir
from wsnas.runs import open_run, running
from wsnas.spaces import Space
from wsnas.store import Store, config_hash
from wsnas.strategies import get_strategy, strategy_names, strategy_options
from wsnas.supernet.sharing import BUDGETS, check_sharing, parse_sharing
from wsnas.training.finetune import FinetuneConfig, run_finetune
from wsnas.training.standalone import TrainConfig, default_config
from wsnas.training.trainer import SupernetConfig

GROUPS = {"seeds": "round_robin", "orders": "fixed_order", "shuffle": "shuffle"}

# The sharing sweep (algorithms.md 1.5): group sharing with M in {1, 2, 4, ..., 64} under the
# similarity and the random partition (M = 1 and M = 64 are the same for both), and prefix
# sharing with K in {0, ..., 4}.
SWEEP_SHARING: tuple[str, ...] = (
    ("full",)
    + tuple(f"group:{m}:{p}" for m in (2, 4, 8, 16, 32) for p in ("similarity", "random"))
    + ("group:64",)
    + tuple(f"prefix:{k}" for k in range(5))
)
# Supernet epochs of the sweep where they differ from the main study's: group sharing under the
# paper's protocol costs M times a supernet, 194 supernets for the whole sweep. On digits 10
# epochs (with M = 64 every child trains 10 epochs alone; full sharing: 170 mini-batches), and 2
# with --quick. CIFAR-10 keeps the paper's 200.
SWEEP_EPOCHS = {"digits": 10}
SWEEP_EPOCHS_QUICK = {"digits": 2}
# Prefix sharing trains every child's private cells on 1/64 of the mini-batches, so the paper's
# prefix rows come from 2000-epoch supernets against the 200 epochs of the rest of Table 3
# (algorithms.md 1.5): the sweep gives its prefix rows this many times its epochs unless
# --prefix-epochs says otherwise.
PREFIX_EPOCH_FACTOR = 10
# --quick: the settings the paper publishes numbers for, at a fraction of the compute
SWEEP_SHARING_QUICK: tuple[str, ...] = ("full", "group:4", "group:16", "group:16:random", "group:64",
                                        "prefix:0", "prefix:2")

# The strategy comparison (algorithms.md 5, issue: PA&DA): PA&DA, its two halves, and the
# baselines the authors compare with in the same harness. Each strategy trains
# ``strategy_seeds`` instances (seed k: initial weights, data order and the strategy's own
# sampling) with the gradient-variance monitor on.
COMPARE_STRATEGIES: tuple[str, ...] = ("spos", "fairnas", "pada-path", "pada-data", "pada")
# single-path strategies a comparison accepts (differentiable search has its own study)
# every single-path strategy of the registry, as the comparison labels it (and SPOS's name)
COMPARABLE = ("spos", *(n.replace("_", "-") for n in strategy_names(differentiable=False)))
COMPARE_GRAD_WINDOW = 16  # steps per gradient-variance window in a comparison (digits: ~1 epoch)


# Supernet budgets per dataset. CIFAR-10: the paper (200 epochs at batch 256). Digits: 20 epochs
# at batch 64 = 340 mini-batches, about 5 per child, chosen by studies/defaults.py (issue 17; the
# table is in docs/defaults.md): against the 2-epoch ground truth, 3 round-robin supernets score
# a final GT-Tau of 0.39 after 5 epochs, 0.26 after 10, 0.44 after 20, 0.01 after 30 (the old
# default) and -0.03 after 60 -- longer training ranks by something the ground truth does not
# measure -- and 20 epochs is the budget at which every BN mode ranks best (batch statistics
# 0.54, recalibrated 0.53, running 0.44).
SUPERNET_DEFAULTS: dict[str, TrainConfig] = {
    "cifar10": TrainConfig(epochs=200, batch_size=256),
    "digits": TrainConfig(epochs=20, batch_size=64),
}


# Dense evaluation on digits after every 2nd of the last 64 mini-batches (the paper: each; CIFAR-10
# keeps it). Measured on the 20-epoch main job (docs/defaults.md, "The time"): from the same
# nine supernets, every 2nd evaluation gives GT-Tau-Mean-64 within 0.025 of every one for each
# instance, the latest-trained child's mean rank 22.7 against 22.2 (in the top quarter 46% of
# the time both ways), while the study takes 25 min instead of the 15 the main job may take;
# every 4th moves an instance's mean by up to 0.05. What it costs: the change of every child's
# accuracy across one step (the interference matrix) needs consecutive evaluations, so it is
# measured with --dense-every 1.
DENSE_EVERY: dict[str, int] = {"digits": 2}


@dataclass(frozen=True)
class InsightsConfig:
    """Budget of the study; :meth:`for_dataset` and :meth:`quick` give the defaults."""

    gt_seeds: int = 2
    groundtruth: TrainConfig = field(default_factory=lambda: default_config("digits"))
    supernet: TrainConfig = field(default_factory=lambda: SUPERNET_DEFAULTS["digits"])
    instances: dict = field(default_factory=lambda: {"seeds": 3, "orders": 3, "shuffle": 3})
    dense_last: int = 64
    dense_every: int = 1  # evaluate after every n-th of the last dense_last mini-batches
    finetune_steps: int = 10
    eval: EvalConfig = field(default_factory=EvalConfig)
    sharing: str = "full"  # the sharing of every instance of the groups above
    budget: str = "paper"  # group sharing's budget: paper (M x compute) or equal
    sweep: tuple = ()  # sharing settings, one round-robin instance each
    strategies: tuple = ()  # strategy comparison: these strategies, strategy_seeds instances each
    strategy_seeds: int = 3
    grad_window: int = 0  # gradient-variance window of every supernet (0: off)
    prefix_epochs: int | None = None  # epochs of the sweep's prefix rows (None: the supernet's)

    @classmethod
    def for_dataset(cls, dataset: str) -> InsightsConfig:
        return cls(groundtruth=default_config(dataset),
                   supernet=SUPERNET_DEFAULTS.get(dataset, SUPERNET_DEFAULTS["cifar10"]),
                   dense_every=DENSE_EVERY.get(dataset, 1))

    @classmethod
    def quick(cls, dataset: str = "digits") -> InsightsConfig:
        """A small budget for trying the study out (about two minutes on digits)."""
        full = cls.for_dataset(dataset)
        return cls(
            gt_seeds=2,
            groundtruth=full.groundtruth.with_overrides(epochs=max(1, full.groundtruth.epochs // 2)),
            supernet=full.supernet.with_overrides(epochs=max(1, full.supernet.epochs // 4)),
            instances={"seeds": 2, "orders": 2, "shuffle": 0},
            dense_last=8,
            dense_every=1,
            finetune_steps=3,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eval"] = self.eval.to_dict()
        d["groundtruth"], d["supernet"] = self.groundtruth.to_dict(), self.supernet.to_dict()
        d["sweep"] = list(self.sweep)
        d["strategies"] = list(self.strategies)
        if not self.sweep and self.sharing == "full" and self.budget == "paper":
            for key in ("sharing", "budget", "sweep"):  # the identity of studies made before sharing
                del d[key]
        if not self.strategies:
            del d["strategies"], d["strategy_seeds"]  # the identity of studies made before comparisons
        if not self.grad_window:
            del d["grad_window"]
        if self.prefix_epochs is None:
            del d["prefix_epochs"]  # the identity of studies made before prefix budgets
        if self.dense_every == 1:
            del d["dense_every"]  # the identity of studies made before the stride
        return d

    def validate(self) -> InsightsConfig:
        bad = [g for g in self.instances if g not in GROUPS]
        if bad:
            raise WsnasError(f"unknown instance group {bad[0]!r}; accepted: {', '.join(GROUPS)}")
        if self.gt_seeds < 1:
            raise WsnasError(f"ground-truth seeds must be at least 1, got {self.gt_seeds}")
        if any(n < 0 for n in self.instances.values()):
            raise WsnasError("instance counts must be non-negative")
        if self.prefix_epochs is not None and self.prefix_epochs < 1:
            raise WsnasError(f"prefix epochs must be at least 1, got {self.prefix_epochs}")
        if self.dense_last < 0 or self.finetune_steps < 0:
            raise WsnasError("dense_last and finetune_steps must be non-negative")
        if isinstance(self.dense_every, bool) or not isinstance(self.dense_every, int) or self.dense_every < 1:
            raise WsnasError(f"dense_every must be a positive integer, got {self.dense_every!r}")
        if self.budget not in BUDGETS:
            raise WsnasError(f"unknown sharing budget {self.budget!r}; accepted: {', '.join(BUDGETS)}")
        for spec in (self.sharing, *self.sweep):
            parse_sharing(spec)
        labels = [parse_strategy_entry(spec).label for spec in self.strategies]
        if len(set(labels)) != len(labels):
            twice = next(label for label in labels if labels.count(label) > 1)
            raise WsnasError(f"a strategy is listed twice in {', '.join(self.strategies)} ({twice})")
        if self.strategies and (self.sharing != "full" or self.sweep):
            raise WsnasError("a strategy comparison trains fully shared supernets; "
                             "it does not combine with --sharing or --sweep")
        if self.strategies and self.strategy_seeds < 1:
            raise WsnasError(f"a strategy comparison needs at least one seed, got {self.strategy_seeds}")
        if self.grad_window < 0:
            raise WsnasError(f"the gradient-variance window must be non-negative, got {self.grad_window}")
        if not any(self.instances.values()) and not self.sweep and not self.strategies:
            raise WsnasError("no supernet instances: give seeds, orders, shuffles, a sweep or strategies")
        return self


def sweep_runs(experiment: str, cfg: InsightsConfig) -> dict[str, str]:
    """Run id of each sharing setting of the sweep (by its canonical label)."""
    labels = [parse_sharing(s, budget=cfg.budget).label for s in cfg.sweep]
    return {label: f"{experiment}/sharing/{label}" for label in dict.fromkeys(labels)}


def canonical_strategy(name: str) -> str:
    """A strategy's name as the comparison labels it (``pada_path`` -> ``pada-path``,
    ``uniform`` -> ``spos``)."""
    key = name.strip().lower().replace("_", "-")
    return {"uniform": "spos", "rr": "round-robin", "random-order": "fixed-order",
            "reshuffle": "shuffle"}.get(key, key)


@dataclass(frozen=True)
class StrategyEntry:
    """One entry of a comparison: a strategy (its comparison name, :func:`canonical_strategy`)
    and the options it is built with that differ from their defaults (sorted by name)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """The entry's label (run ids, the report): ``pada``, ``pada:credit=path``."""
        return self.name + "".join(f":{key}={option_text(value)}" for key, value in self.options)

    @property
    def defaults(self) -> dict[str, Any]:
        """The defaults of the options this entry sets."""
        accepted = strategy_options(self.name)
        return {key: accepted[key] for key, _ in self.options}


def _option_value(spec: str, key: str, text: str, default: Any) -> Any:
    """``text`` as a value of option ``key`` of the type of its ``default``."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise WsnasError(f"strategy entry {spec!r}: option {key} takes true or false, not {text!r}")
        return text.lower() == "true"
    for cast, what in ((int, "an integer"), (float, "a number")):
        if isinstance(default, cast):
            try:
                return cast(text)
            except ValueError:
                raise WsnasError(f"strategy entry {spec!r}: option {key} takes {what}, not {text!r}") from None
    return text


def parse_strategy_entry(spec: str) -> StrategyEntry:
    """An entry of ``--strategy``: ``name[:KEY=VALUE]...`` (``pada:credit=path``).

    ``name`` is a single-path strategy (any spelling :func:`canonical_strategy` knows); the
    options are those it takes by keyword (:func:`wsnas.strategies.strategy_options`: ``pada``
    and ``pada-path``: ``credit=ops|path``, ``per_edge=true|false``), each checked by building the
    strategy. An option at its default is dropped, so ``pada:credit=ops`` is the entry ``pada``.
    Raises :class:`WsnasError` (one line, naming the entry) for anything else.
    """
    head, *parts = spec.strip().split(":")
    name = canonical_strategy(head)
    if name not in COMPARABLE:
        raise WsnasError(f"strategy {head.strip()!r} cannot be compared here; accepted: "
                         f"{', '.join(COMPARE_STRATEGIES)} (or round-robin, fixed-order, shuffle), each "
                         "with optional :KEY=VALUE options, e.g. pada:credit=path")
    accepted = strategy_options(name)
    options: dict[str, Any] = {}
    for part in parts:
        if "=" not in part:
            raise WsnasError(f"strategy entry {spec!r}: option {part!r} must look like KEY=VALUE, "
                             "e.g. pada:credit=path")
        key, text = (t.strip() for t in part.split("=", 1))
        key = key.replace("-", "_")
        if key not in accepted:
            known = ", ".join(f"{k} (default {option_text(v)})" for k, v in accepted.items()) or "none"
            raise WsnasError(f"strategy entry {spec!r}: {name} has no option {key!r}; accepted: {known}")
        if key in options:
            raise WsnasError(f"strategy entry {spec!r}: option {key} is given twice")
        options[key] = _option_value(spec, key, text, accepted[key])
    try:
        get_strategy(name, **options)  # the strategy's own checks of the values
    except WsnasError as exc:
        raise WsnasError(f"strategy entry {spec!r}: {exc}") from None
    return StrategyEntry(name, tuple(sorted((k, v) for k, v in options.items() if v != accepted[k])))


def strategy_entries(cfg: InsightsConfig) -> list[StrategyEntry]:
    """The comparison's entries, in the order given."""
    return [parse_strategy_entry(spec) for spec in cfg.strategies]


def comparison_runs(experiment: str, cfg: InsightsConfig) -> dict[str, list[str]]:
    """Run ids of the strategy comparison by entry label: ``<experiment>/strategies/<label>/<k>``."""
    return {e.label: [f"{experiment}/strategies/{e.label}/{k}" for k in range(cfg.strategy_seeds)]
            for e in strategy_entries(cfg)}


def folder_name(label: str) -> str:
    """A directory name for an instance's label (``group:16:random@2``, ``pada:credit=path``)."""
    return label.replace(":", "-").replace("@", "-").replace("=", "-").replace("/", "_")


def study_instances(experiment: str, cfg: InsightsConfig, run_dir: Path) -> list[Instance]:
    """Every supernet instance of the study, in the order they are run.

    Each instance keeps its checkpoints in a folder of its own: under ``run_dir`` for the
    experiment's default id (``insights``, ``sharing``, ``strategies``: the layout of earlier
    studies), under ``run_dir/<experiment>`` for any other id, so that experiments sharing a run
    directory never share a checkpoint."""
    out = []
    if experiment != default_experiment(cfg):
        run_dir = report_dir(run_dir, experiment)
    sharing = parse_sharing(cfg.sharing, budget=cfg.budget)
    for group, ids in instance_runs(experiment, cfg).items():
        for k, run_id in enumerate(ids):
            seed = k if group == "seeds" else 0
            # order seeds of the two order groups differ so that no two instances share a cycle
            order_seed = None if group == "seeds" else k + (0 if group == "orders" else 1000)
            out.append(Instance(run_id=run_id, run_dir=str(run_dir / "supernets" / f"{group}-{k}"),
                                strategy=GROUPS[group], seed=seed, order_seed=order_seed, sharing=sharing))
    for label, run_id in sweep_runs(experiment, cfg).items():
        sharing = parse_sharing(label, budget=cfg.budget)
        out.append(Instance(run_id=run_id, run_dir=str(run_dir / "sharing" / folder_name(label)),
                            strategy="round_robin", seed=0, sharing=sharing,
                            epochs=sweep_epochs(cfg, label) if sharing.kind == "prefix" else None))
    for entry, ids in zip(strategy_entries(cfg), comparison_runs(experiment, cfg).values()):
        for k, run_id in enumerate(ids):
            out.append(Instance(run_id=run_id, run_dir=str(run_dir / "strategies" / f"{folder_name(entry.label)}-{k}"),
                                strategy=entry.name, seed=k, options=entry.options,
                                order_seed=k if entry.name == "fixed-order" else None))
    return out


def sweep_epochs(cfg: InsightsConfig, label: str) -> int:
    """Supernet epochs of the sweep's setting ``label``: ``prefix_epochs`` for prefix sharing
    (when set), else the study's."""
    if cfg.prefix_epochs is not None and parse_sharing(label).kind == "prefix":
        return cfg.prefix_epochs
    return cfg.supernet.epochs


def report_dir(run_dir: str | Path, experiment: str) -> Path:
    """Where an experiment's report (and its ``experiment.json``) goes: the run directory for
    the main study ``insights``, ``RUN_DIR/<experiment>`` for any other (e.g. the sharing sweep)."""
    return Path(run_dir) if experiment == "insights" else Path(run_dir) / experiment


def instance_runs(experiment: str, cfg: InsightsConfig) -> dict[str, list[str]]:
    return {g: [f"{experiment}/{g}/{k}" for k in range(n)] for g, n in cfg.instances.items() if n}


def run_insights(space: Space, data: Dataset, cfg: InsightsConfig, *, run_dir: str | Path,
                 store: Store, experiment: str = "insights", truth: str = "store",
                 progress: bool = True, log=print, executor: Executor | None = None,
                 tensorboard: str | Path | None = None) -> str:
    """Run (or continue) the whole study; returns the experiment's run id.

    ``executor`` runs the ground-truth trainings and the supernet instances (default: in this
    process). ``tensorboard``: a folder for live curves, every supernet instance's in
    ``<folder>/<run_id>`` (with its GT-Tau against the study's ground truth after every
    evaluation) and the ground truth's accuracies (:func:`wsnas.groundtruth.run.run_groundtruth`).
    """
    cfg.validate()
    run_dir = Path(run_dir)
    runs = instance_runs(experiment, cfg)
    instances = study_instances(experiment, cfg, run_dir)
    for sharing in {i.sharing for i in instances}:
        check_sharing(space, sharing)  # before any training
    gt_cfg = groundtruth_config(space, data, cfg.groundtruth)
    sn_cfg = SupernetConfig(train=cfg.supernet, eval=cfg.eval, dense_last=cfg.dense_last,
                            dense_every=cfg.dense_every, grad_window=cfg.grad_window)
    first = runs.get("seeds", [None])[0] or next(iter(runs.values()), [None])[0]
    finetune_run = f"{experiment}/finetune" if cfg.finetune_steps and first else None
    sweep = sweep_runs(experiment, cfg)
    exp_config = {
        "space": space.describe(), "data": data.describe(), "study": cfg.to_dict(),
        "groundtruth": {"config_hash": config_hash(gt_cfg), "seeds": list(range(cfg.gt_seeds))},
        "groups": runs, "strategies": {g: GROUPS[g] for g in runs},
        "finetune": {"run_id": finetune_run, "source": first} if finetune_run else None,
        "truth": truth,
    }
    if cfg.sharing != "full" or cfg.budget != "paper":
        exp_config["sharing"] = parse_sharing(cfg.sharing, budget=cfg.budget).label
    if sweep:
        exp_config["sweep"] = {
            label: {"run_id": run_id, "budget": cfg.budget,
                    # in fully shared supernets of the study's epochs
                    "compute": parse_sharing(label, budget=cfg.budget).compute()
                    * sweep_epochs(cfg, label) / cfg.supernet.epochs,
                    **({"epochs": sweep_epochs(cfg, label)} if cfg.prefix_epochs is not None else {})}
            for label, run_id in sweep.items()}
    compare = comparison_runs(experiment, cfg)
    if compare:
        exp_config["comparison"] = {
            entry.label: {"run_ids": ids, "strategy": entry.name,
                          # an entry without options: as in studies made before options
                          **({"options": dict(entry.options), "defaults": entry.defaults} if entry.options else {})}
            for entry, ids in zip(strategy_entries(cfg), compare.values())}
    study = open_run(store, experiment, "insights", exp_config)
    with running(study):
        log(f"[1/3] ground truth: {len(space)} children x {cfg.gt_seeds} seeds, "
            f"{cfg.groundtruth.epochs} epochs each")
        gt = run_groundtruth(space, data, cfg.groundtruth, seeds=list(range(cfg.gt_seeds)),
                             archs=list(space.enumerate()), store=store, progress=progress,
                             executor=executor, tensorboard=tensorboard)
        if gt.seed_taus:
            log(f"      seed-to-seed tau of the ground truth: {gt.mean_seed_tau:.3f}")

        log(f"[2/3] supernets: {len(instances)} instances, {cfg.supernet.epochs} epochs each, dense evaluation "
            f"after {dense_window(cfg.dense_last, cfg.dense_every)}")

        def report(inst: Instance, result: dict) -> None:
            last = result["history"][-1] if result["history"] else {}
            log(f"      {inst.run_id}: train acc {last.get('train_acc', float('nan')):.3f}, mean child valid "
                f"acc {last.get('mean_child_acc', float('nan')):.3f} ({result['seconds']:.0f} s)")

        live_truth = None  # the ground truth the analysis ranks against, for the live GT-Tau
        if tensorboard is not None:
            table, _ = resolve_truth(truth, store=store, space=space.name, dataset=data.name,
                                     config_hash=config_hash(gt_cfg))
            live_truth = table.accuracy_of([space.format(a) for a in space.enumerate()])
        run_instances(space, data, sn_cfg, instances, store=store, executor=executor, progress=progress,
                      on_done=report, tensorboard=tensorboard, truth=live_truth)

        if finetune_run:
            log(f"[3/3] fine-tuning every child from the final snapshot of {first}, "
                f"{cfg.finetune_steps} steps")
            source = load_final(next(i for i in instances if i.run_id == first), space, data, sn_cfg)
            ft_cfg = FinetuneConfig(steps=cfg.finetune_steps, lr=source.lr(cfg.supernet.epochs - 1),
                                    momentum=cfg.supernet.momentum,
                                    weight_decay=cfg.supernet.weight_decay,
                                    batch_size=cfg.supernet.batch_size)
            finetune = open_run(store, finetune_run, "finetune",
                                {"source": first, "finetune": ft_cfg.to_dict(), "eval": cfg.eval.to_dict()})
            with running(finetune), torch.random.fork_rng():
                run_finetune(source.supernet, space, data, ft_cfg, cfg.eval,
                             archs=list(space.enumerate()), store=store, run_id=finetune_run,
                             progress=progress, bank=source.bank)
    out = report_dir(run_dir, experiment)
    out.mkdir(parents=True, exist_ok=True)
    record_run_dir(out, store.path, experiment)
    return experiment


def default_experiment(cfg: InsightsConfig) -> str:
    """The experiment id a study is stored under unless one is given: ``sharing`` for a sharing
    sweep, ``strategies`` for a strategy comparison, else ``insights``."""
    return "sharing" if cfg.sweep else "strategies" if cfg.strategies else "insights"


def insights_study(space: Space, data: Dataset, cfg: InsightsConfig, *, run_dir: str | Path,
                   store_path: str | Path | None = None, experiment: str | None = None, truth: str = "store",
                   progress: bool = True, executor: Executor | None = None, report: bool = True,
                   log=print, tensorboard: str | Path | None = None) -> dict:
    """``wsnas insights``: run (or continue) the study in ``run_dir``, then write its report.

    Creates ``run_dir``, opens the store at ``store_path`` (default ``run_dir/results.db``),
    runs :func:`run_insights` under ``experiment`` (default :func:`default_experiment`), logs
    ``"study finished in <s> s; results in <store_path>"`` and, with ``report``, writes the
    report (:func:`wsnas.report.write_insights_report`) into :func:`report_dir`.

    Returns ``{"experiment": id, "store": store_path, "seconds": s, "report": paths}``:
    ``seconds`` is the study's wall time before the report, ``report`` the dict of
    :func:`wsnas.report.write_insights_report` (``html``, ``md``, ``figures``, ``findings``),
    or ``None`` without ``report``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    store_path = store_path or run_dir / "results.db"
    start = time.perf_counter()
    experiment = experiment or default_experiment(cfg)
    with Store(store_path) as store:
        experiment = run_insights(space, data, cfg, run_dir=run_dir, store=store, experiment=experiment,
                                  truth=truth, progress=progress, log=log, executor=executor,
                                  tensorboard=tensorboard)
        seconds = time.perf_counter() - start
        log(f"study finished in {seconds:.0f} s; results in {store_path}")
        paths = write_insights_report(store, experiment, report_dir(run_dir, experiment)) if report else None
    return {"experiment": experiment, "store": store_path, "seconds": seconds, "report": paths}


__all__ = ["COMPARE_GRAD_WINDOW", "COMPARE_STRATEGIES", "GROUPS", "InsightsConfig", "PREFIX_EPOCH_FACTOR",
           "SWEEP_EPOCHS", "SWEEP_EPOCHS_QUICK", "SWEEP_SHARING", "SWEEP_SHARING_QUICK", "StrategyEntry",
           "canonical_strategy", "comparison_runs", "default_experiment", "folder_name", "insights_study",
           "instance_runs", "parse_strategy_entry", "report_dir", "run_insights", "strategy_entries",
           "study_instances", "sweep_epochs", "sweep_runs"]
