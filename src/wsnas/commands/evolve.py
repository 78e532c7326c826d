"""Search a trained single-path supernet: SPOS's evolution, or random search at the same budget.

The supernet is a finished `wsnas supernet` run of the store (--run, its checkpoint in --run-dir,
default wsnas-runs/<run id>). Every candidate is scored with the shared weights on the
validation split after batch-norm recalibration on --recal-batches training batches (SPOS: 200
of 128) and stored in the store's candidates table with its generation, costs and whether it is
on the Pareto front; per generation, the draws redrawn for breaking a constraint and those
skipped as already evaluated are in run_metrics. A generation's new candidates are scored in
one batch (the stem computed once for all of them; --eval-arch-batch N recalibrates and scores
N per stacked forward pass, auto: 16 on CUDA, 1 on a CPU, where stacking is slower), each
stored with an equal share of its batch's seconds. The search is a run of the store
(PREFIX/<method>/<seed>, PREFIX from --search-run, default evolve/<run id>): killed at any
point, the same command continues it without evaluating anything twice (it loses at most the
batch being scored) and ends with the result of an uninterrupted run. Searches of one supernet
share their scores.

Evolution (Guo et al., SPOS, ECCV 2020; megvii-model/SinglePathOneShot src/Search/search.py):
a population of 50 drawn uniformly, then per generation the top 10 of every candidate so far as
parents, 25 mutations (each choice redrawn with probability 0.1) and 25 crossovers (each choice
from either parent), topped up with random candidates; 20 generations = 1000 evaluations; no
architecture is evaluated twice. Random search draws the same number uniformly.

Constraints: --max-params and --max-mflops from the cost model (as `wsnas cost` counts them for
the run's data), --max-latency-ms measured on --device (the standalone network at batch 1,
median of 10 timed forward passes after 5 warm-up ones, cached in the store per architecture,
device and thread count). Candidates that break one are never evaluated; the search redraws
them (a random candidate at most --max-redraws times, then a one-line error).

Objectives: --objectives acc,mflops (or params, latency; acc is required) keeps the Pareto
front (accuracy maximised, costs minimised) and chooses parents by Pareto rank, then accuracy.
OUT_DIR/candidates.png shows every candidate with the front marked; --export FILE writes the
front (best accuracy first; with acc alone, the best) as official architecture strings, one
per line, which `wsnas cost --arch` and `wsnas groundtruth --archs` take as they are.

Validation (--validate-seeds N with --truth): evolution and random search for seeds
--seed..--seed+N-1 at the same budget, plus an exhaustive scoring of the space when it has at
most 1000 architectures (tiny64) or --exhaustive is given; OUT_DIR (default
wsnas-runs/PREFIX/validation) gets validation.md, validation.csv and validation.png: the true
rank of the architecture each search returns after every generation, over seeds.

Examples:
  wsnas supernet --strategy uniform --epochs 30 --run spos
  wsnas evolve --run spos --population 10 --generations 3 --parents 3 --mutations 3 --crossovers 3 --truth store
  wsnas evolve --run spos --method random --population 10 --generations 3 --parents 3 --mutations 3 --crossovers 3
  wsnas evolve --run spos --population 10 --generations 3 --parents 3 --mutations 3 --crossovers 3 \\
      --max-mflops 2 --objectives acc,mflops --export best.txt
  wsnas evolve --run spos --population 8 --generations 4 --parents 3 --mutations 3 --crossovers 3 \\
      --validate-seeds 5 --truth store
  wsnas supernet --space nb201 --sample 100 --run nb --data cifar10 --data-dir DIR
  wsnas evolve --run nb --data-dir DIR --validate-seeds 5 --truth nb201-cifar10
  wsnas evolve --run nb --data-dir DIR --max-mflops 100 --objectives acc,mflops,latency --device cuda
  wsnas evolve --run darts-spos --max-params 3500000 --max-latency-ms 20 --device cuda --export genotypes.txt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wsnas.commands.common import add_arch_batch_option, add_runtime_options, arch_batch_from_args, device_from_args
from wsnas.core.errors import WsnasError
from wsnas.core.files import check_output
from wsnas.selection.evolution import METHODS, EvolutionConfig, parse_objectives
from wsnas.selection.evolve import Constraints, ScoringConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="the supernet run id (`wsnas supernet --run`; see `wsnas store info`)")
    p.add_argument("--run-dir", default=None, help="its checkpoint directory (default wsnas-runs/<run id>)")
    p.add_argument("--method", default="evolution", choices=METHODS, help="evolution (SPOS, default) or random")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    p.add_argument("--search-run", default=None, metavar="PREFIX",
                   help="run-id prefix of the searches: PREFIX/<method>/<seed> (default evolve/<run id>)")
    p.add_argument("--out-dir", default=None,
                   help="where the figure (and validation tables) go (default wsnas-runs/<search run id>)")
    g = p.add_argument_group("the search (defaults: SPOS's released code)")
    g.add_argument("--population", type=int, default=50, help="candidates per generation (default 50)")
    g.add_argument("--generations", type=int, default=20,
                   help="generations; the budget is population x generations evaluations (default 20)")
    g.add_argument("--parents", type=int, default=10, help="top-k of all candidates so far as parents (default 10)")
    g.add_argument("--mutations", type=int, default=25, help="children by mutation per generation (default 25)")
    g.add_argument("--crossovers", type=int, default=25, help="children by crossover per generation (default 25)")
    g.add_argument("--mutation-prob", type=float, default=0.1,
                   help="probability that mutation redraws a choice (default 0.1)")
    g.add_argument("--max-redraws", type=int, default=1000,
                   help="draws in a row for one random candidate before giving up (default 1000)")
    g.add_argument("--objectives", default="acc",
                   help="acc, or acc with any of params, mflops, latency: a Pareto front (default acc)")
    c = p.add_argument_group("constraints (never evaluated when broken)")
    c.add_argument("--max-params", type=int, default=None, help="at most this many parameters")
    c.add_argument("--max-mflops", type=float, default=None, help="at most this many MFLOPs (multiply-adds / 1e6)")
    c.add_argument("--max-latency-ms", type=float, default=None,
                   help="at most this latency in ms, measured on --device at batch 1")
    s = p.add_argument_group("scoring")
    s.add_argument("--recal-batches", type=int, default=200,
                   help="training batches of 128 that re-estimate the BN statistics of each candidate "
                        "(default 200, SPOS; at most one pass over the training split)")
    add_arch_batch_option(s, "the N candidates are recalibrated together; a generation's candidates are scored "
                             "in one batch either way, the stem computed once for all of them")
    s.add_argument("--data-dir", default=None, help="the dataset's directory, if the supernet used one elsewhere")
    p.add_argument("--export", default=None, metavar="FILE",
                   help="write the front (best first) as official architecture strings, one per line")
    p.add_argument("--truth", default=None,
                   help="ground truth: 'store', a built-in table, a CSV, nb201-DATASET[:PATH]; prints the true "
                        "rank of the best, and is what --validate-seeds compares with")
    p.add_argument("--truth-config", default=None,
                   help="with --truth store: the ground truth's config hash, where the store holds several")
    p.add_argument("--validate-seeds", type=int, default=0, metavar="N",
                   help="compare evolution and random search (both; --method does not apply) over N seeds "
                        "against --truth (table and figure)")
    p.add_argument("--exhaustive", action="store_true",
                   help="with --validate-seeds: also score every architecture (automatic up to 1000)")
    add_runtime_options(p)


def run(args: argparse.Namespace) -> int:
    # every setting is checked before any work
    objectives = parse_objectives(args.objectives)
    cfg = EvolutionConfig(population=args.population, generations=args.generations, parents=args.parents,
                          mutations=args.mutations, crossovers=args.crossovers, mutation_prob=args.mutation_prob,
                          max_redraws=args.max_redraws)
    constraints = Constraints(max_params=args.max_params, max_mflops=args.max_mflops,
                              max_latency_ms=args.max_latency_ms)
    scoring = ScoringConfig(recal_batches=args.recal_batches, arch_batch=arch_batch_from_args(args))
    if args.validate_seeds < 0:
        raise WsnasError(f"--validate-seeds must be non-negative, got {args.validate_seeds}")
    if args.validate_seeds and args.truth is None:
        raise WsnasError("--validate-seeds compares the searches with a ground truth; give --truth (e.g. store, "
                         "nb201-cifar10)")
    if args.validate_seeds and args.export:
        raise WsnasError("--export writes the result of one search; leave it out with --validate-seeds")
    if args.exhaustive and not args.validate_seeds:
        raise WsnasError("--exhaustive is part of a validation; give --validate-seeds N with it")
    if args.export:
        check_output(args.export, stores=[args.store])
    if not Path(args.store).expanduser().is_file():
        raise WsnasError(f"results store {args.store!r} does not exist; give the store of the supernet run "
                         "with --store")
    device = device_from_args(args)
    from wsnas.experiments.evolve import evolve

    result = evolve(args.store, args.run, run_dir=args.run_dir or Path("wsnas-runs") / args.run, method=args.method,
                    seed=args.seed, cfg=cfg, constraints=constraints, objectives=objectives, scoring=scoring,
                    prefix=args.search_run, out_dir=args.out_dir, export=args.export, truth=args.truth,
                    truth_config=args.truth_config, validate_seeds=args.validate_seeds,
                    exhaustive=args.exhaustive, device=device, data_dir=args.data_dir,
                    progress=not args.no_progress)
    for o in result.outcomes:
        print(f"search {o.run_id}: {len(o.evaluated)} candidates ({o.new} new, {o.replayed} read back from the "
              f"store), {o.redraws} draws broke a constraint, {o.duplicates} were evaluated before")
    if result.validation is not None:
        from wsnas.report.evolve import validation_markdown

        print(validation_markdown(result.validation), end="")
        print(f"validation: {result.paths['md']}, {result.paths['csv']}, {result.paths['figure']} "
              f"({result.scored} architectures scored with the supernet now)")
        return 0
    o = result.outcomes[0]
    if o.best is not None:
        v = o.best.values
        lat = "" if v.get("latency_ms") is None else f", latency {v['latency_ms']:.3f} ms"
        print(f"best: {result.best_name}  accuracy {o.best.score:.4f} (shared weights), "
              f"{int(v['params']):,} parameters, {v['mflops']:.2f} MFLOPs{lat}")
    if result.best_truth is not None:
        t = result.best_truth
        print(f"best against {result.truth_source}: true accuracy {t['acc']:.4f}, rank {t['rank']} of {t['of']}")
    print(f"Pareto front ({','.join(result.objectives)}): {len(o.front)} architecture(s); figure: {result.figure} "
          f"({result.scored} architectures scored with the supernet now)")
    if result.export:
        print(f"exported {len(result.exported)} architecture(s) to {result.export}")
    return 0

