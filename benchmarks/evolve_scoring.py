"""How `wsnas evolve` scores candidates: one at a time, batched, stacked; BN running or recal.

A search scores each generation's new candidates with the supernet's shared weights
(``wsnas.selection.evolve.SharedWeights.score_many``: one ``evaluate_archs`` call for the batch).
This script times the ways of doing it, side by side in one run, on the same supernet, data and
candidates:

* ``one at a time``: one ``evaluate_archs`` call per candidate (what a search did before
  batching), the stem computed for each;
* ``batched``: one call for all candidates, one per forward pass (``arch_batch`` 1): the stem,
  which no choice changes, computed once per batch of images for all of them (recalibration
  included);
* ``stacked 4``, ``stacked 16``: one call, 4 or 16 candidates per forward pass
  (``--eval-arch-batch``; ``wsnas.nn.stacked``; recal: their BN statistics re-estimated together).

each with BN ``recal`` (`wsnas evolve`'s scoring: SPOS's 200 recalibration batches of 128, at
most one pass over the training split, then the validation split in batches of 512) and
``running`` (the supernet's own statistics, no recalibration: what recalibration costs). The
settings run interleaved (every setting once per round, the order rotating), so a disturbance
of the machine hits them alike; the table gives the median over rounds of milliseconds per
candidate and the speed-up against one at a time in the same BN mode, and the largest
difference of any candidate's loss from one at a time (batched: bit for bit; stacked: rounding).

The supernets are freshly initialised (the time does not depend on the weights); the data are
digits (embedded, 8x8), resident on the device.

    .venv/bin/python benchmarks/evolve_scoring.py --threads 1               # tiny64 and NB201 on the CPU
    .venv/bin/python benchmarks/evolve_scoring.py --rounds 5 --markdown benchmarks/EVOLVE_SCORING.md
    .venv/bin/python benchmarks/evolve_scoring.py --device cuda --json benchmarks/results/evolve-scoring-cuda.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wsnas.core.runtime import prepare_model, tune_allocator
from wsnas.data.registry import load_dataset
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches
from wsnas.selection.evolve import ScoringConfig, device_label
from wsnas.spaces import get_space

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import replace_section  # noqa: E402 - after the path set-up above

#: The spaces measured and their settings (NB201 at small widths: C=8, one cell per stage).
SPACES = {"tiny64": {}, "nb201": {"channels": 8, "cells_per_stage": 1}}
#: (name, one call for all candidates, candidates per forward pass)
WAYS = (("one at a time", False, 1), ("batched", True, 1), ("stacked 4", True, 4), ("stacked 16", True, 16))
BN_MODES = ("recal", "running")


def candidates(space, n: int, seed: int = 0) -> list:
    """``n`` distinct architectures drawn uniformly (as a search's first generation is)."""
    rng = np.random.default_rng(seed)
    out: list = []
    while len(out) < min(n, len(space)):
        arch = space.random_arch(rng)
        if arch not in out:
            out.append(arch)
    return out


def eval_config(bn_mode: str, arch_batch: int, scoring: ScoringConfig) -> EvalConfig:
    """`wsnas evolve`'s scoring (recal), or the same without recalibration (running)."""
    cfg = dataclasses.replace(scoring, arch_batch=arch_batch).eval_config()
    return cfg if bn_mode == "recal" else EvalConfig(bn_mode="running", batch_size=cfg.batch_size,
                                                     arch_batch=arch_batch)


def score(net, archs, data, cfg: EvalConfig, recal, together: bool) -> list[tuple[float, float]]:
    if together:
        return evaluate_archs(net, archs, data.valid, cfg, recal=recal)
    return [evaluate_archs(net, [a], data.valid, cfg, recal=recal)[0] for a in archs]


def measure_space(name: str, data, args, scoring: ScoringConfig, log=print) -> list[dict]:
    """Every (BN mode, way) on one space: median ms per candidate over ``args.rounds`` rounds."""
    space = get_space(name, **SPACES[name])
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels)
    net = prepare_model(net.to(args.device), "fp32")
    archs = candidates(space, args.candidates)
    recal = recalibration_batches(data.train, scoring.eval_config(), scoring.recal_seed)
    cuda = str(args.device).startswith("cuda")
    settings = [(bn, way) for bn in BN_MODES for way in WAYS]
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    times: dict[tuple[str, str], list[float]] = {(bn, w[0]): [] for bn, w in settings}
    for bn, (way, together, k) in settings:  # warm-up, and the scores compared below
        results[(bn, way)] = score(net, archs, data, eval_config(bn, k, scoring), recal, together)
    for r in range(args.rounds):
        shift = r % len(settings)
        for bn, (way, together, k) in settings[shift:] + settings[:shift]:
            cfg = eval_config(bn, k, scoring)
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            score(net, archs, data, cfg, recal, together)
            if cuda:
                torch.cuda.synchronize()
            times[(bn, way)].append((time.perf_counter() - start) / len(archs))
        log(f"{name}: round {r + 1}/{args.rounds} done", flush=True)
    rows = []
    for bn, (way, _, k) in settings:
        ms = 1000 * statistics.median(times[(bn, way)])
        base = 1000 * statistics.median(times[(bn, "one at a time")])
        ref = results[(bn, "one at a time")]
        rows.append({"space": name, "space_options": SPACES[name], "bn_mode": bn, "way": way, "arch_batch": k,
                     "ms_per_candidate": ms, "speedup": base / ms,
                     "max_loss_diff": max(abs(a[1] - b[1]) for a, b in zip(results[(bn, way)], ref)),
                     "max_acc_diff": max(abs(a[0] - b[0]) for a, b in zip(results[(bn, way)], ref)),
                     "rounds_ms": [1000 * t for t in times[(bn, way)]]})
        log(f"{name:7s} {bn:8s} {way:14s} {ms:9.2f} ms/candidate  {base / ms:5.2f}x  "
            f"max |d loss| {rows[-1]['max_loss_diff']:.1e}", flush=True)
    return rows


