"""Evolutionary, random and exhaustive search on a trained single-path supernet (``wsnas evolve``).

The supernet is a finished ``wsnas supernet`` run of the store (kind ``supernet``, status
``done``, its final checkpoint in its run directory), opened by :func:`open_supernet_run` and
loaded through the trainer's own resume (the same checks as resuming the run). A
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
* **batches**: a generation's new, feasible candidates that no search of the store has scored
  yet (random search: each ``population`` of draws; exhaustive: 50 at a time) are scored in one
  :func:`~wsnas.evaluator.evaluate_archs` call (:meth:`SharedWeights.score_many`): the stem,
  which no choice changes, is computed once per batch of images for all of them (recalibration
  included), and with ``arch_batch`` > 1 that many are recalibrated and scored per stacked
  forward pass (tiny64, NB201; the scores equal one-at-a-time scoring up to floating-point
  rounding). A candidate's ``seconds`` is an equal share of its batch's time (0 for a score
  taken from another search);
* **storage**: every evaluated candidate is a row of ``candidates`` (its generation, evaluation
  position, origin, score, loss, costs, and whether it is on the Pareto front, updated after
  every generation), written as soon as its batch is scored; each generation's redraws (draws
  that broke a constraint), duplicates (draws evaluated before), best score and evaluations are
  ``run_metrics`` rows (``step`` = generation);
* **resumption**: a search is a deterministic function of its seed and of the answers it gets
  (:mod:`wsnas.selection.evolution`), so a rerun replays it from the start against the stored
  candidates (each must come back at the same position, generation and origin; a mismatch is an
  error) and evaluates only what is not stored yet. A kill at any moment loses at most the
  batch being scored;
* **shared scores**: a score depends only on the supernet run and the scoring settings, so
  searches of the same supernet with the same scoring (other seeds, other methods, other
  constraints) reuse each other's scores (:meth:`SharedWeights.reuse`) and no architecture is
  scored twice.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset, reload_described
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches
from wsnas.runs import open_run, running
from wsnas.selection.evolution import (
    OBJECTIVES,
    SEARCHES,
    Evaluated,
    EvolutionConfig,
    GenerationStats,
    Request,
    best_of,
    check_budget,
    exhaustive_search,
    front_of,
)
from wsnas.spaces import Arch, Space, space_from_description
from wsnas.spaces.cost import LATENCY_REPEATS, LATENCY_WARMUP, measure_latency, network_cost
from wsnas.store import Store, config_hash
from wsnas.training.trainer import CHECKPOINT, trainer_from_config

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
    # candidates recalibrated and scored together in one stacked forward pass (wsnas.nn.stacked;
    # 1: one at a time): how the scores are computed, not what they are, so no part of the identity
    arch_batch: int = 1

    def __post_init__(self) -> None:
        for name in ("recal_batches", "recal_batch_size", "batch_size", "arch_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                flag = "eval-arch-batch" if name == "arch_batch" else name.replace("_", "-")
                raise WsnasError(f"--{flag} must be a positive integer, got {value!r}")

    def eval_config(self) -> EvalConfig:
        return EvalConfig(bn_mode="recal", recal_batches=self.recal_batches, batch_size=self.batch_size,
                          recal_batch_size=self.recal_batch_size, arch_batch=self.arch_batch)

    def to_dict(self) -> dict:
        """What decides the scores (a search's ``scoring`` identity; ``arch_batch`` left out)."""
        d = asdict(self)
        del d["arch_batch"]
        return {"bn_mode": "recal", "split": "valid", **d}


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
    """Scores architectures with the supernet's shared weights (loaded on first use).

    The supernet run's final checkpoint is loaded through the trainer's own resume
    (:func:`~wsnas.training.trainer.trainer_from_config`, :meth:`~wsnas.training.trainer.SupernetTrainer.try_resume`),
    which checks that it is this run's (its settings, its weight bank under partial sharing).
    :meth:`score_many` scores a batch in one :func:`~wsnas.evaluator.evaluate_archs` call.
    """

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
        run = self.run
        path = run.run_dir / CHECKPOINT
        data = load_run_data(run, device=self.device, data_dir=self.data_dir)
        trainer = trainer_from_config(run.config, data, run.run_dir, progress=False)
        if not trainer.try_resume(remedy=f"give the directory of supernet run {run.run_id!r} with --run-dir"):
            raise WsnasError(f"no checkpoint of supernet run {run.run_id!r} in {str(run.run_dir)!r}; give its "
                             "directory with --run-dir")
        if trainer.epoch < trainer.cfg.train.epochs:
            raise WsnasError(f"checkpoint {str(path)!r} is not the final checkpoint of supernet run {run.run_id!r} "
                             f"(epoch {trainer.epoch} of {trainer.cfg.train.epochs}); give the run's own --run-dir")
        cfg_eval = self.scoring.eval_config()
        recal = recalibration_batches(data.train, cfg_eval, self.scoring.recal_seed)
        self._model = (trainer.supernet, trainer.bank, data, cfg_eval, recal)
        return self._model

    def score_many(self, archs: Sequence[Arch]) -> list[tuple[float, float, float]]:
        """(accuracy, loss, seconds) of each of ``archs`` on the validation split.

        Those not in the cache are scored together in one :func:`~wsnas.evaluator.evaluate_archs`
        call (the stem once per batch for all of them; ``arch_batch`` of them per stacked forward
        pass where the supernet stacks); each is charged an equal share of that call's seconds,
        and one taken from the cache 0 seconds.
        """
        names = [self.run.space.format(a) for a in archs]
        todo: dict[str, Arch] = {}
        for name, arch in zip(names, archs):
            if name not in self.cache:
                todo.setdefault(name, arch)
        share = 0.0
        if todo:
            supernet, bank, data, cfg_eval, recal = self._load()
            start = time.perf_counter()
            results = evaluate_archs(supernet, list(todo.values()), data.valid, cfg_eval, recal=recal, bank=bank)
            share = (time.perf_counter() - start) / len(todo)
            for name, (acc, loss) in zip(todo, results):
                self.cache[name] = (acc, loss)
            self.evaluations += len(todo)
        out = []
        for name in names:
            acc, loss = self.cache[name]
            out.append((acc, loss, share if todo.pop(name, None) is not None else 0.0))
        return out

    def score(self, arch: Arch) -> tuple[float, float, float]:
        """(accuracy, loss, seconds) of ``arch`` on the validation split (0 seconds from the cache)."""
        return self.score_many([arch])[0]


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

    def _replay(self, request: Request) -> dict:
        row, name = self.stored[request.position], self.space.format(request.arch)
        if (row["arch"], row["generation"], row["origin"]) != (name, request.generation, request.origin):
            raise WsnasError(
                f"the stored candidates of search run {self.run_id!r} do not replay: position {request.position} "
                f"holds {row['arch']!r} (generation {row['generation']}, {row['origin']}), the search now draws "
                f"{name!r} (generation {request.generation}, {request.origin}); it was made by another wsnas "
                "version, so give a new --search-run")
        self.replayed += 1
        return {k: row[k] for k in ("score", "loss", "params", "mflops", "latency_ms")}

    def evaluate_many(self, requests: Sequence[Request]) -> list[dict]:
        """The values of a batch of candidates: those stored at their positions read back (and
        checked), the others costed, scored in one batch (:meth:`SharedWeights.score_many`) and
        stored together once all are scored (a kill meanwhile loses this batch, no more)."""
        out: list[dict | None] = [self._replay(r) if r.position < len(self.stored) else None for r in requests]
        fresh = [i for i, v in enumerate(out) if v is None]
        if fresh:
            costs = [self.costs.costs(requests[i].arch, latency=self.latency) for i in fresh]
            scores = self.weights.score_many([requests[i].arch for i in fresh])
            rows = []
            for i, c, (acc, loss, seconds) in zip(fresh, costs, scores):
                r = requests[i]
                values = {"score": acc, "loss": loss, "latency_ms": None, **c}
                out[i] = values
                index = self.space.index(r.arch)
                rows.append({"arch": self.space.format(r.arch), "arch_index": index if index < 2**63 else None,
                             "generation": r.generation, "position": r.position, "origin": r.origin,
                             "seconds": seconds, **values})
            self.store.add_candidates(self.run_id, rows)
            self.new += len(fresh)
        for values in out:
            self.best = values["score"] if self.best is None else max(self.best, values["score"])
        if self.bar is not None and requests:
            self.bar.update(len(requests))
            self.bar.set_postfix_str(f"best {self.best:.4f}")  # shown now: a batch is a while
        return out

    def evaluate(self, arch: Arch, *, generation: int, position: int, origin: str) -> dict:
        return self.evaluate_many([Request(arch, generation, position, origin)])[0]

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
            self.bar.set_description_str(f"{self.run_id} generation {generation + 2}/{self.generations}")


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
