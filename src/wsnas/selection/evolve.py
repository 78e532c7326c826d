"""Evolutionary, random and exhaustive search on a trained single-path supernet (``wsnas evolve``).

The supernet is a finished ``wsnas supernet`` run of the store (kind ``supernet``, status
``done``, its final checkpoint in its run directory), opened by :func:`open_supernet_run`. A
search (:func:`search_supernet`) is a run of its own in the store (kind ``evolve``), driven by an
algorithm of :mod:`wsnas.selection.evolution` through :class:`SupernetOracle`:

* **constraints** (:class:`Constraints`): ``max_params`` and ``max_mflops`` from the cost model
  (:mod:`wsnas.spaces.cost`: the standalone network for the run's data, as ``wsnas cost``
  counts), ``max_latency_ms`` measured on the search's device (:func:`~wsnas.spaces.cost.measure_latency`:
  the standalone network at batch 1, median of timed forward passes after a warm-up). A
  candidate that breaks one is never evaluated; the search draws another and counts it.
  Costs are computed once per architecture and cached in the store (``arch_costs``, keyed by
  what they depend on: the space's settings and the input, and for latency the device, the
  thread count and the timing protocol), so every search of the store shares them;
* **scores** (:class:`SharedWeights`): the validation accuracy of the child with the supernet's
  shared weights after batch-norm recalibration, as SPOS's ``get_cand_err``
  (megvii-model/SinglePathOneShot ``src/Search/tester.py``): the BN statistics re-estimated on
  ``recal_batches`` = 200 training batches of 128 (its ``max_train_iters`` and
  ``train_batch_size``; at most one pass over the training split, the same batches for every
  candidate), here as a cumulative average (``momentum=None``) where SPOS keeps BN's default
  momentum, and the accuracy on the whole validation split (SPOS: 40 batches of 200);
* **storage**: every evaluated candidate is a row of ``candidates`` (its generation, evaluation
  position, origin, score, loss, costs, and whether it is on the Pareto front, updated after
  every generation), written as soon as it is scored; each generation's redraws (draws that
  broke a constraint), duplicates (draws evaluated before), best score and evaluations are
  ``run_metrics`` rows (``step`` = generation);
* **resumption**: a search is a deterministic function of its seed and of the answers it gets
  (:mod:`wsnas.selection.evolution`), so a rerun replays it from the start against the stored
  candidates (each must come back at the same position, generation and origin; a mismatch is an
  error) and evaluates only what is not stored yet. A kill at any moment loses at most the
  candidate being scored;
* **shared scores**: a score depends only on the supernet run and the scoring settings, so
  searches of the same supernet with the same scoring (other seeds, other methods, other
  constraints) reuse each other's scores (:meth:`SharedWeights.reuse`) and no architecture is
  scored twice.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from wsnas.core.errors import WsnasError
from wsnas.core.runtime import prepare_model
from wsnas.data import Dataset, reload_described
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches
from wsnas.runs import open_run, running
from wsnas.selection.evolution import (
    OBJECTIVES,
    SEARCHES,
    Evaluated,
    EvolutionConfig,
    GenerationStats,
    best_of,
    check_budget,
    exhaustive_search,
    front_of,
)
from wsnas.spaces import Arch, Space, space_from_description
from wsnas.spaces.cost import LATENCY_REPEATS, LATENCY_WARMUP, measure_latency, network_cost
from wsnas.store import Store, config_hash
from wsnas.supernet.sharing import Sharing, make_bank
from wsnas.training.trainer import CHECKPOINT, SupernetConfig

#: The store's kind of a search run.
KIND = "evolve"


# ----------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Constraints:
    """Upper limits on a candidate's costs (None: no limit)."""

    max_params: int | None = None
    max_mflops: float | None = None
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_params", "max_mflops", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise WsnasError(f"--{name.replace('_', '-')} must be a positive number, got {value!r}")

    @property
    def needs_latency(self) -> bool:
        return self.max_latency_ms is not None

    def ok(self, costs: dict) -> bool:
        """Whether ``costs`` (``params``, ``mflops``, ``latency_ms``) are within every limit."""
        return ((self.max_params is None or costs["params"] <= self.max_params)
                and (self.max_mflops is None or costs["mflops"] <= self.max_mflops)
                and (self.max_latency_ms is None or costs["latency_ms"] <= self.max_latency_ms))

    def describe(self) -> str:
        parts = [f"--{k.replace('_', '-')} {v:g}" for k, v in asdict(self).items() if v is not None]
        return " and ".join(parts) if parts else "no constraint"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ScoringConfig:
    """How a candidate is scored with shared weights (defaults: SPOS's ``get_cand_err``)."""

    recal_batches: int = 200
    recal_batch_size: int = 128
    recal_seed: int = 0
    batch_size: int = 512

    def __post_init__(self) -> None:
        for name in ("recal_batches", "recal_batch_size", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise WsnasError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")

    def eval_config(self) -> EvalConfig:
        return EvalConfig(bn_mode="recal", recal_batches=self.recal_batches, batch_size=self.batch_size,
                          recal_batch_size=self.recal_batch_size)

    def to_dict(self) -> dict:
        return {"bn_mode": "recal", "split": "valid", **asdict(self)}


def device_label(device: torch.device) -> str:
    """The device as latency depends on it: the GPU's name, or the CPU's model."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"cpu:{model or platform.processor() or platform.machine()}"


def latency_setting(device: torch.device) -> dict:
    """What a measured latency depends on besides the network (part of a search's identity)."""
    return {"device": device_label(device), "threads": torch.get_num_threads(), "batch": 1,
            "warmup": LATENCY_WARMUP, "repeats": LATENCY_REPEATS, "statistic": "median"}


# ----------------------------------------------------------------------------------------------
# the supernet run


@dataclass
class SupernetRun:
    """A finished single-path supernet run of the store and where its checkpoint is."""

    run_id: str
    config: dict
    run_dir: Path
    space: Space

    @property
    def data_config(self) -> dict:
        return self.config["data"]

    def input_shape(self) -> tuple[int, int, int, int]:
        """(classes, channels, height, width) of the run's data."""
        d = self.data_config
        return int(d["num_classes"]), int(d["in_channels"]), int(d["image_size"]), int(d["image_size"])


def open_supernet_run(store: Store, run_id: str, run_dir: str | Path) -> SupernetRun:
    """The supernet run ``run_id`` of ``store`` with its checkpoint in ``run_dir``.

    Raises:
        WsnasError: no such run, a run of another kind (a differentiable search: ``wsnas select``),
            a run not finished, or no checkpoint in ``run_dir``.
    """
    run = store.get_run(run_id)
    if run is None:
        found = [r["run_id"] for r in store.list_runs("supernet")]
        raise WsnasError(f"no run {run_id!r} in {str(store.path)!r}; its supernet runs: "
                         f"{', '.join(found[:6]) + (', ...' if len(found) > 6 else '') if found else 'none'}")
    if run["kind"] == "search":
        raise WsnasError(f"run {run_id!r} is a differentiable search (kind search); evolve searches a single-path "
                         f"supernet (`wsnas supernet`); select from a search with `wsnas select --run {run_id}`")
    if run["kind"] != "supernet":
        raise WsnasError(f"run {run_id!r} is a {run['kind']} run, not a single-path supernet run (`wsnas supernet`)")
    if run["status"] != "done":
        raise WsnasError(f"supernet run {run_id!r} is not finished (status {run['status']}); rerun its "
                         "`wsnas supernet` command to finish it first")
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).is_file():
        raise WsnasError(f"no checkpoint of supernet run {run_id!r} in {str(run_dir)!r}; give its directory "
                         "with --run-dir")
    return SupernetRun(run_id, run["config"], run_dir, space_from_description(run["config"]["space"]))


def load_run_data(run: SupernetRun, *, device: torch.device, data_dir: str | Path | None = None) -> Dataset:
    """The run's dataset (split, subset and augmentation as the run had them) on ``device``."""
    return reload_described(run.data_config, data_dir=data_dir, device=device, what=f"supernet run {run.run_id!r}")


class SharedWeights:
    """Scores architectures with the supernet's shared weights (loaded on first use)."""

    def __init__(self, run: SupernetRun, scoring: ScoringConfig, *, device: torch.device | str = "cpu",
                 data_dir: str | Path | None = None):
        self.run, self.scoring = run, scoring
        self.device = torch.device(device)
        self.data_dir = data_dir
        self.cache: dict[str, tuple[float, float]] = {}  # arch -> (accuracy, loss)
        self.evaluations = 0  # architectures scored in this process (not taken from a cache)
        self._model = None

    def identity(self) -> dict:
        """What a score depends on: the supernet run and the scoring settings."""
        return {"supernet_run": self.run.run_id, **self.scoring.to_dict()}

    def reuse(self, store: Store) -> int:
        """Take the scores of every search of ``store`` with this identity; returns how many."""
        before = len(self.cache)
        for r in store.list_runs(KIND):
            if r["config"].get("scoring") == self.identity():
                for c in store.candidates(r["run_id"]):
                    if c["score"] is not None:
                        self.cache.setdefault(c["arch"], (c["score"], c["loss"]))
        return len(self.cache) - before

    def _load(self):
        if self._model is not None:
            return self._model
        run, cfg = self.run, self.run.config
        data = load_run_data(run, device=self.device, data_dir=self.data_dir)
        train = SupernetConfig.from_dict(cfg["supernet"]).train
        supernet = run.space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
        supernet = prepare_model(supernet.to(self.device), train.precision)
        sharing = Sharing(**cfg["sharing"]) if "sharing" in cfg else Sharing()
        bank = make_bank(supernet, None, run.space, sharing)
        path = run.run_dir / CHECKPOINT
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # a corrupt file is a user-visible problem, not a traceback
            raise WsnasError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__})") from None
        if json.loads(state["config"]) != json.loads(json.dumps(cfg)) or int(state["epoch"]) != train.epochs:
            raise WsnasError(f"checkpoint {str(path)!r} is not the final checkpoint of supernet run {run.run_id!r}; "
                             "give the run's own --run-dir")
        supernet.load_state_dict(state["supernet"])
        if bank is not None:
            bank.load_state_dict(state["bank"])
        cfg_eval = self.scoring.eval_config()
        recal = recalibration_batches(data.train, cfg_eval, self.scoring.recal_seed)
        self._model = (supernet, bank, data, cfg_eval, recal)
        return self._model

    def score(self, arch: Arch) -> tuple[float, float, float]:
        """(accuracy, loss, seconds) of ``arch`` on the validation split (0 seconds from the cache)."""
        name = self.run.space.format(arch)
        if name in self.cache:
            acc, loss = self.cache[name]
            return acc, loss, 0.0
        supernet, bank, data, cfg_eval, recal = self._load()
        start = time.perf_counter()
        (acc, loss), = evaluate_archs(supernet, [arch], data.valid, cfg_eval, recal=recal, bank=bank)
        seconds = time.perf_counter() - start
        self.evaluations += 1
        self.cache[name] = (acc, loss)
        return acc, loss, seconds


