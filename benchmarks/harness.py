"""Speed and memory of wsnas against its peers, xautodl and NNI 3.0, on the same NB201 workloads.

``bash benchmarks/run.sh [options]`` runs this file with the project's environment. It

1. creates (or reuses) ``benchmarks/.peers-venv`` with torch 2.13.0, xautodl (``--no-deps``) and
   NNI 3.0 — a peer that cannot install or import is reported unavailable with the reason; with
   ``--peers-python PY`` the peers run with that interpreter as it is (an offline GPU machine whose
   torch must stay: ``benchmarks/device/run_gpu.sh``);
2. writes CIFAR-10-shaped data in the official python-pickle format into a temporary folder;
3. runs every workload of :data:`benchlib.WORKLOADS` with every tool, each tool in its own
   process (wsnas in this environment, the peers in theirs; the same torch thread count), the
   tools' timed units interleaved round by round so that a disturbance hits all of them alike;
4. prints the table, writes ``benchmarks/results/<date>-<device>.json`` (or ``--json PATH``) and,
   with ``--markdown``, the device's section of ``benchmarks/RESULTS.md`` (or ``--results-md PATH``),
   with the command that produced it (``--command``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import (  # noqa: E402 - after the path set-up above
    CPU_MEMORY_NOTE,
    CUDA_MEMORY_NOTE,
    MALLOC_MODES,
    MALLOC_NOTES,
    TOOLS,
    WORKLOADS,
    BenchConfig,
    Session,
    Unavailable,
    replace_section,
    worker_env,
)

PEERS_VENV = HERE / ".peers-venv"
RESULTS_MD = HERE / "RESULTS.md"
TORCH_PIN = "torch==2.13.0"
# NNI 3.0's one-shot NAS imports pytorch_lightning and torchmetrics without declaring them
PEER_PACKAGES = {
    "xautodl": [["--no-deps", "xautodl"]],
    "nni": [["nni==3.0", TORCH_PIN], ["pytorch-lightning", "torchmetrics", TORCH_PIN]],
}
PEER_PROBES = {
    "xautodl": "from xautodl.models import get_cell_based_tiny_net",
    "nni": "from nni.nas.hub.pytorch import NasBench201; from nni.nas.strategy import DARTS, RandomOneShot",
}
PATH_ARCHS = 200
UNITS = {"eval": "ms/arch/10k img", "epoch": "ms/epoch"}
REFERENCE_GPU = """Reference figures for xautodl on one H100 (from the issue, for context):
single-path step batch 256 29.7 ms, batch 64 21.1 ms; DARTS step batch 64 164 ms, 1.9 GB peak;
GDAS step batch 64 77 ms; evaluating one architecture on 10,000 images 275 ms."""


# ------------------------------------------------------------------------------- peers venv
def _run_quiet(cmd: list[str], log: Path) -> tuple[bool, str]:
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode == 0:
        return True, ""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()
             if ln.strip() and "is ignored: it is neither a file nor a directory" not in ln]
    errors = [ln for ln in lines if ln.startswith("ERROR") or "Error" in ln]
    return False, (errors or lines or [f"exit status {proc.returncode}"])[-1][:300]


def setup_peers(venv: Path = PEERS_VENV, *, tools=("xautodl", "nni"), torch_index_url: str | None = None,
                install: bool = True, log=print) -> tuple[str | None, dict[str, str]]:
    """The peers' python and, per peer that cannot run, the one-line reason."""
    reasons: dict[str, str] = {}
    python = venv / "bin" / "python"
    logfile = venv.parent / (venv.name + "-setup.log")
    if not python.exists():
        if not install:
            return None, {t: f"peers environment {venv} not set up (run benchmarks/run.sh)" for t in tools}
        log(f"creating the peers' environment {venv} ...")
        ok, why = _run_quiet([sys.executable, "-m", "venv", str(venv)], logfile)
        if not ok:
            return None, {t: f"cannot create the peers' environment: {why}" for t in tools}
    marker = venv / ".wsnas-peers.json"
    spec = {"torch": TORCH_PIN, "index": torch_index_url, "packages": PEER_PACKAGES}
    done = json.loads(marker.read_text()) if marker.exists() else {}
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if install and done.get("spec") != spec:
        log(f"installing the peers into {venv} (log: {logfile}) ...")
        extra = ["--index-url", torch_index_url] if torch_index_url else []
        ok, why = _run_quiet(pip + [TORCH_PIN] + extra, logfile)
        if not ok:
            return None, {t: f"cannot install {TORCH_PIN}: {why}" for t in tools}
        failed = {}
        for tool in tools:
            for args in PEER_PACKAGES[tool]:
                ok, why = _run_quiet(pip + args, logfile)
                if not ok:
                    failed[tool] = f"pip install {' '.join(args)} failed: {why}"
                    break
        marker.write_text(json.dumps({"spec": spec, "failed": failed}))
        reasons.update(failed)
    else:
        reasons.update(done.get("failed", {}))
    reasons.update(probe_peers(str(python), [t for t in tools if t not in reasons], beside=TORCH_PIN))
    return str(python), reasons


