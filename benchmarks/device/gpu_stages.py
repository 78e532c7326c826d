"""The stages of ``benchmarks/device/run_gpu.sh`` that are Python: one sub-command each.

* ``setup``: the interpreter, torch, the GPU; installs what is missing from carried wheels
  (only those this interpreter can install, one per package) into a folder put first on
  ``PYTHONPATH``, and checks that wsnas, xautodl and NNI import;
* ``torchrun``: ``wsnas supernet`` under ``torchrun --standalone --nproc_per_node 1`` (NCCL on
  CUDA, gloo on a CPU), and whether it ran, with the NCCL version its log names;
* ``score-eval``: the evaluator ``wsnas supernet`` uses, built from the command's own options,
  scoring NB201 cells on synthetic CIFAR-sized validation images under a time cap, per option
  set (fp32; bf16 with channels-last; more children stacked per pass); the time for all 15,625
  measured or projected, and how far each option's scores are from the plain computation;
* ``score-command``: the command itself, ``wsnas supernet --space nb201 ... --archs all`` (or a
  seeded ``--sample`` when the projection says all would not fit in the cap), timed end to end;
* ``report``: every stage's JSON gathered into ``summary.json`` and ``summary.md``, the harness
  runs merged, the CUDA section of ``benchmarks/RESULTS.md`` written (a copy in the output
  folder) with the issue's targets, met or not, and the logs packed.

Run through ``run_gpu.sh``, which gives each stage a time limit and records its status;
``python benchmarks/device/gpu_stages.py STAGE --help`` lists a stage's options.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

NB201_CELLS = 15_625
TARGET_ALL_S = 300.0  # the issue: all 15,625 cells in at most 5 minutes
# the papers' supernet, as the harness builds it: cell BNs without affine parameters or running statistics
SPACE_ARGS = ["--space", "nb201", "--space-option", "affine=false", "--space-option", "track_running_stats=false"]
# the option sets score-eval compares (flags of `wsnas supernet`); the first is the plain default
DP_RUN = "supernet/uniform/0"  # the default run id of `wsnas supernet` (the torchrun stage gives none)
VARIANTS = ("", "--precision bf16 --channels-last", "--precision bf16 --channels-last --eval-arch-batch 64")
WORKLOAD_ORDER = ("single_path_64", "single_path_256", "darts_64", "gdas_64", "eval", "epoch")


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def cifar_folder(work: Path, n_train: int, n_test: int = 100) -> Path:
    """CIFAR-10-format synthetic files with ``n_train`` training images (written once per size)."""
    from harness import write_cifar10

    folder = work / f"cifar-{n_train}"
    if not (folder / "cifar-10-batches-py" / "batches.meta").exists():
        write_cifar10(folder, n_train, n_test)
    return folder / "cifar-10-batches-py"


def data_args(folder: Path, valid: int) -> list[str]:
    return ["--data", "cifar10", "--data-dir", str(folder), "--data-option", f"valid_size={valid}"]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _tail(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-600:]


# ------------------------------------------------------------------------------------ setup
def wheel_tags(filename: str) -> tuple[str, str, set[str]]:
    """(project, version, tags) of a wheel file name (``name-ver[-build]-py-abi-plat.whl``)."""
    parts = filename[:-len(".whl")].split("-")
    if not filename.endswith(".whl") or len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename!r}")
    name, version, (pys, abis, plats) = parts[0], parts[1], parts[-3:]
    tags = {f"{p}-{a}-{pl}" for p in pys.split(".") for a in abis.split(".") for pl in plats.split(".")}
    return re.sub(r"[-_.]+", "-", name).lower(), version, tags


def pick_wheels(folders, supported: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """The wheels of ``folders`` this interpreter can install, one per project (the best tag, then the
    first folder), and the file names left out with why."""
    if supported is None:
        try:
            from packaging.tags import sys_tags
        except ImportError:  # pip's own copy
            from pip._vendor.packaging.tags import sys_tags
        supported = [str(t) for t in sys_tags()]
    rank = {t: i for i, t in enumerate(supported)}
    best: dict[str, tuple[int, int, Path]] = {}
    skipped = []
    for f_index, folder in enumerate(folders):
        for path in sorted(Path(folder).glob("*.whl")):
            try:
                project, _, tags = wheel_tags(path.name)
            except ValueError:
                skipped.append(f"{path.name} (not a wheel file name)")
                continue
            ranks = [rank[t] for t in tags if t in rank]
            if not ranks:
                skipped.append(f"{path.name} (not for this interpreter)")
                continue
            key = (min(ranks), f_index, path)
            if project in best:
                skipped.append(f"{(max(best[project], key)[2]).name} (another wheel of {project} chosen)")
                key = min(best[project], key)
            best[project] = key
    return [best[p][2] for p in sorted(best)], skipped


def import_probes() -> dict[str, str]:
    from harness import PEER_PROBES

    return {"wsnas": "import wsnas.cli, numpy, scipy, sklearn, tqdm, matplotlib", **PEER_PROBES}


def probe(code: str, env: dict) -> str | None:
    """None when ``code`` runs in a fresh interpreter with ``env``, else the last line of its error."""
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, env=env)
    return None if proc.returncode == 0 else (_tail(proc.stderr, 1) or f"exit status {proc.returncode}")


def environment(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
            "platform": platform.platform(), "cores": os.cpu_count(), "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
        try:
            version = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, version)) if isinstance(version, tuple) else str(version)
        except Exception as exc:  # noqa: BLE001 - informative only
            info["nccl"] = f"unknown ({type(exc).__name__})"
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.sm,"
                              "clocks.max.sm,temperature.gpu,utilization.gpu", "--format=csv"],
                             capture_output=True, text=True)
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    if device.startswith("cuda") and not torch.cuda.is_available():
        info["error"] = "--device cuda but torch sees no CUDA device"
    return info


def cmd_setup(args) -> int:
    out = {"site": str(args.site), "wheels": [str(w) for w in args.wheels]}
    env = dict(os.environ)
    paths = [str(args.site), str(ROOT / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    probes = import_probes()
    missing = {name: why for name, code in probes.items() if (why := probe(code, env)) is not None}
    out["missing_before"] = missing
    if missing:
        folders = [w for w in args.wheels if Path(w).is_dir()]
        wheels, skipped = pick_wheels(folders)
        out.update(installed=[w.name for w in wheels], skipped=skipped)
        if wheels:
            print(f"installing {len(wheels)} wheels into {args.site} ...", flush=True)
            proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                                   "--no-compile", "--no-cache-dir", "--disable-pip-version-check", "--upgrade",
                                   "--target", str(args.site), *map(str, wheels)], capture_output=True, text=True)
            out["pip_rc"] = proc.returncode
            if proc.returncode:
                out["pip_error"] = _tail(proc.stderr + proc.stdout, 5)
        missing = {name: why for name, code in probes.items() if (why := probe(code, env)) is not None}
    out["missing_after"] = missing
    out["environment"] = environment(args.device)
    write_json(args.json, out)
    for name in probes:
        print(f"{name}: {'importable' if name not in missing else 'MISSING: ' + missing[name]}")
    print(json.dumps(out["environment"], indent=1))
    # the peers missing is recorded (their rows say why); wsnas missing or no GPU stops nothing here either
    return 0 if "wsnas" not in missing and "error" not in out["environment"] else 1


# ---------------------------------------------------------------------------------- torchrun
def torchrun_command(python: str) -> list[str]:
    """``torchrun`` beside ``python`` when there is one, else its module (the same program)."""
    beside = Path(shutil.which(python) or python).parent / "torchrun"
    return [str(beside)] if beside.exists() else [python, "-m", "torch.distributed.run"]


def cmd_torchrun(args) -> int:
    work = args.work / "torchrun"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    folder = cifar_folder(args.work, args.images * 2)
    cmd = [*torchrun_command(args.python), "--standalone", "--nproc_per_node", "1", "-m", "wsnas", "supernet",
           *network_args(args.tiny), *data_args(folder, args.images), "--epochs", "1",
           "--batch-size", str(args.batch_size), "--sample", str(args.sample), "--device", args.device,
           "--run-dir", str(work / "run"), "--store", str(work / "dp.db"), "--no-progress"]
    # no --run: torchrun's own parser takes `--run` for an abbreviation of its --run-path and stops
    # ("ambiguous option"), so the run keeps its default id
    env = {**os.environ, "NCCL_DEBUG": "INFO", "PYTHONUNBUFFERED": "1"}
    print("$ " + shlex.join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    text = proc.stdout + "\n" + proc.stderr
    print(text)
    nccl = re.search(r"NCCL version ([0-9][0-9A-Za-z.+\-]*)", text)
    ranks = re.search(r"\d+ epochs on (\d+) ranks", proc.stdout)
    predictions = status = None
    with contextlib.suppress(sqlite3.Error, TypeError):
        with contextlib.closing(sqlite3.connect(str(work / "dp.db"))) as db:
            predictions = db.execute("SELECT COUNT(*) FROM predictions WHERE run_id = ?", (DP_RUN,)).fetchone()[0]
            status = db.execute("SELECT status FROM runs WHERE run_id = ?", (DP_RUN,)).fetchone()[0]
    ran = proc.returncode == 0 and ranks is not None and status == "done"
    backend = "nccl" if args.device.startswith("cuda") else "gloo"
    out = {"command": shlex.join(cmd), "rc": proc.returncode, "wall_s": wall, "ran": ran,
           "ranks": int(ranks.group(1)) if ranks else None, "backend": backend,
           "nccl_version": nccl.group(1) if nccl else None, "nccl_log_lines": text.count("NCCL INFO"),
           "predictions": predictions, "run_status": status, "output_tail": _tail(text, 4)}
    if backend == "nccl" and ran and not nccl:
        out["note"] = "the run finished but its log names no NCCL version (NCCL_DEBUG=INFO printed nothing)"
    write_json(args.json, out)
    print(f"torchrun: {'ran' if ran else 'FAILED'} ({backend}{', NCCL ' + nccl.group(1) if nccl else ''}), "
          f"{wall:.1f} s")
    return 0 if ran else 1


# --------------------------------------------------------------------------------- scoring
def network_args(tiny: bool) -> list[str]:
    """NB201's supernet; ``tiny`` (the CPU dry run): C=4, N=1, the same code at a fraction of the work
    (and one torch thread: on a shared 2-core machine two threads per process wait on each other)."""
    return SPACE_ARGS + (["--space-option", "channels=4", "--space-option", "cells_per_stage=1", "--threads", "1"]
                         if tiny else [])


def supernet_args(folder: Path, images: int, device: str, flags: str, tiny: bool = False) -> list[str]:
    return ["supernet", *network_args(tiny), *data_args(folder, images), "--epochs", "1", "--batch-size", "256",
            "--device", device, *shlex.split(flags)]


def build_scorer(argv: list[str], data=None):
    """What ``wsnas supernet ARGV`` builds before it trains: (supernet, space, data, evaluation config)."""
    from wsnas.cli import build_parser
    from wsnas.commands.common import (
        data_from_args,
        device_from_args,
        eval_config_from_args,
        space_from_args,
        training_overrides,
    )
    from wsnas.experiments.insights import SUPERNET_DEFAULTS
    from wsnas.strategies import get_strategy
    from wsnas.training.trainer import SupernetConfig, SupernetTrainer

    args = build_parser().parse_args(argv)
    device = device_from_args(args)  # channels-last on or off for this build, as the command sets it
    space = space_from_args(args)
    train = SUPERNET_DEFAULTS["cifar10"].with_overrides(**training_overrides(args))
    cfg = SupernetConfig(train=train, eval=eval_config_from_args(args), dense_last=0)
    if data is None:
        data = data_from_args(args, device)
    # the trainer builds the supernet as the command does (seeded weights, channels-last, bf16 autocast);
    # it writes nothing unless it trains
    trainer = SupernetTrainer(space, data, get_strategy(args.strategy), cfg, seed=args.seed,
                              run_dir=Path(tempfile.gettempdir()) / "wsnas-score-eval", archs=[], progress=False)
    return trainer.supernet, space, data, cfg.eval


def score_variant(flags: str, *, folder: Path, images: int, device: str, cap: float, check: int,
                  reference: list | None, data=None, tiny: bool = False) -> tuple[dict, list, object]:
    """Score as many NB201 cells as ``cap`` seconds allow with one option set; the row, the scores
    of the first ``check`` cells (the reference for later option sets), and the data."""
    from dataclasses import replace

    from wsnas.evaluator import evaluate_archs

    net, space, data, ecfg = build_scorer(supernet_args(folder, images, device, flags, tiny), data)
    # every cell, in a seeded random order: the timed chunks are a uniform sample whatever the order
    # the space enumerates them in
    archs = list(space.enumerate())
    random.Random(0).shuffle(archs)
    ab = ecfg.arch_batch
    row = {"flags": flags or "(defaults)", "arch_batch": ab, "images": len(data.valid)}
    # warm-up: one pass of arch_batch children (cuDNN and cuBLAS set-up, allocator growth)
    sync(device)
    t0 = time.perf_counter()
    evaluate_archs(net, archs[:ab], data.valid, ecfg)
    sync(device)
    row["warmup_s"] = time.perf_counter() - t0
    done, timed, i, chunk = 0, 0.0, ab, ab
    start = time.perf_counter()
    while i < len(archs) and time.perf_counter() - start < cap:
        part = archs[i:i + chunk]
        t0 = time.perf_counter()
        evaluate_archs(net, part, data.valid, ecfg)  # its .tolist() waits for the device
        dt_ = time.perf_counter() - t0
        done, timed, i = done + len(part), timed + dt_, i + len(part)
        if dt_ < 1.0:
            chunk *= 2
    row.update(archs_scored=ab + done, timed_archs=done, timed_s=timed, all_scored=i >= len(archs))
    if done:
        row["s_per_arch"] = timed / done
        row["projected_all_s"] = row["s_per_arch"] * len(archs)
        row["archs_per_s"] = done / timed
    if row["all_scored"]:
        row["measured_all_s"] = row["warmup_s"] + timed
    # how far the scores are from the plain computation: one child at a time in fp32 (the first set's)
    probe = archs[:check]
    scores = evaluate_archs(net, probe, data.valid, ecfg)
    if reference is None:
        reference = evaluate_archs(net, probe, data.valid, replace(ecfg, arch_batch=1))
        row["check_against"] = "the same option set, one child at a time"
    else:
        row["check_against"] = "the first option set, one child at a time"
    row["check"] = {"archs": len(probe),
                    "max_abs_acc_diff": max(abs(a[0] - b[0]) for a, b in zip(scores, reference)),
                    "max_abs_loss_diff": max(abs(a[1] - b[1]) for a, b in zip(scores, reference)),
                    "max_rel_loss_diff": max(abs(a[1] - b[1]) / max(abs(b[1]), 1e-12)
                                             for a, b in zip(scores, reference))}
    del net
    if device.startswith("cuda"):
        import torch

        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.empty_cache()
    return row, reference, data


def cmd_score_eval(args) -> int:
    folder = cifar_folder(args.work, args.images + args.train_images)
    variants = [v.strip() for v in args.variants.split(";")]
    out = {"images": args.images, "device": args.device, "cap_s_per_variant": args.cap, "cells": NB201_CELLS,
           "how": "wsnas.evaluator.evaluate_archs on the supernet and evaluation settings `wsnas supernet` builds "
                  "from the same options (untrained weights); chunks of cells, each timed; a warm-up pass first",
           "variants": []}
    reference, data, failed = None, None, 0
    for flags in variants:
        print(f"score-eval: {flags or '(defaults)'} ...", flush=True)
        try:
            row, ref, data = score_variant(flags, folder=folder, images=args.images, device=args.device,
                                           cap=args.cap, check=args.check, reference=reference, data=data,
                                           tiny=args.tiny)
            reference = reference if reference is not None else ref
        except Exception as exc:  # noqa: BLE001 - recorded, the next option set still runs
            import traceback

            traceback.print_exc()
            row, failed = {"flags": flags or "(defaults)", "error": f"{type(exc).__name__}: {exc}"[:400]}, failed + 1
        out["variants"].append(row)
        print("  " + json.dumps(row), flush=True)
        write_json(args.json, out)  # after each option set: a later timeout keeps what was measured
    timed = [v for v in out["variants"] if "projected_all_s" in v or "measured_all_s" in v]
    if timed:
        best = min(timed, key=lambda v: v.get("measured_all_s", v.get("projected_all_s")))
        out["best"] = best["flags"]
    write_json(args.json, out)
    return 1 if failed == len(variants) else 0


def cmd_score_command(args) -> int:
    work = args.work / "score-command"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    folder = cifar_folder(args.work, args.images + args.train_images)
    measured = read_json(args.eval_json) if args.eval_json else None
    flags, per_arch = args.flags, None
    if measured and measured.get("best") is not None and args.flags is None:
        flags = "" if measured["best"] == "(defaults)" else measured["best"]
        row = next(v for v in measured["variants"] if v.get("flags") == measured["best"])
        per_arch = row.get("s_per_arch") or (row["measured_all_s"] / NB201_CELLS)
    flags = flags or ""
    overhead = args.overhead
    if args.cap is None:  # what run_gpu.sh gave the stage, less time to write the JSON
        args.cap = max(5.0, float(os.environ.get("STAGE_LIMIT", "70")) - 10.0)
    if per_arch is None or per_arch * NB201_CELLS + overhead <= args.cap:
        select, count = ["--archs", "all"], NB201_CELLS
    else:  # all would not fit in the cap: a seeded sample the cap holds, timed the same way
        count = max(16, int((args.cap - overhead) / per_arch * 0.5) // 16 * 16)
        select = ["--sample", str(count)]
    cmd = [args.python, "-m", "wsnas", *supernet_args(folder, args.images, args.device, flags, args.tiny), *select,
           "--run", "score-all", "--run-dir", str(work / "run"), "--store", str(work / "score.db"), "--no-progress"]
    print("$ " + shlex.join(cmd), flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(1.0, args.cap))
        rc, text, timed_out = proc.returncode, proc.stdout + "\n" + proc.stderr, False
    except subprocess.TimeoutExpired as exc:
        rc, timed_out = None, True
        text = (exc.stdout or b"").decode(errors="replace") + "\n" + (exc.stderr or b"").decode(errors="replace")
    wall = time.perf_counter() - start
    print(text)
    epoch_s = predictions = None
    with contextlib.suppress(sqlite3.Error, TypeError):
        with contextlib.closing(sqlite3.connect(str(work / "score.db"))) as db:
            epoch_s = db.execute("SELECT value FROM run_metrics WHERE run_id = 'score-all' AND "
                                 "name = 'epoch_seconds'").fetchone()[0]
            predictions = db.execute("SELECT COUNT(*) FROM predictions WHERE run_id = 'score-all'").fetchone()[0]
    out = {"command": shlex.join(cmd), "flags": flags or "(defaults)", "children": count, "all": count == NB201_CELLS,
           "images": args.images, "rc": rc, "timed_out": timed_out, "cap_s": args.cap, "wall_s": wall,
           "train_epoch_s": epoch_s, "predictions": predictions, "output_tail": _tail(text, 4)}
    ok = rc == 0 and predictions == count
    if ok:
        # the command's wall time less its one training epoch: scoring plus start-up (an upper bound)
        out["scoring_upper_s"] = wall - (epoch_s or 0.0)
        if count != NB201_CELLS:
            out["projected_all_s"] = out["scoring_upper_s"] * NB201_CELLS / count
    if per_arch is not None:
        out["evaluator_projection_s"] = per_arch * NB201_CELLS
    write_json(args.json, out)
    print(f"score-command: {'ok' if ok else 'FAILED'}: {count} children in {wall:.1f} s")
    return 0 if ok else 1


# ---------------------------------------------------------------------------------- report
def merge_results(paths: list[Path]) -> dict | None:
    """One harness result from several runs of single workloads (rows in the table's order)."""
    parts = [r for r in (read_json(p) for p in sorted(paths)) if r]
    if not parts:
        return None
    merged = dict(parts[0])
    merged["rows"] = [row for part in parts for row in part["rows"]]
    merged["workloads"] = {w: d for part in parts for w, d in part["workloads"].items()}
    merged["versions"] = {k: v for part in parts for k, v in part.get("versions", {}).items()}
    tools = ("wsnas", "xautodl", "nni")
    merged["rows"].sort(key=lambda r: (WORKLOAD_ORDER.index(r["workload"]) if r["workload"] in WORKLOAD_ORDER
                                       else 99, tools.index(r["tool"]) if r["tool"] in tools else 9))
    return merged


def _row(result: dict | None, workload: str, tool: str) -> dict | None:
    if not result:
        return None
    for r in result["rows"]:
        if r["workload"] == workload and r["tool"] == tool and r["status"] == "ok":
            return r
    return None


def speedups(results: dict[str, dict | None], workload: str) -> list[tuple[str, float, float | None]]:
    """(label, xautodl's time over wsnas's, wsnas's peak memory over xautodl's) per harness run."""
    out = []
    for label, result in results.items():
        mine, peer = _row(result, workload, "wsnas"), _row(result, workload, "xautodl")
        if mine and peer:
            mem = None
            if mine.get("peak_mb") and peer.get("peak_mb"):
                mem = mine["peak_mb"] / peer["peak_mb"]
            out.append((label, peer["ms"] / mine["ms"], mem))
    return out


def targets(results: dict[str, dict | None], score_eval: dict | None, score_cmd: dict | None,
            dp: dict | None) -> list[dict]:
    """The issue's targets: what was measured, and met or not."""
    rows = []
    for workload, need, text in (("single_path_256", 3.0, "single-path step, batch 256: at least 3x xautodl's "
                                  "images/s"),
                                 ("single_path_64", 2.0, "single-path step, batch 64: at least 2x xautodl's "
                                  "images/s")):
        found = speedups(results, workload)
        best = max((s for _, s, _ in found), default=None)
        rows.append({"target": text, "measured": "; ".join(f"{lab}: {s:.2f}x" for lab, s, _ in found) or "-",
                     "status": "not measured" if best is None else ("met" if best >= need else "not met")})
    found = speedups(results, "darts_64")
    both = [(lab, s, m) for lab, s, m in found if m is not None]
    rows.append({"target": "DARTS step, batch 64: at least 2x faster with at most half xautodl's peak memory",
                 "measured": "; ".join(f"{lab}: {s:.2f}x, memory {m:.2f}x" if m is not None else f"{lab}: {s:.2f}x"
                                       for lab, s, m in found) or "-",
                 "status": "not measured" if not both else
                 ("met" if any(s >= 2.0 and m <= 0.5 for _, s, m in both) else "not met")})
    measured = projected = None
    text = []
    if score_cmd and score_cmd.get("rc") == 0 and score_cmd.get("all"):
        measured = score_cmd["wall_s"]
        text.append(f"`wsnas supernet ... --archs all` ({score_cmd['flags']}): {measured:.0f} s wall clock for all "
                    f"{NB201_CELLS:,} cells, its training epoch ({score_cmd.get('train_epoch_s') or 0:.0f} s) "
                    "included")
    elif score_cmd and score_cmd.get("projected_all_s"):
        projected = score_cmd["projected_all_s"]
        text.append(f"`wsnas supernet ... --sample {score_cmd['children']}` ({score_cmd['flags']}): "
                    f"{score_cmd['wall_s']:.0f} s, so all {NB201_CELLS:,} about {projected:.0f} s (projected)")
    elif score_cmd:
        text.append(f"`wsnas supernet` did not finish (rc {score_cmd.get('rc')}, timed out "
                    f"{score_cmd.get('timed_out')})")
    if score_eval:
        for v in score_eval.get("variants", []):
            if "measured_all_s" in v:
                text.append(f"evaluator, {v['flags']}: all in {v['measured_all_s']:.0f} s (measured)")
            elif "projected_all_s" in v:
                text.append(f"evaluator, {v['flags']}: {v['archs_per_s']:.1f} cells/s, all in about "
                            f"{v['projected_all_s']:.0f} s (projected from {v['timed_archs']} cells)")
    if measured is not None:
        status = "met" if measured <= TARGET_ALL_S else "not met"
    elif projected is not None or text:
        status = "not met (projected)" if (projected or 0) > TARGET_ALL_S else "not measured on all cells"
    else:
        status = "not measured"
    rows.append({"target": f"all {NB201_CELLS:,} NB201 cells on 10,000 images each in at most 5 minutes through "
                           "`wsnas supernet`", "measured": "; ".join(text) or "-", "status": status})
    checks = [v for v in (score_eval or {}).get("variants", []) if "check" in v]
    plain = [v for v in checks if "precision bf16" not in v["flags"]]
    rows.append({"target": "results equal to the plain computation up to rounding (options that change them are "
                           "opt-in)",
                 "measured": "; ".join(f"{v['flags']}: max |acc diff| {v['check']['max_abs_acc_diff']:.2g}, max "
                                       f"|loss diff| {v['check']['max_abs_loss_diff']:.2g} over {v['check']['archs']} "
                                       "cells" for v in checks) or "-",
                 "status": "not measured" if not plain else
                 ("met" if all(v["check"]["max_rel_loss_diff"] < 1e-3 for v in plain) else "not met")})
    if dp:
        what = (f"{'ran' if dp.get('ran') else 'failed'}: {dp.get('backend')}"
                + (f", NCCL {dp['nccl_version']}" if dp.get("nccl_version") else "")
                + f", {dp.get('ranks')} rank(s), {dp.get('predictions')} children scored, {dp.get('wall_s', 0):.0f} s")
    rows.append({"target": "`wsnas supernet` under `torchrun --nproc_per_node 1` with NCCL",
                 "measured": what if dp else "-",
                 "status": "not measured" if not dp else
                 ("met" if dp.get("ran") and dp.get("backend") == "nccl" else
                  ("ran on gloo (not a GPU run)" if dp.get("ran") else "not met"))})
    return rows


def section_text(*, device: str, command: str, results: dict[str, dict | None], score_eval, score_cmd, dp,
                 goals: list[dict], env: dict | None) -> str:
    """The CUDA section of RESULTS.md (on a CPU dry run marked so, in a heading no one can mistake)."""
    import harness

    base = results.get("fp32") or next((r for r in results.values() if r), None)
    lines = []
    if base:
        base = dict(base, command=command)
        head = harness.format_markdown_section(base, base.get("note"))
        lines.append(head)
    else:
        lines.append("## CUDA\n\n- no harness run finished; see summary.md")
    if not device.startswith("cuda"):
        lines[0] = re.sub(r"^## \w+", "## CUDA: DRY RUN ON A CPU (not GPU figures; never copy this into "
                                      "benchmarks/RESULTS.md)", lines[0], count=1)
    fast = results.get("fast")
    if fast:
        flags = ("--channels-last " if fast["config"].get("channels_last") else "") + \
                f"--precision {fast['config'].get('precision', 'fp32')}"
        lines += ["", f"### wsnas with `{flags}` (the peers in fp32, the same harness run)", "",
                  "Sizes, timing and memory as above; only wsnas's options differ.", "",
                  "| " + " | ".join(harness.HEADER) + " |", "|" + "---|" * len(harness.HEADER)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in harness.table_rows(fast)]
    if score_eval or score_cmd:
        lines += ["", f"### All {NB201_CELLS:,} NB201 cells scored with shared weights", ""]
        if score_cmd:
            lines.append(f"- command: `{score_cmd['command']}`")
            state = "finished" if score_cmd.get("rc") == 0 else ("timed out" if score_cmd.get("timed_out")
                                                                 else f"failed (rc {score_cmd.get('rc')})")
            if score_cmd.get("rc") == 0:
                lines.append(f"- {state}: {score_cmd['children']:,} children on {score_cmd['images']:,} images in "
                             f"{score_cmd['wall_s']:.1f} s wall clock (its 1 training epoch "
                             f"{score_cmd.get('train_epoch_s') or 0:.1f} s, start-up and data loading included)"
                             + (f"; all {NB201_CELLS:,} about {score_cmd['projected_all_s']:.0f} s (projected)"
                                if score_cmd.get("projected_all_s") else ""))
            else:
                lines.append(f"- {state} after {score_cmd['wall_s']:.1f} s, scoring {score_cmd['children']:,} "
                             f"children on {score_cmd['images']:,} images")
        if score_eval:
            lines += ["", "| evaluator options | children per pass | cells/s | all 15,625 | warm-up | max "
                          "abs. acc. diff | peak |", "|---|---|---|---|---|---|---|"]
            for v in score_eval.get("variants", []):
                if "error" in v:
                    lines.append(f"| {v['flags']} | failed: {v['error'][:120]} | | | | | |")
                    continue
                total = (f"{v['measured_all_s']:.0f} s (measured)" if "measured_all_s" in v else
                         f"{v['projected_all_s']:.0f} s (projected)" if "projected_all_s" in v else "-")
                peak = f"{v['peak_gib']:.1f} GiB" if v.get("peak_gib") is not None else "-"
                lines.append(f"| {v['flags']} | {v['arch_batch']} | {v.get('archs_per_s', 0):.1f} | {total} | "
                             f"{v['warmup_s']:.1f} s | {v['check']['max_abs_acc_diff']:.2g} | {peak} |")
            lines += ["", f"Evaluator rows: {score_eval['how']}; {score_eval['images']:,} images, at most "
                          f"{score_eval['cap_s_per_variant']:.0f} s per option set; the accuracy difference is "
                          "against one child at a time in fp32 with the first row's options."]
    if dp:
        lines += ["", "### Data-parallel under torchrun", "", f"- command: `{dp['command']}`",
                  f"- {'ran' if dp.get('ran') else 'FAILED'}: backend {dp.get('backend')}"
                  + (f" (NCCL {dp['nccl_version']})" if dp.get("nccl_version") else "")
                  + f", {dp.get('ranks')} rank(s), {dp.get('predictions')} children scored, run "
                    f"{dp.get('run_status')}, {dp.get('wall_s', 0):.1f} s"]
    lines += ["", "### Targets of issue 21", "", "| target | measured | status |", "|---|---|---|"]
    lines += [f"| {g['target']} | {g['measured'].replace('|', '/')} | {g['status']} |" for g in goals]
    if env:
        lines += ["", f"Device: {env.get('gpu', 'no GPU')}, torch {env.get('torch')}, CUDA {env.get('cuda')}, "
                      f"cuDNN {env.get('cudnn')}, NCCL {env.get('nccl')}, python {env.get('python')}."]
    lines += ["", harness.REFERENCE_GPU]
    return "\n".join(lines)


def cmd_report(args) -> int:
    import harness

    work, out = args.work, args.out
    out.mkdir(parents=True, exist_ok=True)
    stages = [s for s in (read_json(p) for p in sorted((work / "stages").glob("*.json"))) if s]
    stages.sort(key=lambda s: s.get("started", 0))
    results = {"fp32": merge_results(list(work.glob("harness-fp32-*.json"))),
               "fast": merge_results(list(work.glob("harness-fast-*.json")))}
    score_eval, score_cmd = read_json(work / "score-eval.json"), read_json(work / "score-command.json")
    dp, setup = read_json(work / "torchrun.json"), read_json(work / "setup.json")
    env = (setup or {}).get("environment")
    goals = targets(results, score_eval, score_cmd, dp)
    section = section_text(device=args.device, command=args.command, results=results, score_eval=score_eval,
                           score_cmd=score_cmd, dp=dp, goals=goals, env=env)
    for label, result in results.items():
        if result:
            write_json(out / f"harness-{label}.json", dict(result, command=args.command))
    md = out / "RESULTS.md"
    if args.results_md.exists():
        shutil.copyfile(args.results_md, md)
    harness.write_section(section, "cuda", md)
    summary = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "device": args.device,
               "command": args.command, "environment": env, "setup": setup, "stages": stages, "targets": goals,
               "score_eval": score_eval, "score_command": score_cmd, "torchrun": dp}
    write_json(out / "summary.json", summary)
    lines = [f"# GPU script of issue 21: {'dry run on a CPU' if args.device == 'cpu' else 'CUDA run'}", "",
             f"- date: {summary['date']}", f"- command: `{args.command}`",
             f"- device: {(env or {}).get('gpu') or (env or {}).get('platform', '?')}", "",
             "| stage | status | seconds | limit | note |", "|---|---|---|---|---|"]
    for s in stages:
        lines.append(f"| {s['stage']} | {s['status']} | {s.get('seconds', 0):.1f} | {s.get('limit_s', '-')} | "
                     f"{(s.get('note') or '').replace('|', '/')[:200]} |")
    lines += ["", "Files: summary.json (everything below and each stage's numbers), RESULTS.md (benchmarks/RESULTS.md"
                  " with this run's CUDA section), harness-fp32.json and harness-fast.json (the harness's JSON, "
                  "merged over workloads), logs.tar.gz (each stage's output).", "", section]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    logs = work / "logs"
    if logs.is_dir():
        with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
            tar.add(logs, arcname="logs")
    print("\n".join(lines[:6 + len(stages) + 2]))
    print()
    print("| target | measured | status |")
    for g in goals:
        print(f"| {g['target']} | {g['measured']} | {g['status']} |")
    print(f"\nwritten: {', '.join(sorted(p.name for p in out.iterdir()))} in {out}")
    return 0


