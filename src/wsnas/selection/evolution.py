"""Evolutionary and random search over a space's choice vector, with constraints and a Pareto front.

The search algorithms only decide which architecture to look at next; an :class:`Oracle` says
whether an architecture meets the constraints and scores it (with a trained supernet's shared
weights in :mod:`wsnas.selection.evolve`, with any function in the tests). Every random decision
comes from one seeded ``numpy`` generator, in a fixed order, so a search is a deterministic
function of its seed and of the oracle's answers: replaying it against stored answers walks the
same path (that is how an interrupted search resumes).

**Evolution** follows SPOS (Guo et al., *Single Path One-Shot Neural Architecture Search with
Uniform Sampling*, ECCV 2020, section 3.4) as its released code does it
(megvii-model/SinglePathOneShot, ``src/Search/search.py``, class ``EvolutionSearcher``; defaults
from its argument parser: population 50, 20 iterations, top 10 as parents, 25 mutations with
probability 0.1 per choice, 25 crossovers):

* the first population is drawn uniformly (every choice independently, ``get_random``), each
  draw kept only if it is new and meets the constraints (SPOS: the FLOPs limit), redrawn
  otherwise;
* the parents are the top ``parents`` by score **among every candidate evaluated so far**
  (SPOS keeps a running top-k list, ``update_top_k``, to which each population is added; its
  stable sort keeps earlier candidates first among equal scores, and so does this module);
* ``mutations`` children: a parent drawn uniformly from the top-k, every choice replaced with
  probability ``mutation_prob`` by a uniformly drawn option (possibly the same one)
  (:meth:`~wsnas.spaces.base.Space.mutate`);
* ``crossovers`` children: two parents drawn uniformly and independently (possibly the same),
  every choice taken from either with probability 1/2
  (:meth:`~wsnas.spaces.base.Space.crossover`);
* a child that was evaluated before, or breaks a constraint, is dropped; each of the two kinds
  gets at most 10 times its number of attempts (SPOS's ``max_iters``), so a generation may get
  fewer children, and uniformly drawn candidates fill the population up to ``population``
  (SPOS's ``get_random`` after breeding);
* no architecture is ever evaluated twice (SPOS's ``vis_dict``).

One difference in counting: SPOS's loop runs 20 times and each pass first adds the current
population to the top-k and then breeds the next one, so it evaluates a 21st population that no
selection ever sees. Here ``generations`` counts the populations that are evaluated and used:
20 generations are 1000 evaluations (``population * generations``), all of them candidates.

Two additions of this module: a cap on redraws (SPOS redraws random candidates without end;
here ``max_redraws`` failed draws in a row for one random candidate end the search with a
one-line error naming the constraints), and several objectives: with costs among the
objectives, parents are chosen by non-dominated sorting (Pareto rank first, then score, then
the order of evaluation), as NSGA-II ranks a population; with accuracy alone that is SPOS's rule.

**Random search** draws ``population * generations`` new architectures uniformly under the same
constraints: the same budget, the same oracle. **Exhaustive** scores every architecture of an
enumerable space that meets the constraints, in index order (the reference of an unlimited budget).

**Batches.** Feasibility is asked as each candidate is drawn, scores a batch at a time: a
generation's candidates (random search: the same ``population`` per generation; exhaustive:
:data:`EXHAUSTIVE_BATCH` at a time) go to the oracle together, through its ``evaluate_many``
where it has one (:func:`evaluate_batch`). No decision within a generation depends on that
generation's scores (parents are the top-k of the earlier generations; duplicates are known
when drawn), so a search's candidates, positions and results are those of scoring one at a time.

:func:`pareto_front` and :func:`pareto_ranks` treat ``score`` as maximised and every cost as
minimised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from wsnas.core.errors import WsnasError
from wsnas.spaces import Arch, Space

#: Objective name -> (the value's key in a candidate's values, True when it is maximised).
OBJECTIVES: dict[str, tuple[str, bool]] = {
    "acc": ("score", True),
    "params": ("params", False),
    "mflops": ("mflops", False),
    "latency": ("latency_ms", False),
}
#: The search methods.
METHODS = ("evolution", "random")
#: Candidates per evaluation batch of an exhaustive search (SPOS's population).
EXHAUSTIVE_BATCH = 50


def parse_objectives(text: str | Sequence[str]) -> tuple[str, ...]:
    """``acc,mflops`` as ``("acc", "mflops")``; accuracy must be one of them, none twice."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    for n in names:
        if n not in OBJECTIVES:
            raise WsnasError(f"unknown objective {n!r}; accepted: {', '.join(OBJECTIVES)} (e.g. acc,mflops)")
    if "acc" not in names:
        raise WsnasError(f"objectives {','.join(names) or '(none)'!r} must include acc (the score with shared "
                         "weights), e.g. acc,mflops")
    if len(set(names)) != len(names):
        raise WsnasError(f"objectives {','.join(names)!r} name one objective twice")
    return tuple(names)