class CostModel:
    """Parameters, MFLOPs and latency of architectures, cached in the store (``arch_costs``)."""

    def __init__(self, store: Store, run: SupernetRun, *, device: torch.device | str = "cpu"):
        self.store, self.space = store, run.space
        self.classes, self.channels, self.height, self.width = run.input_shape()
        self.device = torch.device(device)
        base = {"space": self.space.describe(), "classes": self.classes,
                "input": [self.channels, self.height, self.width]}
        self.model_config = base
        self.model_key = config_hash(base)
        self.cache = store.arch_costs(self.model_key)
        self._latency_config: dict | None = None
        self._latency_key: str | None = None
        self._latency: dict[str, dict[str, float]] = {}
        self.measured = 0  # latencies measured in this process

    def _latency_cache(self) -> tuple[str, dict]:
        if self._latency_key is None:
            self._latency_config = {**self.model_config, **latency_setting(self.device)}
            self._latency_key = config_hash(self._latency_config)
            self._latency = self.store.arch_costs(self._latency_key)
        return self._latency_key, self._latency

    def costs(self, arch: Arch, *, latency: bool = False) -> dict:
        """``params``, ``mflops`` and, with ``latency``, ``latency_ms`` of ``arch``."""
        name = self.space.format(arch)
        known = self.cache.get(name, {})
        out = {}
        if "params" not in known or "mflops" not in known:
            cost = network_cost(self.space, arch, num_classes=self.classes, in_channels=self.channels,
                                image_size=self.height)
            known = {"params": float(cost["params"]), "mflops": float(cost["mflops"])}
            self.cache[name] = known
            self.store.add_arch_costs([{"key": self.model_key, "arch": name, "metric": m, "value": known[m],
                                        "config": self.model_config} for m in ("params", "mflops")])
        out["params"], out["mflops"] = int(known["params"]), known["mflops"]
        if latency:
            key, cache = self._latency_cache()
            if "latency_ms" not in cache.get(name, {}):
                net = self.space.build_network(arch, num_classes=self.classes, in_channels=self.channels)
                value = measure_latency(net, (1, self.channels, self.height, self.width), self.device)
                cache[name] = {"latency_ms": value}
                self.measured += 1
                self.store.add_arch_costs([{"key": key, "arch": name, "metric": "latency_ms", "value": value,
                                            "config": self._latency_config}])
            out["latency_ms"] = cache[name]["latency_ms"]
        return out


