"""How the main job's GT-Tau on digits depends on its budget: the evidence behind its defaults.

Issue 17 asks for the main job's defaults (``wsnas insights`` on digits) to be chosen from a
measurement: the supernet GT-Tau against the supernet's epochs, the ground truth's budget and
the BN mode used to score children. This script measures it with wsnas's own commands, in one
results store, resumably (every job is an ``wsnas`` command that continues where it stopped):

1. ground truth: every tiny64 child trained alone for each ``--gt-epochs`` budget (2 seeds each);
2. supernets: for each supernet budget in ``--epochs``, an insights experiment of ``--seeds``
   round-robin instances (no dense evaluation, no fine-tuning), children scored after every
   epoch with running BN statistics (the default);
3. the final weights of every instance scored again in each other BN mode of ``--bn-modes``
   (``recal``: statistics re-estimated per child; ``batch``: batch statistics) — the same
   weights, so that the BN mode is the only difference;
4. the table: every instance's final ranking (and every epoch's) against every ground-truth
   budget, the ground truth against itself (seed-to-seed tau), S-Tau across seeds, written to
   ``RUN_DIR/defaults.md`` and ``RUN_DIR/defaults.json``.

Jobs run ``--parallel`` at a time, each with ``--threads`` torch threads.

    python studies/defaults.py --run-dir wsnas-runs/defaults
    python studies/defaults.py --epochs 5,30 --gt-epochs 1,2 --bn-modes running --seeds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from wsnas import metrics
from wsnas.data import load_dataset
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches
from wsnas.experiments.insights import InsightsConfig, study_instances
from wsnas.experiments.instances import load_final
from wsnas.groundtruth.truth import truth_from_store
from wsnas.spaces import get_space
from wsnas.store import Store
from wsnas.training.trainer import SupernetConfig


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be a positive integer")
    return values


def _modes(text: str) -> list[str]:
    modes = [m for m in text.split(",") if m]
    bad = [m for m in modes if m not in ("running", "batch", "recal")]
    if bad or not modes:
        raise argparse.ArgumentTypeError(f"BN mode {bad[0] if bad else text!r} is not one of "
                                         "running, batch, recal")
    return modes


def _wsnas(args: list[str], log: Path) -> float:
    """Run one wsnas command (its output to ``log``); its wall time in seconds."""
    start = time.perf_counter()
    with open(log, "a") as out:
        out.write("$ wsnas " + " ".join(args) + "\n")
        out.flush()
        proc = subprocess.run([sys.executable, "-m", "wsnas", *args], stdout=out,
                              stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"wsnas {' '.join(args)} failed with status {proc.returncode}; see {log}")
    return time.perf_counter() - start


def experiment(epochs: int) -> str:
    return f"e{epochs}"


def study_config(epochs: int, seeds: int) -> InsightsConfig:
    full = InsightsConfig.for_dataset("digits")
    return InsightsConfig(groundtruth=full.groundtruth, supernet=full.supernet.with_overrides(epochs=epochs),
                          instances={"seeds": seeds, "orders": 0, "shuffle": 0}, dense_last=0,
                          finetune_steps=0)


def rescore(a: argparse.Namespace, epochs: int, mode: str) -> list[np.ndarray]:
    """Valid accuracy of every child under the final weights of each instance, BN mode ``mode``."""
    space, data = get_space("tiny64"), load_dataset("digits", device=torch.device("cpu"))
    cfg = study_config(epochs, a.seeds)
    sn_cfg = SupernetConfig(train=cfg.supernet, eval=cfg.eval, dense_last=0)
    ecfg = EvalConfig(bn_mode=mode)
    out = []
    for inst in study_instances(experiment(epochs), cfg, a.run_dir):
        trainer = load_final(inst, space, data, sn_cfg)
        recal = recalibration_batches(data.train, ecfg, inst.seed) if mode == "recal" else None
        scores = evaluate_archs(trainer.supernet, trainer.archs, data.valid, ecfg, recal=recal,
                                bank=trainer.bank)
        out.append(np.array([acc for acc, _ in scores]))
    return out


def run_jobs(a: argparse.Namespace, store: Path) -> dict[str, float]:
    common = ["--store", str(store), "--threads", str(a.threads), "--no-progress"]
    gt_jobs = {f"gt{g}": ["groundtruth", "--space", "tiny64", "--data", "digits", "--seeds",
                          str(a.gt_seeds), "--epochs", str(g), *common] for g in a.gt_epochs}
    sn_jobs = {experiment(e): ["insights", "--run-dir", str(a.run_dir), "--experiment",
                               experiment(e), "--epochs", str(e), "--seeds", str(a.seeds),
                               "--orders", "0", "--shuffles", "0",
                                  "--dense-last", "0", "--finetune-steps", "0",
                                  "--gt-seeds", str(a.gt_seeds), "--gt-epochs",
                                  str(a.gt_epochs[0]), "--no-report", *common]
               for e in a.epochs}
    # a job's time is its first, full run's: a rerun that finds it done takes seconds
    times_file = a.run_dir / "times.json"
    times: dict[str, float] = json.loads(times_file.read_text()) if times_file.exists() else {}
    log = a.run_dir / "defaults.log"
    for jobs in (gt_jobs, sn_jobs):  # every ground truth first: the studies then reuse it
        with ThreadPoolExecutor(a.parallel) as pool:
            for name, secs in zip(jobs, pool.map(lambda j: _wsnas(j, log), jobs.values())):
                times.setdefault(name, secs)
                print(f"{name}: {secs:.0f} s", flush=True)
                times_file.write_text(json.dumps(times))
    return times


def _gt_tables(store: Store, gt_epochs: list[int]) -> dict[int, object]:
    return {g: truth_from_store(store, space="tiny64", dataset="digits", epochs=g) for g in gt_epochs}


def analyse(a: argparse.Namespace, store_path: Path, times: dict[str, float]) -> dict:
    out: dict = {"gt": {}, "supernets": [], "times_s": times,
                 "machine": f"{os.cpu_count()} CPUs, {a.parallel} jobs at a time, "
                            f"{a.threads} thread(s) each"}
    with Store(store_path, create=False) as store:
        truths = _gt_tables(store, a.gt_epochs)
        for g, t in truths.items():
            seeds = [t.per_seed[s] for s in sorted(t.per_seed)]
            pair = [metrics.kendall_tau(x, y) for i, x in enumerate(seeds) for y in seeds[i + 1:]]
            out["gt"][g] = {"seed_tau": float(np.mean(pair)) if pair else None,
                            "mean_test_acc": float(np.mean(t.accuracy))}
        for e in a.epochs:
            stored, curves = [], []
            for k in range(a.seeds):
                labels, archs, matrix = store.prediction_matrix(f"{experiment(e)}/seeds/{k}")
                order = sorted((int(lab.split(":")[1]), i) for i, lab in enumerate(labels)
                               if lab.startswith("epoch:"))
                stored.append(matrix[order[-1][1]])
                curves.append([matrix[i] for _, i in order])
            aligned = {g: t.accuracy[[t.position(x) for x in archs]] for g, t in truths.items()}
            for m in a.bn_modes:
                start = time.perf_counter()
                finals = stored if m == "running" else rescore(a, e, m)
                secs = time.perf_counter() - start
                entry = {"epochs": e, "bn_mode": m, "seeds": a.seeds, "rescore_s": secs,
                         "s_tau": metrics.s_tau(np.array(finals))["mean"] if len(finals) > 1 else None,
                         "mean_child_acc": float(np.mean(finals)),
                         "gt_tau": {g: {"mean": float(np.mean([metrics.gt_tau(f, gt) for f in finals])),
                                        "std": float(np.std([metrics.gt_tau(f, gt) for f in finals]))}
                                    for g, gt in aligned.items()}}
                if m == "running":
                    for g, gt in aligned.items():
                        entry["gt_tau"][g]["per_epoch"] = np.mean(
                            [[metrics.gt_tau(row, gt) for row in c] for c in curves], axis=0).tolist()
                out["supernets"].append(entry)
    return out


def markdown(res: dict, a: argparse.Namespace) -> str:
    gts = list(res["gt"])
    lines = ["# GT-Tau of the main job's supernets against their budget (digits, tiny64)", "",
             f"Machine: {res['machine']}. {a.seeds} round-robin supernet instances per row "
             "(seeds 0..), batch 64; ground truth: every child trained alone, "
             f"{a.gt_seeds} seeds, batch 64.", "",
             "Ground truth against itself:", "",
             "| GT epochs | seed-to-seed tau | mean test accuracy | time |", "|---|---|---|---|"]
    for g, v in res["gt"].items():
        tau = "–" if v["seed_tau"] is None else f"{v['seed_tau']:.3f}"
        lines.append(f"| {g} | {tau} | {v['mean_test_acc']:.3f} | {res['times_s'].get(f'gt{g}', 0):.0f} s |")
    lines += ["", "Supernets: final GT-Tau, mean ± std over the instances, against each ground "
              "truth; S-Tau across the instances:", "",
              "| supernet epochs | BN mode | " + " | ".join(f"GT-Tau vs GT {g} ep" for g in gts)
              + " | S-Tau | mean child acc | time |",
              "|---|---|" + "---|" * (len(gts) + 3)]
    for s in res["supernets"]:
        cells = [f"{s['gt_tau'][g]['mean']:.3f} ± {s['gt_tau'][g]['std']:.3f}" for g in gts]
        st = "–" if s["s_tau"] is None else f"{s['s_tau']:.3f}"
        t = res["times_s"].get(experiment(s["epochs"]), 0) if s["bn_mode"] == "running" else s["rescore_s"]
        lines.append(f"| {s['epochs']} | {s['bn_mode']} | " + " | ".join(cells)
                     + f" | {st} | {s['mean_child_acc']:.3f} | {t:.0f} s |")
    lines += ["", "Time: training and scoring after every epoch with running statistics; for the other "
              "modes, scoring the final weights again.", "",
              f"GT-Tau after each epoch (running statistics, mean over instances, against GT "
              f"{gts[0]} ep, every 5th epoch):", ""]
    for s in res["supernets"]:
        if "per_epoch" not in s["gt_tau"][gts[0]]:
            continue
        curve = s["gt_tau"][gts[0]]["per_epoch"]
        pts = ", ".join(f"{i + 1}: {v:.2f}" for i, v in enumerate(curve)
                        if (i + 1) % 5 == 0 or i in (0, len(curve) - 1))
        lines.append(f"* {s['epochs']} epochs: {pts}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", type=Path, default=Path("wsnas-runs/defaults"))
    p.add_argument("--epochs", type=_ints, default=[5, 10, 20, 30, 60],
                   help="supernet budgets in epochs (default 5,10,20,30,60)")
    p.add_argument("--gt-epochs", type=_ints, default=[2, 1, 4],
                   help="ground-truth budgets in epochs; the first is the studies' own (default 2,1,4)")
    p.add_argument("--bn-modes", type=_modes, default=["running", "recal", "batch"],
                   help="BN modes for scoring the final weights (default running,recal,batch)")
    p.add_argument("--seeds", type=int, default=3, help="supernet instances per row (default 3)")
    p.add_argument("--gt-seeds", type=int, default=2, help="ground-truth seeds (default 2)")
    p.add_argument("--parallel", type=int, default=2, help="jobs at a time (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job (default 1)")
    a = p.parse_args(argv)
    for name in ("seeds", "gt_seeds", "parallel", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(a, name)}")
    a.run_dir.mkdir(parents=True, exist_ok=True)
    store = a.run_dir / "results.db"
    times = run_jobs(a, store)
    res = analyse(a, store, times)
    (a.run_dir / "defaults.json").write_text(json.dumps(res, indent=1, default=float))
    text = markdown(res, a)
    (a.run_dir / "defaults.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