@dataclass(frozen=True)
class EvolutionConfig:
    """The search's budget and operators (defaults: SPOS's released code)."""

    population: int = 50
    generations: int = 20
    parents: int = 10
    mutations: int = 25
    crossovers: int = 25
    mutation_prob: float = 0.1
    attempts: int = 10  # attempts per wanted child of each kind (SPOS's max_iters = 10 * num)
    max_redraws: int = 1000  # failed draws in a row for one random candidate before giving up

    def __post_init__(self) -> None:
        for name, low in (("population", 1), ("generations", 1), ("parents", 1), ("mutations", 0),
                          ("crossovers", 0), ("attempts", 1), ("max_redraws", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise WsnasError(f"--{name.replace('_', '-')} must be an integer of at least {low}, got {value!r}")
        if not 0.0 <= float(self.mutation_prob) <= 1.0:
            raise WsnasError(f"--mutation-prob must be a probability in [0, 1], got {self.mutation_prob!r}")
        if self.parents > self.population:
            raise WsnasError(f"--parents {self.parents} exceeds --population {self.population}")
        if self.mutations + self.crossovers > self.population:
            raise WsnasError(f"--mutations {self.mutations} plus --crossovers {self.crossovers} exceed "
                             f"--population {self.population}")

    @property
    def budget(self) -> int:
        """Evaluations of the whole search."""
        return self.population * self.generations

    def to_dict(self, method: str = "evolution") -> dict:
        """The settings that decide ``method``'s search (random search: its budget and redraw cap)."""
        d = asdict(self)
        if method != "evolution":
            d = {k: d[k] for k in ("population", "generations", "max_redraws")}
        return d


@dataclass
class Evaluated:
    """One evaluated candidate: where it came from and what the oracle said about it."""

    arch: Arch
    generation: int
    position: int  # evaluation order within the search, from 0
    origin: str  # random, mutation, crossover or exhaustive
    values: dict  # "score" and the costs the oracle measured ("params", "mflops", "latency_ms", ...)
    parents: tuple[int, ...] = ()  # positions of its parents (one for a mutation, two for a crossover)

    @property
    def score(self) -> float:
        return float(self.values["score"])


@dataclass(frozen=True)
class Request:
    """One candidate the search asks the oracle to evaluate."""

    arch: Arch
    generation: int
    position: int  # evaluation order within the search, from 0
    origin: str  # random, mutation, crossover or exhaustive


@dataclass
class GenerationStats:
    """What one generation cost besides its evaluations."""

    redraws: int = 0  # draws refused for breaking a constraint
    duplicates: int = 0  # draws refused for having been evaluated before
    made: dict = field(default_factory=lambda: {"random": 0, "mutation": 0, "crossover": 0, "exhaustive": 0})


class Oracle(Protocol):
    """What a search asks about architectures.

    An oracle may also define ``evaluate_many(requests: Sequence[Request]) -> list[dict]``, the
    answers of :meth:`evaluate` for several candidates at once (a generation's, in evaluation
    order); the searches then ask for each batch in one call (:func:`evaluate_batch`).
    """

    def feasible(self, arch: Arch) -> bool:
        """Whether ``arch`` meets the constraints (it is then evaluated)."""

    def evaluate(self, arch: Arch, *, generation: int, position: int, origin: str) -> dict:
        """``{"score": ..., costs ...}`` of ``arch``, the search's ``position``-th evaluation."""

    def end_generation(self, generation: int, stats: GenerationStats, evaluated: Sequence[Evaluated]) -> None:
        """Called after each generation with its counts and every candidate evaluated so far."""


def evaluate_batch(oracle: Oracle, requests: Sequence[Request]) -> list[dict]:
    """The oracle's answers for ``requests``: one ``evaluate_many`` call where the oracle has it,
    else :meth:`Oracle.evaluate` for each in turn."""
    many = getattr(oracle, "evaluate_many", None)
    if many is not None:
        values = list(many(requests))
        if len(values) != len(requests):
            raise ValueError(f"evaluate_many answered {len(values)} of {len(requests)} candidates")
        return values
    return [oracle.evaluate(r.arch, generation=r.generation, position=r.position, origin=r.origin)
            for r in requests]


# ----------------------------------------------------------------------------------------------
# Pareto fronts


def _minimised(values: np.ndarray, maximise: Sequence[bool]) -> np.ndarray:
    points = np.asarray(values, dtype=float)
    if points.ndim != 2 or points.shape[1] != len(maximise):
        raise ValueError(f"expected an (n, {len(maximise)}) array of objective values, got shape {points.shape}")
    return np.where(np.asarray(maximise, dtype=bool), -points, points)


def _dominated_by(points: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """``d[i, j]``: point j dominates point ``rows``' i (no worse in every objective, better in one)."""
    mine = points[rows]
    le = (points[None, :, :] <= mine[:, None, :]).all(axis=2)
    lt = (points[None, :, :] < mine[:, None, :]).any(axis=2)
    return le & lt


_CHUNK = 256  # rows compared with all points at once: memory ~ _CHUNK * n * m, whatever n


def pareto_front(values, maximise: Sequence[bool]) -> np.ndarray:
    """Mask of the non-dominated rows of ``values`` (n points x m objectives); ``maximise[k]``
    says whether objective k is maximised. Equal points dominate each other nowhere, so
    duplicates of a front point are all on the front."""
    points = _minimised(values, maximise)
    out = np.zeros(len(points), dtype=bool)
    for start in range(0, len(points), _CHUNK):
        rows = slice(start, start + _CHUNK)
        out[rows] = ~_dominated_by(points, rows).any(axis=1)
    return out


def pareto_ranks(values, maximise: Sequence[bool]) -> np.ndarray:
    """Non-dominated sorting: rank 0 for the front, 1 for the front of what remains, and so on."""
    points = _minimised(values, maximise)
    n = len(points)
    ranks = np.full(n, -1, dtype=int)
    dominated = np.concatenate([_dominated_by(points, slice(i, i + _CHUNK)) for i in range(0, n, _CHUNK)]
                               or [np.zeros((0, 0), dtype=bool)])
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        # a remaining point is on this front when no remaining point dominates it
        layer = remaining & ~(dominated & remaining[None, :]).any(axis=1)
        ranks[layer] = rank
        remaining &= ~layer
        rank += 1
    return ranks


def objective_matrix(evaluated: Sequence[Evaluated], objectives: Sequence[str]) -> np.ndarray:
    """The candidates' values of ``objectives`` as an (n, m) array."""
    keys = [OBJECTIVES[o][0] for o in objectives]
    return np.array([[float(e.values[k]) for k in keys] for e in evaluated], dtype=float).reshape(-1, len(keys))


def front_of(evaluated: Sequence[Evaluated], objectives: Sequence[str]) -> list[Evaluated]:
    """The candidates on the Pareto front of ``objectives``, best score first (then in evaluation order)."""
    if not evaluated:
        return []
    mask = pareto_front(objective_matrix(evaluated, objectives), [OBJECTIVES[o][1] for o in objectives])
    return sorted((e for e, m in zip(evaluated, mask) if m), key=lambda e: (-e.score, e.position))


def best_of(evaluated: Sequence[Evaluated]) -> Evaluated | None:
    """The candidate with the highest score (the earliest of equal ones)."""
    return min(evaluated, key=lambda e: (-e.score, e.position), default=None)


def top_k(evaluated: Sequence[Evaluated], k: int, objectives: Sequence[str] = ("acc",)) -> list[Evaluated]:
    """The ``k`` parents: best score first (accuracy alone, SPOS), or by Pareto rank, then score,
    then evaluation order (several objectives)."""
    if tuple(objectives) == ("acc",) or not evaluated:
        return sorted(evaluated, key=lambda e: (-e.score, e.position))[:k]
    ranks = pareto_ranks(objective_matrix(evaluated, objectives), [OBJECTIVES[o][1] for o in objectives])
    order = sorted(range(len(evaluated)), key=lambda i: (ranks[i], -evaluated[i].score, evaluated[i].position))
    return [evaluated[i] for i in order[:k]]


# ----------------------------------------------------------------------------------------------
# The searches


class _Search:
    """Bookkeeping shared by the searches: the generator, what was evaluated, the counts.

    A candidate offered and accepted is queued (``pending``) and counted as seen at once; the
    queue goes to the oracle in one batch (:meth:`flush`) at the end of a generation, every
    ``batch`` candidates of an exhaustive search, and before a search gives up. Nothing a search
    decides within a generation depends on that generation's scores (its parents are the top-k of
    the earlier ones), so the path is the one of evaluating each candidate as it is offered.
    """

    def __init__(self, space: Space, cfg: EvolutionConfig, seed: int, oracle: Oracle,
                 objectives: Sequence[str], describe_constraints: Callable[[], str] | None):
        self.space, self.cfg, self.oracle = space, cfg, oracle
        self.objectives = tuple(objectives)
        self.rng = np.random.default_rng(seed)
        self.seen: set[Arch] = set()
        self.evaluated: list[Evaluated] = []
        self.pending: list[tuple[Request, tuple[int, ...]]] = []
        self.stats = GenerationStats()
        self.generation = 0
        self.describe_constraints = describe_constraints or (lambda: "the constraints")

    def offer(self, arch: Arch, origin: str, parents: tuple[int, ...] = ()) -> bool:
        """Queue ``arch`` for evaluation if it is new and feasible; count it as a duplicate or a
        redraw if not."""
        if arch in self.seen:
            self.stats.duplicates += 1
            return False
        if not self.oracle.feasible(arch):
            self.stats.redraws += 1
            return False
        position = self.offered
        self.pending.append((Request(arch, self.generation, position, origin), parents))
        self.seen.add(arch)
        self.stats.made[origin] += 1
        return True

    @property
    def offered(self) -> int:
        """Candidates accepted so far: evaluated or queued."""
        return len(self.evaluated) + len(self.pending)

    def flush(self) -> None:
        """Evaluate the queued candidates in one batch."""
        if not self.pending:
            return
        requests = [r for r, _ in self.pending]
        values = evaluate_batch(self.oracle, requests)
        self.evaluated += [Evaluated(r.arch, r.generation, r.position, r.origin, dict(v), parents)
                           for (r, parents), v in zip(self.pending, values)]
        self.pending = []

    def draw_random(self) -> None:
        """One new uniformly drawn candidate, redrawn at most ``max_redraws`` times."""
        redraws, duplicates = self.stats.redraws, self.stats.duplicates
        for _ in range(self.cfg.max_redraws + 1):
            if self.offer(self.space.random_arch(self.rng), "random"):
                return
        self.flush()  # what was drawn before is evaluated and stored, as if the search had gone on
        raise WsnasError(
            f"no new architecture meeting {self.describe_constraints()} in {self.cfg.max_redraws + 1} draws "
            f"({self.stats.redraws - redraws} broke a constraint, {self.stats.duplicates - duplicates} were "
            f"evaluated before, {len(self.evaluated)} evaluated so far); loosen the constraints, lower the "
            "budget (--population, --generations) or raise --max-redraws")

    def end_generation(self) -> None:
        self.flush()
        self.oracle.end_generation(self.generation, self.stats, self.evaluated)
        self.stats = GenerationStats()
        self.generation += 1


def check_budget(space: Space, cfg: EvolutionConfig) -> None:
    """Refuse a budget larger than the space (no architecture is evaluated twice)."""
    if cfg.budget > len(space):
        raise WsnasError(f"a budget of {cfg.budget} evaluations (--population {cfg.population} x --generations "
                         f"{cfg.generations}) exceeds the {len(space)} architectures of {space.name}; lower it")


def evolution_search(space: Space, cfg: EvolutionConfig, seed: int, oracle: Oracle, *,
                     objectives: Sequence[str] = ("acc",),
                     describe_constraints: Callable[[], str] | None = None) -> list[Evaluated]:
    """SPOS's evolutionary search (see the module's docstring); every candidate, in evaluation order."""
    check_budget(space, cfg)
    s = _Search(space, cfg, seed, oracle, objectives, describe_constraints)
    for _ in range(cfg.population):
        s.draw_random()
    s.end_generation()
    while s.generation < cfg.generations:
        parents = top_k(s.evaluated, cfg.parents, s.objectives)
        start = s.offered
        made = tries = 0
        while made < cfg.mutations and tries < cfg.attempts * cfg.mutations:
            tries += 1
            p = parents[int(s.rng.integers(len(parents)))]
            made += s.offer(space.mutate(p.arch, s.rng, cfg.mutation_prob), "mutation", (p.position,))
        made = tries = 0
        while made < cfg.crossovers and tries < cfg.attempts * cfg.crossovers:
            tries += 1
            p1 = parents[int(s.rng.integers(len(parents)))]
            p2 = parents[int(s.rng.integers(len(parents)))]
            made += s.offer(space.crossover(p1.arch, p2.arch, s.rng), "crossover", (p1.position, p2.position))
        while s.offered - start < cfg.population:
            s.draw_random()
        s.end_generation()
    return s.evaluated


def random_search(space: Space, cfg: EvolutionConfig, seed: int, oracle: Oracle, *,
                  objectives: Sequence[str] = ("acc",),
                  describe_constraints: Callable[[], str] | None = None) -> list[Evaluated]:
    """``population * generations`` new uniformly drawn candidates (generation = draw // population)."""
    check_budget(space, cfg)
    s = _Search(space, cfg, seed, oracle, objectives, describe_constraints)
    while s.generation < cfg.generations:
        for _ in range(cfg.population):
            s.draw_random()
        s.end_generation()
    return s.evaluated


def exhaustive_search(space: Space, oracle: Oracle, *, batch: int = EXHAUSTIVE_BATCH) -> list[Evaluated]:
    """Every architecture of an enumerable space that meets the constraints, in index order
    (generation 0; no budget, no randomness), evaluated ``batch`` at a time."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    s = _Search(space, EvolutionConfig(population=1, generations=1, parents=1, mutations=0, crossovers=0),
                0, oracle, ("acc",), None)
    for arch in space.enumerate():
        s.offer(arch, "exhaustive")
        if len(s.pending) >= batch:
            s.flush()
    s.end_generation()
    return s.evaluated


SEARCHES: dict[str, Callable[..., list[Evaluated]]] = {"evolution": evolution_search, "random": random_search}


__all__ = ["EXHAUSTIVE_BATCH", "METHODS", "OBJECTIVES", "SEARCHES", "EvolutionConfig", "Evaluated",
           "GenerationStats", "Oracle", "Request", "best_of", "check_budget", "evaluate_batch", "evolution_search",
           "exhaustive_search", "front_of", "objective_matrix", "parse_objectives", "pareto_front", "pareto_ranks",
           "random_search", "top_k"]