MD_TEMPLATE = """# Candidate scoring of `wsnas evolve`

Written by `benchmarks/evolve_scoring.py --markdown benchmarks/EVOLVE_SCORING.md` (its docstring
says what each row runs). Each device's section is rewritten by a run on that device; the other
and the notes below are kept.

<!-- BEGIN cpu -->
## CPU

Not measured yet.
<!-- END cpu -->

<!-- BEGIN cuda -->
## CUDA

Not measured yet. On a CUDA machine: `.venv/bin/python benchmarks/evolve_scoring.py --device cuda
--markdown benchmarks/EVOLVE_SCORING.md`.
<!-- END cuda -->
"""


def markdown_section(meta: dict, rows: list[dict]) -> str:
    """The device's section: what was measured where, and the table."""
    lines = [f"## {meta['device'].upper()}", "",
             f"Measured {meta['date']} on {meta['machine']} (torch threads: {meta['threads']}; load average "
             f"{meta['load_before']} before, {meta['load_after']} after), torch {meta['torch']}, Python "
             f"{meta['python']}; digits ({meta['sizes']}), {meta['candidates']} candidates, median of "
             f"{meta['rounds']} interleaved rounds; recal: {meta['recal']}.", "",
             "| space | BN | scoring | ms / candidate | vs one at a time | max abs loss diff |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        opts = ", ".join(f"{k}={v}" for k, v in r["space_options"].items())
        lines.append(f"| {r['space']}{f' ({opts})' if opts else ''} | {r['bn_mode']} | {r['way']} | "
                     f"{r['ms_per_candidate']:.1f} | {r['speedup']:.2f}x | {r['max_loss_diff']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", choices=tuple(SPACES), action="append",
                   help="space(s) to measure (default: tiny64 and nb201)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved repeats of every setting (default 3)")
    p.add_argument("--candidates", type=int, default=16, help="candidates scored per unit (default 16)")
    p.add_argument("--recal-batches", type=int, default=200,
                   help="recalibration batches of 128 (default 200, `wsnas evolve`'s; at most one pass)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="digits option, e.g. limit=200 (default: the whole embedded set)")
    p.add_argument("--json", default=None, help="write the results here (default benchmarks/results/"
                                                 "evolve-scoring-<date>-<device>.json)")
    p.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.candidates < 1 or args.recal_batches < 1:
        p.error("--rounds, --candidates and --recal-batches must be at least 1")
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: no CUDA device here")
    tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {}
    for item in args.data_option:
        key, _, value = item.partition("=")
        options[key] = int(value) if value.isdigit() else value
    data = load_dataset("digits", device=args.device, **options)
    scoring = ScoringConfig(recal_batches=args.recal_batches)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = [row for name in args.space or tuple(SPACES) for row in measure_space(name, data, args, scoring)]
    recal = recalibration_batches(data.train, scoring.eval_config(), scoring.recal_seed)
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "device": "cuda" if str(args.device).startswith("cuda") else "cpu",
            "machine": f"{device_label(torch.device(args.device))}, {os.cpu_count()} cores",
            "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "sizes": ", ".join(f"{k} {len(getattr(data, k))}" for k in ("train", "valid")),
            "candidates": args.candidates, "rounds": args.rounds,
            "recal": f"{len(recal)} batches of {scoring.recal_batch_size}, scoring batches of {scoring.batch_size}",
            "load_before": load_before, "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    device = meta["device"]
    out = Path(args.json or Path(__file__).parent / "results" / f"evolve-scoring-{meta['date'][:10]}-{device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {out}")
    if args.markdown:
        path = Path(args.markdown)
        text = path.read_text() if path.exists() else MD_TEMPLATE
        path.write_text(replace_section(text, meta["device"], markdown_section(meta, rows)))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