def probe_peers(python: str, tools, *, beside: str = "this torch") -> dict[str, str]:
    """Per peer of ``tools`` that ``python`` cannot import, the one-line reason."""
    reasons = {}
    for tool in tools:
        try:
            probe = subprocess.run([python, "-W", "ignore", "-c", PEER_PROBES[tool]], capture_output=True, text=True)
        except OSError as exc:
            reasons[tool] = f"cannot run {python}: {exc}"
            continue
        if probe.returncode != 0:
            last = [ln for ln in probe.stderr.strip().splitlines() if ln.strip()] or ["import failed"]
            reasons[tool] = f"cannot import beside {beside}: {last[-1][:300]}"
    return reasons


# ------------------------------------------------------------------------------------ data
def write_cifar10(folder: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """CIFAR-10-shaped random images in the official python format (cifar-10-batches-py)."""
    import numpy as np

    out = folder / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = [n_train // 5 + (1 if i < n_train % 5 else 0) for i in range(5)]
    files = [(f"data_batch_{i + 1}", n) for i, n in enumerate(per)] + [("test_batch", n_test)]
    for name, n in files:
        record = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(0, 10, n)],
                  b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                  b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        with (out / name).open("wb") as f:
            pickle.dump(record, f, protocol=2)
    meta = {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                   "frog", "horse", "ship", "truck")],
            b"num_cases_per_batch": per[0], b"num_vis": 3072}
    with (out / "batches.meta").open("wb") as f:
        pickle.dump(meta, f, protocol=2)
    return out


def sample_archs(n: int, seed: int) -> list[str]:
    """``n`` NB201 cells (official strings), seeded, the same for every tool."""
    from wsnas.spaces import get_space

    space = get_space("nb201")
    rng = random.Random(seed)
    return [space.format(space.from_index(i)) for i in rng.sample(range(len(space)), n)]


# ------------------------------------------------------------------------------- executors
class InProcessTool:
    """A tool's workload run in this process (the tests; wsnas only)."""

    def __init__(self, tool: str) -> None:
        self.tool = tool

    def setup(self, workload: str, cfg: BenchConfig) -> dict:
        try:
            self.session = Session(self.tool, workload, cfg)
        except Unavailable as exc:
            return {"ok": False, "reason": str(exc)}
        return {"ok": True, "info": self.session.info()}

    def run(self, n: int) -> list[float]:
        return self.session.run(n)

    def memory(self) -> dict:
        return self.session.memory()

    def close(self) -> None:
        self.session = None


