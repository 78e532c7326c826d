"""How to spend a small CPU's cores: one process with every thread, or one process per core.

The work is the insights study's most frequent step: scoring all 64 tiny64 children with
shared weights on digits' validation split (359 images, BN ``running``), as a supernet
instance does after every epoch and after each of its last 64 mini-batches. Each row scores
``--jobs`` such evaluations and reports children scored per second over the whole row:

* ``1 process x N threads``: one after the other in this process (``--executor local``);
* ``N processes x 1 thread``: the same evaluations as jobs of wsnas's ``ProcessExecutor``
  (``--executor processes``), all workers busy at once, their start-up included;

each in PyTorch's default layout (NCHW) and channels-last (``--channels-last``). The rows run
one after the other in one invocation, so they meet the same machine.

    .venv/bin/python benchmarks/executor_throughput.py
    .venv/bin/python benchmarks/executor_throughput.py --jobs 8 --markdown benchmarks/EXECUTOR.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from pathlib import Path

import torch

from wsnas.core.runtime import set_channels_last
from wsnas.data.registry import load_dataset
from wsnas.evaluator import EvalConfig, evaluate_archs
from wsnas.execution.executor import LocalExecutor, ProcessExecutor

_MODEL: dict = {}


def score_all(channels_last: bool) -> int:
    """Score every tiny64 child once (a fresh supernet per process, built once); returns the count."""
    from wsnas.spaces import get_space

    if channels_last not in _MODEL:
        torch.manual_seed(0)
        space = get_space("tiny64")
        data = load_dataset("digits", device="cpu", split_seed=0)
        model = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels).eval()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        _MODEL[channels_last] = (model, list(space.enumerate()), data)
    model, archs, data = _MODEL[channels_last]
    evaluate_archs(model, archs, data.valid, EvalConfig())
    return len(archs)


def row(executor, jobs: int, channels_last: bool) -> float:
    """Children scored per second over ``jobs`` evaluations (one warm-up evaluation in this process)."""
    set_channels_last(channels_last)  # travels to worker processes with the process settings
    count = []
    start = time.perf_counter()
    executor.run(score_all, [channels_last] * jobs, on_result=lambda job, n: count.append(n))
    return sum(count) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=8, help="evaluations of all 64 children per row (default 8)")
    ap.add_argument("--markdown", default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    rows = []
    for layout, cl in (("NCHW", False), ("channels-last", True)):
        for threads in sorted({cores, 1}, reverse=True):
            torch.set_num_threads(threads)
            score_all(cl)  # build and warm up in this process
            rows.append((f"1 process x {threads} thread(s)", layout, row(LocalExecutor(), args.jobs, cl)))
        torch.set_num_threads(cores)
        if cores > 1:
            rows.append((f"{cores} processes x 1 thread", layout,
                         row(ProcessExecutor(workers=cores, threads=1), args.jobs, cl)))
    base = rows[0][2]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"Measured {dt.date.today()} on {platform.processor() or platform.machine()} ({cores} cores), "
             f"torch {torch.__version__}, Python {platform.python_version()}; load average "
             f"{load:.1f} at the end; {args.jobs} evaluations of all 64 tiny64 children on digits' "
             "validation split per row.", "",
             "| execution | layout | children / s | vs the first row |", "|---|---|---|---|"]
    lines += [f"| {name} | {layout} | {rate:.1f} | {rate / base:.2f}x |" for name, layout, rate in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
