"""PA&DA's sampling overhead: training time per step with and without it.

The same supernet, data, optimiser and batch size train with SPOS (uniform paths, shuffled
data) and with PA&DA's path sampling, data sampling and both. Each measurement is a fresh
supernet trained for ``--epochs`` epochs with wsnas's own trainer (no evaluation, no
checkpoint time counted); the first epoch is left out (warm-up, and the data are not yet
drawn from q; PA&DA's tau is 0 there and in the second epoch). The strategies run interleaved (A B C D, A B C D, ...)
``--rounds`` times, so a disturbance of the machine hits them all alike; the table gives the
median seconds per step and the overhead against SPOS.

End-to-end differences of a few percent drown in the noise of a shared machine, so the
sampling's own work is also timed directly, in isolation, on the same supernet: per step
drawing the path, folding the gradient norms (PA&DA's ``_fold_grad_norms``, its queue flushed
as at an epoch's end) and recording the samples' importance; per epoch the new distributions
and the next epoch's draw, divided by the steps of an epoch. That sum, against SPOS's step, is
the overhead the paper calls negligible.

    .venv/bin/python benchmarks/pada_overhead.py                 # tiny64 and NB201 on digits
    .venv/bin/python benchmarks/pada_overhead.py --space tiny64 --rounds 5 --markdown benchmarks/PADA.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from wsnas.data.registry import load_dataset
from wsnas.spaces import get_space
from wsnas.strategies import get_strategy
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer

STRATEGIES = ("spos", "pada-tau0", "pada-path", "pada-data", "pada")
# pada-tau0: PA&DA with all its bookkeeping but tau held at 0, so paths and data are drawn
# uniformly as in SPOS: the difference to SPOS is the sampling's cost alone. With tau rising,
# PA&DA also changes *what* is trained (more of the ops with large gradients, usually the
# expensive convolutions), which changes the cost of a step for another reason.
SPACES = {"tiny64": {}, "nb201": {"affine": False, "track_running_stats": False}}


def time_per_step(space_name: str, strategy: str, data, epochs: int, batch_size: int, seed: int) -> float:
    """Median seconds per step over epochs 2..``epochs`` of one fresh training."""
    space = get_space(space_name, **SPACES[space_name])
    cfg = SupernetConfig(train=TrainConfig(epochs=epochs, batch_size=batch_size), eval_every_epoch=False,
                         dense_last=0)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = SupernetTrainer(space, data, get_strategy("pada" if strategy == "pada-tau0" else strategy), cfg,
                                  seed=seed, run_dir=run_dir, progress=False)
        if strategy == "pada-tau0":
            # tau = e / total_epochs stays 0 (bound afresh before the first step)
            trainer.strategy.setup(replace(trainer.strategy.ctx, total_epochs=10**12))
        trainer.train()
    steps = trainer.steps_per_epoch
    return statistics.median(h["seconds"] / steps for h in trainer.history[1:])


def sampling_cost(space_name: str, data, batch_size: int, reps: int = 50) -> dict:
    """Milliseconds of PA&DA's own sampling work per training step, measured in isolation."""
    from wsnas.strategies.base import train_path

    space = get_space(space_name, **SPACES[space_name])
    cfg = SupernetConfig(train=TrainConfig(epochs=2, batch_size=batch_size), eval_every_epoch=False, dense_last=0)
    strategy = get_strategy("pada")
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = SupernetTrainer(space, data, strategy, cfg, seed=0, run_dir=run_dir, progress=False)
    n = len(trainer.weight_split)
    x, y = data.train.x[:batch_size], data.train.y[:batch_size]
    indices = torch.arange(batch_size)
    arch = strategy.next_arch()
    result = train_path(strategy, arch, x, y, keep_logits=True)  # gradients and logits to work on

    def timed(fn, k=reps) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(k):
            fn()
        return 1000 * (time.perf_counter() - t) / k

    def fold() -> None:
        strategy._fold_grad_norms(arch)
        strategy._flush()

    gen = torch.Generator().manual_seed(0)

    def epoch() -> None:
        strategy.end_epoch(0)
        strategy.epoch_indices(n, gen)

    out = {"path_draw": timed(strategy.next_arch), "fold_norms": timed(fold),
           "importance": timed(lambda: strategy._record_importance(result.logits, y, n, indices)),
           "epoch_update": timed(epoch, 10) / trainer.steps_per_epoch}
    out["total"] = sum(out.values())
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", choices=tuple(SPACES), action="append",
                   help="space(s) to measure (default: tiny64 and nb201)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per training, the first not timed (default 4)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved repeats of every strategy (default 3)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="write the results here (default benchmarks/results/"
                                                 "pada-overhead-<date>.json)")
    p.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    if args.epochs < 2 or args.rounds < 1:
        p.error("--epochs must be at least 2 and --rounds at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset("digits")
    results = []
    for space_name in args.space or tuple(SPACES):
        times: dict[str, list[float]] = {s: [] for s in STRATEGIES}
        for r in range(args.rounds):
            for strategy in STRATEGIES:
                times[strategy].append(time_per_step(space_name, strategy, data, args.epochs, args.batch_size, r))
        base = statistics.median(times["spos"])
        cost = sampling_cost(space_name, data, args.batch_size)
        for strategy in STRATEGIES:
            med = statistics.median(times[strategy])
            results.append({"space": space_name, "strategy": strategy, "ms_per_step": 1000 * med,
                            "overhead": med / base - 1, "rounds_ms": [1000 * t for t in times[strategy]]})
            print(f"{space_name:7s} {strategy:10s} {1000 * med:8.2f} ms/step  {100 * (med / base - 1):+6.1f}%",
                  flush=True)
        results.append({"space": space_name, "strategy": "pada sampling work", "ms_per_step": cost["total"],
                        "overhead": cost["total"] / (1000 * base), "parts_ms": cost})
        print(f"{space_name:7s} PA&DA's own sampling work {cost['total']:.3f} ms/step = "
              f"{100 * cost['total'] / (1000 * base):.1f}% of a SPOS step "
              f"({', '.join(f'{k} {v:.3f}' for k, v in cost.items() if k != 'total')})", flush=True)
    meta = {"date": dt.date.today().isoformat(), "machine": cpu_name(), "cores": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "data": "digits (embedded)",
            "batch_size": args.batch_size, "epochs": args.epochs, "rounds": args.rounds}
    out = Path(args.json or Path(__file__).parent / "results" / f"pada-overhead-{meta['date']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {out}")
    if args.markdown:
        lines = [f"Measured {meta['date']} on {meta['machine']} ({meta['cores']} torch threads), torch "
                 f"{meta['torch']}, Python {meta['python']}; digits, batch {args.batch_size}, median of "
                 f"{args.rounds} interleaved rounds of epochs 2..{args.epochs}.", "",
                 "| space | strategy | ms / step | overhead vs SPOS |", "|---|---|---|---|"]
        lines += [f"| {r['space']} | {r['strategy']} | {r['ms_per_step']:.2f} | {100 * r['overhead']:+.1f}% |"
                  for r in results]
        lines += ["", "End to end: median of the rounds' median step times (training only, the first epoch "
                  "left out). 'pada sampling work': PA&DA's own work per step timed in isolation "
                  "(path draw, gradient-norm folding, importance recording, and the per-epoch "
                  "updates divided by the steps of an epoch), as a share of SPOS's step."]
        Path(args.markdown).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
