"""A differentiable search end to end: search, selection, the selected architecture's ground truth.

:func:`run_search` trains a supernet with a differentiable strategy (checkpointed every epoch
and resumable, like every supernet run), then selects one architecture per selection method
(every method of the registry in :mod:`wsnas.selection` that was asked for; those that leave the
supernet untouched first, such as magnitude, then those that change it, such as PT, which tunes
the supernet in memory) and records
each in the store's ``selections`` table with its ground truth: from a truth table (built-in,
CSV, benchmark or the store's own ground truth), or trained from scratch (``retrain``). The
search's per-epoch diagnostics (entropy of the op distributions, parameter-free ops in the
argmax, the argmax's index) are in ``run_metrics``.

:func:`reselect` (``wsnas select``) selects again from a finished search: it rebuilds the
search's space, data, strategy and trainer from the store and the run's last checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset, reload_described
from wsnas.evaluator import EvalConfig
from wsnas.groundtruth.table import TruthTable
from wsnas.groundtruth.truth import resolve_truth
from wsnas.runs import open_run, running
from wsnas.selection import PTConfig, Selector, check_selections, get_selectors, ordered
from wsnas.spaces import Arch, Space
from wsnas.store import Store
from wsnas.strategies import Strategy, strategy_class, strategy_names
from wsnas.strategies.archparams import PARAMS
from wsnas.training.monitor import RunMonitor
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer, trainer_from_config

# The weight optimiser of the DARTS family (algorithms.md 3; quark0/darts cnn/train_search.py):
# SGD lr 0.025 cosine to 0.001, momentum 0.9, weight decay 3e-4, gradient clipping at 5, batch 64;
# 50 epochs on CIFAR-10. Digits: 20 epochs. A strategy's recipe (its authors' values, e.g.
# PC-DARTS's batch 256 and lr 0.1 cosine to 0) replaces what it names: :func:`search_defaults`.
SEARCH_DEFAULTS: dict[str, TrainConfig] = {
    "cifar10": TrainConfig(epochs=50, batch_size=64, lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4,
                           grad_clip=5.0),
    "digits": TrainConfig(epochs=20, batch_size=64, lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=3e-4,
                          grad_clip=5.0),
}


def search_defaults(strategy: str, param: str, dataset: str) -> tuple[TrainConfig, dict]:
    """The training settings and strategy options of a search when no flag sets them: the dataset's
    :data:`SEARCH_DEFAULTS` (CIFAR-10's for any other dataset) with the strategy's recipe
    (:class:`~wsnas.strategies.Recipe`, its authors' values) on top."""
    recipe = strategy_class(strategy).recipe(param)
    base = SEARCH_DEFAULTS.get(dataset, SEARCH_DEFAULTS["cifar10"])
    return base.with_overrides(**recipe.train), dict(recipe.options)


@dataclass(frozen=True)
class SearchPreset:
    """A published search configuration by name (``wsnas search --preset NAME``).

    It sets defaults of the command's flags: the space (and its options), the strategy and its
    options (``param``, ``single_level``, ``exclude``) and the training settings (``TrainConfig``
    fields, over the strategy's recipe); flags the user gives override it.
    """

    description: str
    source: str
    space: str
    space_options: Mapping[str, object]
    strategy: str
    options: Mapping[str, object]
    train: Mapping[str, object]


PRESETS: dict[str, SearchPreset] = {
    # GAEA-DARTS on NAS-Bench-201 as published (liamcli/gaea_release README.md, "NAS-Bench-201
    # Search Space": mode=search_nasbench201 nas_algo=edarts run.epochs=25 search.exclude_zero=true,
    # search.single_level true for ERM): configs/cnn/config.yaml sets run.scheduler_epochs 50 (the
    # cosine's period; cnn/train_utils.py CosinePowerAnnealing with power 1 and one cycle is the
    # plain cosine), configs/cnn/mode/search_nasbench201.yaml batch 64, lr 0.025 to 0.001, momentum
    # 0.9, weight decay 3e-4, clip 5, init_channels 24, layers 5 (N, cells per stage); the search
    # cells have affine=False and track_running_stats=True (cnn/search_spaces/nasbench_201/
    # model_search.py, config.yaml search.track_running_stats); edarts's step size is 0.1
    # (search_method/edarts/method_edarts_space_nasbench201.yaml), GAEA's default here. Its bilevel
    # variant (search.single_level=false) is --no-single-level --arch-split valid with cifar10's
    # --data-option valid_size=25000.
    "gaea-nb201": SearchPreset(
        description="GAEA-DARTS on NAS-Bench-201, single-level (ERM); add --data cifar10 --data-dir DIR",
        source="liamcli/gaea_release README.md, configs/cnn/config.yaml, configs/cnn/mode/search_nasbench201.yaml",
        space="nb201",
        space_options={"channels": 24, "cells_per_stage": 5, "affine": False, "track_running_stats": True},
        strategy="darts",
        options={"param": "gaea", "single_level": True, "exclude": ("none",)},
        train={"epochs": 25, "lr_schedule_epochs": 50, "batch_size": 64, "lr": 0.025, "lr_min": 0.001,
               "momentum": 0.9, "weight_decay": 3e-4, "grad_clip": 5.0},
    ),
}


def get_preset(name: str) -> SearchPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise WsnasError(f"unknown preset {name!r}; accepted: {', '.join(PRESETS)}") from None


def recipe_rows() -> list[dict]:
    """Every differentiable strategy and parametrisation with its effective defaults (what
    :func:`search_defaults` gives and the strategy then builds), for ``wsnas search --help``."""
    rows = []
    for name in strategy_names(differentiable=True):
        cls = strategy_class(name)
        for param in PARAMS:
            recipe = cls.recipe(param)
            train = {dataset: search_defaults(name, param, dataset)[0] for dataset in SEARCH_DEFAULTS}
            strategy = cls(param, **recipe.options)
            rows.append({"strategy": name, "param": param, "train": train,
                         "arch_optimizer": strategy.arch_optimizer_settings(),
                         "warmup_epochs": strategy.warmup_epochs, "source": recipe.source, "note": recipe.note})
    return rows


@dataclass(frozen=True)
class SearchConfig:
    train: TrainConfig = field(default_factory=lambda: SEARCH_DEFAULTS["digits"])
    select: tuple[str, ...] = ("magnitude",)
    pt: PTConfig = field(default_factory=PTConfig)

    def __post_init__(self) -> None:
        check_selections(self.select)

    def selectors(self) -> list[Selector]:
        """The selectors of ``select``, in the order they run, with their options (``pt``: PT's)."""
        return get_selectors(self.select, {"pt": self.pt.to_dict()})


def search_supernet_config(train: TrainConfig) -> SupernetConfig:
    """A search trains its supernet without scoring children along the way."""
    return SupernetConfig(train=train, eval=EvalConfig(), dense_last=0, eval_every_epoch=False)


def truth_of(truth: TruthTable | None, space: Space, arch: Arch) -> tuple[float | None, int | None]:
    """The ground-truth accuracy and rank (1 = best) of ``arch`` in ``truth``, if it is there."""
    if truth is None:
        return None, None
    name = space.format(arch)
    try:
        pos = truth.position(name)
    except (KeyError, WsnasError):
        return None, None
    acc = float(truth.accuracy[pos])
    if np.isnan(acc):
        return None, None
    return acc, int(truth.ranks()[pos])


def run_search(space: Space, data: Dataset, strategy: Strategy, cfg: SearchConfig, *, seed: int, store: Store,
               run_id: str, run_dir: str | Path, truth: TruthTable | None = None, truth_source: str | None = None,
               retrain: Callable[[Arch], float] | None = None, progress: bool = True,
               log: Callable[[str], None] = print, monitor: RunMonitor | None = None) -> list[dict]:
    """Search (or resume), then select with every method of ``cfg.select``; returns the selections.

    ``monitor`` watches the search's training (:meth:`SupernetTrainer.train`)."""
    sn_cfg = search_supernet_config(cfg.train)
    trainer = SupernetTrainer(space, data, strategy, sn_cfg, seed=seed, run_dir=run_dir, store=store,
                              run_id=run_id, archs=[], progress=progress)
    config = {**trainer.config(), "search": {"select": list(cfg.select), "pt": cfg.pt.to_dict()}}
    run = open_run(store, run_id, "search", config, seed=seed)
    done = {r["method"]: r for r in store.selections(run_id)}
    if all(m in done for m in cfg.select) and run.done:
        return [done[m] for m in cfg.select]
    resumed = trainer.try_resume()
    with running(run):
        start = time.perf_counter()
        trainer.train(monitor=monitor)
        if trainer.epoch and not resumed:
            log(f"search {run_id}: {trainer.epoch} epochs in {time.perf_counter() - start:.0f} s, "
                f"entropy {strategy.arch.entropy():.3f}")
        out = select_and_record(trainer, data, cfg.selectors(), store=store, run_id=run_id, truth=truth,
                                truth_source=truth_source, retrain=retrain, progress=progress)
    return out


def select_all(trainer: SupernetTrainer, data: Dataset, selectors: Sequence[Selector], *,
               progress: bool = True) -> list[tuple[str, Arch, float]]:
    """(method, architecture, seconds) for every selector, in the order they run (:func:`ordered`:
    those that change the supernet last, whatever order they are given in)."""
    out = []
    for selector in ordered(selectors):
        t0 = time.perf_counter()
        arch = selector.select(trainer, data, progress=progress)
        out.append((selector.name, arch, time.perf_counter() - t0))
    return out


def select_and_record(trainer: SupernetTrainer, data: Dataset, selectors: Sequence[Selector], *,
                      store: Store, run_id: str, truth: TruthTable | None = None, truth_source: str | None = None,
                      retrain: Callable[[Arch], float] | None = None, progress: bool = True) -> list[dict]:
    """Select with every selector (in the order they run) from a trained search and store each choice."""
    space = trainer.space
    out = []
    for method, arch, seconds in select_all(trainer, data, selectors, progress=progress):
        acc, rank = truth_of(truth, space, arch)
        source = truth_source
        if acc is None and retrain is not None:
            acc, rank, source = retrain(arch), None, "retrained"
        row = {"method": method, "arch": space.format(arch),
               "arch_index": space.index(arch) if len(space) <= 10**7 else None,
               "truth": acc, "truth_rank": rank, "truth_source": source if acc is not None else None,
               "seconds": seconds}
        store.add_selection(run_id, row)
        out.append({"run_id": run_id, **row})
    return out


def reselect(store_path: str | Path, run_id: str, selectors: Sequence[Selector], *, run_dir: str | Path,
             data_dir: str | Path | None = None, device: str | torch.device = "cpu", truth_spec: str | None = None,
             progress: bool = True) -> list[dict]:
    """Select with ``selectors`` from the finished search ``run_id`` of the store at ``store_path``.

    The search's space, data, strategy and supernet settings are read from its run in the store
    (which must exist: it is opened, not created), its trainer from the last checkpoint in
    ``run_dir``. The data come from ``data_dir``, else from the directory the search used if
    it still exists, else from the dataset's default; they are loaded on ``device``.
    ``truth_spec`` is resolved by :func:`wsnas.groundtruth.truth.resolve_truth` against this
    store. Each selection is stored (:func:`select_and_record`, replacing an earlier one of the
    same method); a selector that changes the supernet changes it in memory only, so the
    checkpoint is left as the search wrote it. Returns the stored rows, in the order they ran.

    Raises:
        WsnasError: no store at ``store_path``, no search run ``run_id`` in it, no finished
            search checkpoint in ``run_dir``, or a ``truth_spec`` that does not resolve.
    """
    with Store(store_path, create=False) as store:
        run = store.get_run(run_id)
        if run is None or run["kind"] != "search":
            found = [r["run_id"] for r in store.list_runs("search")]
            raise WsnasError(f"no search run {run_id!r} in {store_path}; found: {', '.join(found) or 'none'}")
        cfg = run["config"]
        data = reload_described(cfg["data"], data_dir=data_dir, device=device, what=f"search run {run_id!r}")
        run_dir = Path(run_dir)
        trainer = trainer_from_config(cfg, data, run_dir, progress=False)
        space = trainer.space
        if not trainer.try_resume() or trainer.epoch < trainer.cfg.train.epochs:
            raise WsnasError(f"no finished search checkpoint in {run_dir}; run `wsnas search` to finish it or give "
                             "--run-dir")
        truth, truth_source = resolve_truth(truth_spec or None, store=store, space=space.name, dataset=data.name)
        return select_and_record(trainer, data, selectors, store=store, run_id=run_id, truth=truth,
                                 truth_source=truth_source, progress=progress)


__all__ = ["PRESETS", "SEARCH_DEFAULTS", "SearchConfig", "SearchPreset", "get_preset", "ordered", "recipe_rows",
           "search_defaults", "reselect", "run_search", "search_supernet_config",
           "select_all", "select_and_record", "truth_of"]