# ----------------------------------------------------------------------------------------------
# one search


@dataclass
class SearchOutcome:
    """What one search run found and what it cost."""

    run_id: str
    method: str
    seed: int
    evaluated: list[Evaluated]
    front: list[Evaluated]
    best: Evaluated | None
    new: int = 0  # candidates evaluated (scored or taken from another search's scores) in this process
    replayed: int = 0  # candidates read back from this run's stored rows
    redraws: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)


class SupernetOracle:
    """The :class:`~wsnas.selection.evolution.Oracle` of one search run: constraints from the cost
    model, scores with shared weights, every answer stored (or replayed from the store)."""

    def __init__(self, store: Store, run_id: str, space: Space, weights: SharedWeights, costs: CostModel,
                 constraints: Constraints, objectives: Sequence[str], *, bar=None, generations: int = 1):
        self.store, self.run_id, self.space = store, run_id, space
        self.weights, self.costs, self.constraints = weights, costs, constraints
        self.objectives = tuple(objectives)
        self.latency = constraints.needs_latency or "latency" in self.objectives
        self.stored = store.candidates(run_id)
        self.bar, self.generations = bar, generations
        self.new = self.replayed = self.redraws = self.duplicates = 0
        self.best: float | None = None

    def feasible(self, arch: Arch) -> bool:
        if not self.constraints.to_dict():
            return True
        return self.constraints.ok(self.costs.costs(arch, latency=self.constraints.needs_latency))

    def evaluate(self, arch: Arch, *, generation: int, position: int, origin: str) -> dict:
        name = self.space.format(arch)
        if position < len(self.stored):
            row = self.stored[position]
            if (row["arch"], row["generation"], row["origin"]) != (name, generation, origin):
                raise WsnasError(
                    f"the stored candidates of search run {self.run_id!r} do not replay: position {position} holds "
                    f"{row['arch']!r} (generation {row['generation']}, {row['origin']}), the search now draws "
                    f"{name!r} (generation {generation}, {origin}); it was made by another wsnas version, so "
                    "give a new --search-run")
            self.replayed += 1
            values = {k: row[k] for k in ("score", "loss", "params", "mflops", "latency_ms")}
        else:
            costs = self.costs.costs(arch, latency=self.latency)
            acc, loss, seconds = self.weights.score(arch)
            values = {"score": acc, "loss": loss, "latency_ms": None, **costs}
            index = self.space.index(arch)
            self.store.add_candidates(self.run_id, [{
                "arch": name, "arch_index": index if index < 2**63 else None, "generation": generation,
                "position": position, "origin": origin, "seconds": seconds, **values}])
            self.new += 1
        self.best = values["score"] if self.best is None else max(self.best, values["score"])
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"best {self.best:.4f}", refresh=False)
        return values

    def end_generation(self, generation: int, stats: GenerationStats, evaluated: Sequence[Evaluated]) -> None:
        self.redraws += stats.redraws
        self.duplicates += stats.duplicates
        best = best_of(evaluated)
        rows = [{"name": "redraws", "step": generation, "value": stats.redraws},
                {"name": "duplicates", "step": generation, "value": stats.duplicates},
                {"name": "evaluations", "step": generation, "value": len(evaluated)},
                {"name": "best_score", "step": generation, "value": None if best is None else best.score},
                *({"name": f"made_{k}", "step": generation, "value": v} for k, v in stats.made.items() if v)]
        self.store.add_run_metrics(self.run_id, rows)
        self.store.set_front(self.run_id, [self.space.format(e.arch) for e in front_of(evaluated, self.objectives)])
        if self.bar is not None and generation + 1 < self.generations:
            self.bar.set_description_str(f"{self.run_id} generation {generation + 2}/{self.generations}",
                                         refresh=False)