# -------------------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpu_stages.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="stage", required=True)

    def common(q, *, images: int | None = None):
        q.add_argument("--device", default="cuda", help="cuda (default) or cpu (the dry run)")
        q.add_argument("--work", type=Path, required=True, help="the run's working folder")
        q.add_argument("--json", type=Path, default=None, help="where the stage's JSON goes (default in --work)")
        if images is not None:
            q.add_argument("--images", type=int, default=images, help=f"validation images (default {images:,})")
            q.add_argument("--tiny", action="store_true",
                           help="a supernet of C=4, N=1 instead of NB201's C=16, N=5 (the CPU dry run)")

    q = sub.add_parser("setup", help="interpreter, torch and GPU; install missing packages from wheels")
    common(q)
    q.add_argument("--wheels", type=Path, action="append", default=[], help="a folder of wheels (repeatable)")
    q.add_argument("--site", type=Path, required=True, help="the folder the wheels are installed into")
    q = sub.add_parser("torchrun", help="wsnas supernet under torchrun --nproc_per_node 1 (NCCL on CUDA)")
    common(q, images=512)
    q.add_argument("--python", default=sys.executable, help="the interpreter (default this one)")
    q.add_argument("--sample", type=int, default=16, help="children scored (default 16)")
    q.add_argument("--batch-size", type=int, default=256, help="global batch (default 256)")
    q = sub.add_parser("score-eval", help="the evaluator of wsnas supernet over NB201 cells, per option set")
    common(q, images=10_000)
    q.add_argument("--train-images", type=int, default=2_560, help="training images (default 2,560)")
    q.add_argument("--cap", type=float, default=20.0, help="seconds of timed scoring per option set (default 20)")
    q.add_argument("--check", type=int, default=16, help="cells compared with the plain computation (default 16)")
    q.add_argument("--variants", default=";".join(VARIANTS),
                   help="option sets of wsnas supernet, ';'-separated (default: %(default)r)")
    q = sub.add_parser("score-command", help="wsnas supernet --space nb201 --archs all, timed end to end")
    common(q, images=10_000)
    q.add_argument("--train-images", type=int, default=2_560, help="training images (default 2,560)")
    q.add_argument("--python", default=sys.executable, help="the interpreter (default this one)")
    q.add_argument("--cap", type=float, default=None,
                   help="seconds the command may run (default: the stage's limit from run_gpu.sh, $STAGE_LIMIT, "
                        "less 10; else 60)")
    q.add_argument("--overhead", type=float, default=25.0,
                   help="seconds of start-up, data and training assumed beside scoring (default 25)")
    q.add_argument("--eval-json", type=Path, default=None, help="score-eval's JSON: its fastest option set is used")
    q.add_argument("--flags", default=None, help="options of wsnas supernet instead of score-eval's fastest")
    q = sub.add_parser("report", help="summary.json, summary.md, RESULTS.md's CUDA section, logs")
    common(q)
    q.add_argument("--out", type=Path, required=True, help="where the files go ($OUT on the device)")
    q.add_argument("--command", required=True, help="the command recorded with the results")
    q.add_argument("--results-md", type=Path, default=BENCH / "RESULTS.md", help="the RESULTS.md copied and rewritten")
    args = p.parse_args(argv)
    if args.json is None:
        args.json = args.work / f"{args.stage}.json"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return {"setup": cmd_setup, "torchrun": cmd_torchrun, "score-eval": cmd_score_eval,
            "score-command": cmd_score_command, "report": cmd_report}[args.stage](args)


if __name__ == "__main__":
    raise SystemExit(main())