class ProcessTool:
    """A tool's workload run in a fresh process of ``python`` (:mod:`worker`)."""

    def __init__(self, tool: str, python: str, threads: int, cfg: BenchConfig | None = None) -> None:
        self.tool = tool
        env = {k: v for k, v in os.environ.items() if k not in ("WSNAS_MALLOC", "BENCH_TUNE_MALLOC")}
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore",
                   BENCH_PRELOAD=tool, **worker_env(cfg or BenchConfig(), tool))
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([python, str(HERE / "worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env, bufsize=1)

    def _ask(self, msg: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.stderr.seek(0)
            tail = [ln for ln in self.stderr.read().splitlines() if ln.strip()] or ["no output"]
            return {"ok": False, "reason": f"the {self.tool} process ended: {tail[-1][:300]}"}
        return json.loads(line)

    def setup(self, workload: str, cfg: BenchConfig) -> dict:
        return self._ask({"cmd": "setup", "tool": self.tool, "workload": workload, "cfg": cfg.to_dict()})

    def run(self, n: int) -> list[float]:
        answer = self._ask({"cmd": "run", "n": n})
        if not answer.get("ok"):
            raise RuntimeError(answer.get("reason", "failed"))
        return answer["times"]

    def memory(self) -> dict:
        answer = self._ask({"cmd": "memory"})
        return {k: v for k, v in answer.items() if k != "ok"}

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._ask({"cmd": "quit"})
                self.proc.wait(timeout=30)
            except (subprocess.TimeoutExpired, OSError, ValueError):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


# ------------------------------------------------------------------------------- measuring
def _schedule(workload: str, cfg: BenchConfig) -> tuple[int, int]:
    """(rounds, units per turn) of a workload."""
    if workload in ("eval", "epoch"):
        return max(1, min(cfg.rounds, 3)), 1
    return cfg.rounds, cfg.block


def measure_workload(workload: str, executors: dict, cfg: BenchConfig, log=print) -> dict[str, dict]:
    """Set every tool up, then time them in interleaved turns; a row per tool."""
    rows: dict[str, dict] = {}
    live = {}
    for tool, ex in executors.items():
        answer = ex.setup(workload, cfg)
        if answer.get("ok"):
            live[tool] = ex
            rows[tool] = {"status": "ok", "info": answer["info"], "times": []}
        else:
            rows[tool] = {"status": "unavailable", "reason": answer.get("reason", "failed")}
            ex.close()
    rounds, block = _schedule(workload, cfg)
    order = list(live)
    for r in range(rounds):
        turn = order[r % len(order):] + order[:r % len(order)] if order else []
        for tool in turn:
            if rows[tool]["status"] != "ok":
                continue
            try:
                rows[tool]["times"] += live[tool].run(block)
            except RuntimeError as exc:
                rows[tool] = {"status": "failed", "reason": str(exc)}
        log(f"  {workload}: round {r + 1}/{rounds} done")
    for tool, ex in live.items():
        if rows[tool]["status"] == "ok":
            rows[tool]["memory"] = ex.memory()
        ex.close()
    return rows


def summarise(workload: str, tool: str, row: dict, cfg: BenchConfig) -> dict:
    out = {"workload": workload, "tool": tool, "status": row["status"]}
    if row["status"] != "ok":
        out["reason"] = row["reason"]
        return out
    info, times = row["info"], row["times"]
    med = statistics.median(times)
    ms = med * 1000.0
    if workload == "eval":
        ms = ms / info["archs_per_unit"] * 10_000 / cfg.eval_images
    out.update({
        "ms": ms, "unit": UNITS.get(workload, "ms/step"),
        "median_s": med, "min_s": min(times), "samples": len(times),
        "images_per_s": info["images_per_unit"] / med,
        "peak_mb": row["memory"].get("peak_mb"), "memory_kind": row["memory"].get("kind"),
        "params": info.get("params"), "version": info.get("version"), "torch": info.get("torch"),
        "threads": info.get("threads"), "how": info.get("how"), "recipe": info.get("recipe"),
    })
    usage = row["memory"].get("usage") or {}
    if usage.get("units"):  # per timed unit: CPU time in user and kernel mode, minor page faults
        out["cpu_per_unit"] = {"user_s": usage["user_s"] / usage["units"], "sys_s": usage["sys_s"] / usage["units"],
                               "minor_faults": usage["minor_faults"] / usage["units"]}
    if "substitute" in info:
        out["substitute"] = info["substitute"]
    return out


def add_ratios(rows: list[dict]) -> None:
    """``ratio``: the peer's time over wsnas's on the same workload (> 1: wsnas faster)."""
    base = {r["workload"]: r["ms"] for r in rows if r["tool"] == "wsnas" and r["status"] == "ok"}
    for r in rows:
        if r["tool"] != "wsnas" and r["status"] == "ok" and r["workload"] in base:
            r["ratio"] = r["ms"] / base[r["workload"]]


def machine_info(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "cores": os.cpu_count()}
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cpu"] = model or platform.processor() or "unknown CPU"
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_benchmark(cfg: BenchConfig, *, tools=TOOLS, workloads=tuple(WORKLOADS), peers_python: str | None = None,
                  peer_reasons: dict | None = None, inprocess: bool = False, log=print) -> dict:
    """Measure ``workloads`` with ``tools``; the result as a JSON-ready dict.

    wsnas runs in this interpreter's environment (in this process with ``inprocess``), the peers
    with ``peers_python``; a peer in ``peer_reasons`` (or without ``peers_python``) is reported
    unavailable with that reason.
    """
    peer_reasons = dict(peer_reasons or {})
    tmp = None
    if "epoch" in workloads and not cfg.data_dir:
        tmp = tempfile.mkdtemp(prefix="wsnas-bench-cifar-")
        write_cifar10(Path(tmp), cfg.epoch_images, max(100, cfg.epoch_images // 5), cfg.seed)
        cfg.data_dir = tmp
    if "eval" in workloads and not cfg.archs:
        cfg.archs = sample_archs(cfg.eval_archs, cfg.seed)
    if not cfg.path_archs:  # the single-path steps: the same random cells, in the same order, for every tool
        cfg.path_archs = sample_archs(PATH_ARCHS, cfg.seed + 1)
    rows = []
    try:
        for workload in workloads:
            log(f"{workload}: {WORKLOADS[workload]}")
            executors = {}
            for tool in tools:
                if tool == "wsnas":
                    executors[tool] = InProcessTool(tool) if inprocess else ProcessTool(tool, sys.executable,
                                                                                         _threads(cfg), cfg)
                elif tool in peer_reasons or peers_python is None:
                    reason = peer_reasons.get(tool, "peers environment not set up")
                    rows.append({"workload": workload, "tool": tool, "status": "unavailable", "reason": reason})
                else:
                    executors[tool] = ProcessTool(tool, peers_python, _threads(cfg), cfg)
            measured = measure_workload(workload, executors, cfg, log=log)
            rows += [summarise(workload, tool, row, cfg) for tool, row in measured.items()]
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
            cfg.data_dir = None
    order = {t: i for i, t in enumerate(TOOLS)}
    wl = {w: i for i, w in enumerate(WORKLOADS)}
    rows.sort(key=lambda r: (wl[r["workload"]], order[r["tool"]]))
    add_ratios(rows)
    versions = {r["tool"]: r["version"] for r in rows if r.get("version")}
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": cfg.device, "machine": machine_info(cfg.device), "threads": _threads(cfg),
        "versions": versions,
        "config": {k: v for k, v in cfg.to_dict().items() if k not in ("archs", "path_archs", "data_dir")},
        "archs": cfg.archs, "memory": CUDA_MEMORY_NOTE if cfg.device.startswith("cuda") else CPU_MEMORY_NOTE,
        "timing": ("median of the timed units (time.perf_counter around each unit"
                   + (", torch.cuda.synchronize before and after" if cfg.device.startswith("cuda") else "")
                   + f") after warm-up; tools interleaved: {_schedule('single_path_64', cfg)[0]} rounds of "
                     f"{cfg.block} steps per tool, the order rotating each round"),
        "workloads": {w: WORKLOADS[w] for w in workloads},
        "rows": rows,
    }


def _threads(cfg: BenchConfig) -> int:
    return cfg.threads if cfg.threads and cfg.threads > 0 else (os.cpu_count() or 1)


# --------------------------------------------------------------------------------- output
def _fmt_mem(r: dict) -> str:
    return "-" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f} MB"


def table_rows(result: dict) -> list[list[str]]:
    out = []
    for r in result["rows"]:
        if r["status"] != "ok":
            out.append([r["workload"], r["tool"], r["status"] + ": " + r["reason"], "", "", "", ""])
            continue
        tool = r["tool"] + (f" ({r['substitute']})" if r.get("substitute") else "")
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else ("1 (base)" if r["tool"] == "wsnas" else "-")
        out.append([r["workload"], tool, f"{r['ms']:.1f} {r['unit']}", f"{r['images_per_s']:.0f}",
                    _fmt_mem(r), f"{r['params']:,}" if r.get("params") else "-", ratio])
    return out


HEADER = ["workload", "tool", "time (median)", "images/s", "peak memory", "params", "wsnas speed-up"]


def format_table(result: dict) -> str:
    rows = [HEADER] + table_rows(result)
    widths = [max(len(r[i]) for r in rows if len(r[i]) < 60 or i != 2) for i in range(len(HEADER))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _memory_format(result: dict) -> str:
    fmt = "channels-last (--channels-last)" if result["config"].get("channels_last") else "NCHW (the default)"
    precision = result["config"].get("precision", "fp32")
    return fmt + ("" if precision == "fp32" else f"; --precision {precision} (the peers run fp32)")


def format_markdown_section(result: dict, note: str | None = None) -> str:
    m = result["machine"]
    dev = result["device"]
    what = m.get("gpu") if dev.startswith("cuda") else f"{m['cpu']}, {m['cores']} cores"
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    lines = [f"## {'CUDA' if dev.startswith('cuda') else 'CPU'}", "",
             f"- date: {result['date']}",
             f"- machine: {what} ({m['platform']})",
             *([f"- command: `{result['command']}`"] if result.get("command") else []),
             f"- versions: python {m['python']}, torch {m['torch']}; {versions}",
             f"- torch threads: {result['threads']} (every tool)",
             f"- timing: {result['timing']}",
             f"- memory: {result['memory']}",
             f"- allocator: {MALLOC_NOTES[result['config'].get('malloc', 'as-shipped')]}",
             f"- wsnas options: {_memory_format(result)}",
             f"- sizes: NB201 supernet C={result['config']['channels']}, N={result['config']['cells_per_stage']}, "
             f"10 classes, 32x32x3 synthetic data, fp32; eval: {result['config']['eval_archs']} architectures x "
             f"{result['config']['eval_images']} images (batch {result['config']['eval_batch']}); epoch: "
             f"{result['config']['epoch_images']} images written as CIFAR-10 python files "
             f"(90% trained, batch {result['config']['epoch_batch']})"]
    if note:
        lines.append(f"- note: {note}")
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in table_rows(result):
        lines.append("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    lines.append("")
    lines.append("`wsnas speed-up` is the peer's time divided by wsnas's (above 1: wsnas is faster). The JSON "
                 "also gives every row's CPU time (user, sys) and minor page faults per timed unit.")
    hows = sorted({(r["tool"], r["workload"], r["how"]) for r in result["rows"] if r.get("how")},
                  key=lambda t: (TOOLS.index(t[0]), list(WORKLOADS).index(t[1])))
    lines += ["", "What each tool runs:", ""]
    lines += [f"- {tool}, {w}: {how}" for tool, w, how in hows]
    return "\n".join(lines)


MD_TEMPLATE = """# Benchmark results

wsnas against xautodl and NNI 3.0 on the same NB201 workloads, written by
`bash benchmarks/run.sh --markdown` (see the README's Benchmarks section). Each device's section is
rewritten by a run on that device; the other is kept.

wsnas's own measurements beside it: [EVOLVE_SCORING.md](EVOLVE_SCORING.md) (how `wsnas evolve`
scores candidates: one at a time, batched, stacked; BN running or recal) and
[PADA_OVERHEAD.md](PADA_OVERHEAD.md) (PA&DA's sampling overhead).

<!-- BEGIN cpu -->
## CPU

Not measured yet.
<!-- END cpu -->

<!-- BEGIN cuda -->
## CUDA

Not measured yet: no GPU has been lent to a run of the harness. On a CUDA machine run
`bash benchmarks/run.sh --device cuda --torch-index-url https://download.pytorch.org/whl/cu126 --markdown`
(the index that has a CUDA build of torch 2.13.0 for that machine); on the project's lent GPU
machine (offline, its own torch) `bash benchmarks/device/run_gpu.sh` (benchmarks/device/README.md).

{reference}
<!-- END cuda -->
"""


def write_markdown(result: dict, path: Path = RESULTS_MD, note: str | None = None) -> None:
    key = "cuda" if result["device"].startswith("cuda") else "cpu"
    section = format_markdown_section(result, note)
    if key == "cuda":
        section += "\n\n" + REFERENCE_GPU
    write_section(section, key, path)


def write_section(section: str, key: str, path: Path = RESULTS_MD) -> None:
    """Put ``section`` between the ``<!-- BEGIN key -->`` and ``<!-- END key -->`` marks of ``path``
    (created from the template when missing; the marks appended when absent); the rest is kept."""
    text = path.read_text() if path.exists() else MD_TEMPLATE.replace("{reference}", REFERENCE_GPU)
    path.write_text(replace_section(text, key, section))


def write_json(result: dict, folder: Path = HERE / "results", path: Path | None = None) -> Path:
    """The result as JSON: ``path``, or ``folder/<date>-<device>.json``."""
    if path is None:
        folder.mkdir(parents=True, exist_ok=True)
        day = result["date"].split()[0]
        path = folder / f"{day}-{result['device'].split(':')[0]}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


# ------------------------------------------------------------------------------------ CLI
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="benchmarks/run.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when present, else cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads for every tool (default: all cores)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS)}")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--quick", action="store_true", help="a fast smoke run: few repeats, small sizes")
    p.add_argument("--markdown", action="store_true", help="write the table into benchmarks/RESULTS.md")
    p.add_argument("--results-md", type=Path, default=RESULTS_MD,
                   help="the Markdown file --markdown rewrites a section of (default benchmarks/RESULTS.md)")
    p.add_argument("--json", type=Path, default=None,
                   help="where the JSON goes (default benchmarks/results/<date>-<device>.json)")
    p.add_argument("--command", default=None,
                   help="the command recorded with the results (default: this run's benchmarks/run.sh line)")
    p.add_argument("--note", default=None, help="a line recorded with the results (e.g. 'machine shared')")
    p.add_argument("--rounds", type=int, default=None, help="interleaved turns per tool")
    p.add_argument("--block", type=int, default=None, help="timed steps per turn")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps before timing")
    p.add_argument("--eval-archs", type=int, default=None, help="N architectures evaluated (default 20)")
    p.add_argument("--eval-images", type=int, default=None, help="M images (default 1,000 on CPU, 10,000 on CUDA)")
    p.add_argument("--epoch-images", type=int, default=None, help="images of the end-to-end epoch (default 5,000)")
    p.add_argument("--channels", type=int, default=None, help="the supernet's C (default 16, NB201's)")
    p.add_argument("--cells-per-stage", type=int, default=None, help="the supernet's N (default 5, NB201's)")
    p.add_argument("--peers-venv", type=Path, default=PEERS_VENV, help="the peers' environment")
    p.add_argument("--torch-index-url", default=None, help="pip index for the peers' torch (e.g. a CUDA build)")
    p.add_argument("--no-install", action="store_true", help="use the peers' environment as it is")
    p.add_argument("--peers-python", default=None, metavar="PY",
                   help="run the peers with this interpreter as it is, no environment created or installed "
                        "(an offline machine whose torch must stay; benchmarks/device/run_gpu.sh)")
    p.add_argument("--channels-last", action="store_true", help="wsnas runs channels-last (its --channels-last)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="wsnas's --precision (default fp32; the peers always run fp32)")
    p.add_argument("--malloc", choices=MALLOC_MODES, default="as-shipped",
                   help="glibc allocator thresholds: as-shipped (default; wsnas tuned as its commands run, "
                        "peers with glibc's defaults), system (glibc's defaults for all) or tuned (wsnas's "
                        "settings for all)")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here")
    cfg = BenchConfig(device=device, threads=args.threads, malloc=args.malloc, channels_last=args.channels_last,
                      precision=args.precision)
    if device == "cuda":
        cfg.eval_images = 10_000
        cfg.eval_batch = 500
    if args.quick:
        cfg.warmup, cfg.rounds, cfg.block = 1, 2, 2
        cfg.eval_archs, cfg.eval_images, cfg.epoch_images = 4, 250, 1000
    for name in ("rounds", "block", "warmup", "eval_archs", "eval_images", "epoch_images", "channels",
                 "cells_per_stage"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    return cfg


def main(argv=None) -> int:
    args = parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for name, given, accepted in (("tool", tools, TOOLS), ("workload", workloads, tuple(WORKLOADS))):
        bad = [g for g in given if g not in accepted]
        if bad or not given:
            print(f"error: unknown {name} {', '.join(bad) or '(none given)'}; accepted: {', '.join(accepted)}",
                  file=sys.stderr)
            return 2
    cfg = config_from_args(args)
    peers = tuple(t for t in tools if t != "wsnas")
    python, reasons = (None, {})
    if peers and args.peers_python:
        python, reasons = args.peers_python, probe_peers(args.peers_python, peers)
    elif peers:
        python, reasons = setup_peers(args.peers_venv, tools=peers, torch_index_url=args.torch_index_url,
                                      install=not args.no_install)
    for tool, why in reasons.items():
        print(f"{tool}: unavailable: {why}")
    result = run_benchmark(cfg, tools=tools, workloads=workloads, peers_python=python, peer_reasons=reasons)
    result["command"] = args.command or "bash benchmarks/run.sh " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.note:
        result["note"] = args.note
    print()
    print(format_table(result))
    path = write_json(result, path=args.json)
    print(f"\nJSON: {path}")
    if args.markdown:
        write_markdown(result, args.results_md, note=args.note)
        print(f"Markdown: {args.results_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