def search_config(run: SupernetRun, method: str, seed: int, cfg: EvolutionConfig, constraints: Constraints,
                  objectives: Sequence[str], weights: SharedWeights, device: torch.device) -> dict:
    """A search run's identity: what decides its candidates and their scores."""
    config = {"supernet_run": run.run_id, "method": method, "seed": seed,
              "search": {} if method == "exhaustive" else cfg.to_dict(method),
              "constraints": constraints.to_dict(), "objectives": list(objectives), "scoring": weights.identity()}
    if constraints.needs_latency or "latency" in objectives:
        config["latency"] = latency_setting(device)
    return config


def search_supernet(store: Store, run: SupernetRun, weights: SharedWeights, *, method: str, seed: int,
                    cfg: EvolutionConfig, constraints: Constraints, objectives: Sequence[str], run_id: str,
                    device: torch.device | str = "cpu", progress: bool = True) -> SearchOutcome:
    """Run (or resume, or read back) one search of ``run``'s supernet as run ``run_id`` of ``store``.

    ``method`` is ``evolution``, ``random`` or ``exhaustive``. Raises :class:`WsnasError` for a
    run id stored with other settings, constraints that leave too few architectures, or stored
    candidates that do not replay.
    """
    if method not in (*SEARCHES, "exhaustive"):
        raise WsnasError(f"unknown search method {method!r}; accepted: {', '.join(SEARCHES)}")
    if method != "exhaustive":
        check_budget(run.space, cfg)
    device = torch.device(device)
    config = search_config(run, method, seed, cfg, constraints, objectives, weights, device)
    try:
        search_run = open_run(store, run_id, KIND, config, seed=seed)
    except WsnasError as exc:
        raise WsnasError(f"{exc} (--search-run)") from None
    weights.reuse(store)
    costs = CostModel(store, run, device=device)
    total, generations = (len(run.space), 1) if method == "exhaustive" else (cfg.budget, cfg.generations)
    bar = tqdm(total=total, desc=f"{run_id} generation 1/{generations}", unit="arch", disable=not progress,
               dynamic_ncols=True, leave=False)
    oracle = SupernetOracle(store, run_id, run.space, weights, costs, constraints, objectives, bar=bar,
                            generations=generations)
    start = time.perf_counter()
    try:
        with running(search_run):
            if method == "exhaustive":
                evaluated = exhaustive_search(run.space, oracle)
            else:
                evaluated = SEARCHES[method](run.space, cfg, seed, oracle, objectives=objectives,
                                             describe_constraints=constraints.describe)
    finally:
        bar.close()
    return SearchOutcome(run_id=run_id, method=method, seed=seed, evaluated=evaluated,
                         front=front_of(evaluated, objectives), best=best_of(evaluated), new=oracle.new,
                         replayed=oracle.replayed, redraws=oracle.redraws, duplicates=oracle.duplicates,
                         seconds=time.perf_counter() - start)


__all__ = ["KIND", "OBJECTIVES", "Constraints", "CostModel", "ScoringConfig", "SearchOutcome", "SharedWeights",
           "SupernetOracle", "SupernetRun", "device_label", "latency_setting", "load_run_data", "open_supernet_run",
           "search_config", "search_supernet"]
