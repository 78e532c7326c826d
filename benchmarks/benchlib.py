"""What every tool's side of the benchmark shares: workloads, synthetic data, timing, memory.

This module imports only the standard library and torch, so it runs both in the project's
environment (wsnas) and in the peers' environment (xautodl, NNI).

A tool module (``tool_wsnas``, ``tool_xautodl``, ``tool_nni``) turns a workload name and a
:class:`BenchConfig` into a :class:`Workload`: a zero-argument ``step`` that does one timed unit
of work, how many images that unit processes, and facts about the network (parameter count).
:class:`Session` times a workload: warm-up units first, then timed units, each bracketed by
``time.perf_counter`` (and ``torch.cuda.synchronize`` on CUDA).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

# workload name -> what it measures (the order of the table)
WORKLOADS: dict[str, str] = {
    "single_path_64": "uniform single-path training step, batch 64",
    "single_path_256": "uniform single-path training step, batch 256",
    "darts_64": "DARTS first-order step (one architecture step + one weight step), batch 64",
    "gdas_64": "GDAS step (one weight step + one architecture step), batch 64",
    "eval": "evaluation of N architectures on M images (eval mode), per architecture per 10k images",
    "epoch": "one full training epoch end to end (CIFAR-10 files read, augmented, single-path steps)",
}
TOOLS = ("wsnas", "xautodl", "nni")

# NB201 (the benchmark's op order and edge order)
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from)
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)

# the weight optimiser shared by the tools that have no recipe of their own (xautodl has one:
# nesterov); the architecture optimiser of DARTS/GDAS is Adam(3e-4, (0.5, 0.999), 1e-3) everywhere
SGD_LR = 0.025
SGD_MOMENTUM = 0.9
SGD_WEIGHT_DECAY = 5e-4


@dataclass
class BenchConfig:
    """Sizes and settings of one benchmark run (the same for every tool)."""

    device: str = "cpu"
    threads: int = 0                 # torch threads; 0 = all cores
    channels: int = 16               # C
    cells_per_stage: int = 5         # N
    warmup: int = 3                  # untimed units before timing (per tool, per workload)
    rounds: int = 6                  # interleaved turns per tool
    block: int = 5                   # timed units per turn (step workloads)
    eval_archs: int = 20             # N architectures evaluated
    eval_images: int = 1000          # M images each
    eval_batch: int = 250
    epoch_images: int = 5000         # training images written as CIFAR-10 files
    epoch_batch: int = 256
    data_dir: str | None = None      # where the CIFAR-10-format files are (epoch workload)
    archs: list[str] = field(default_factory=list)  # NB201 strings evaluated (eval workload)
    path_archs: list[str] = field(default_factory=list)  # the single-path steps' cells, in order
    seed: int = 0
    malloc: str = "as-shipped"       # the C allocator's settings per tool (MALLOC_MODES)
    channels_last: bool = False      # wsnas runs channels-last (its --channels-last)
    precision: str = "fp32"          # wsnas's --precision (bf16: autocast)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BenchConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# as-shipped: each tool as its users run it (wsnas tunes glibc's allocator as its commands do, the
# peers keep glibc's defaults); system: every tool with glibc's defaults; tuned: every tool with
# wsnas's settings (wsnas.core.runtime)
MALLOC_MODES = ("as-shipped", "system", "tuned")
MALLOC_NOTES = {
    "as-shipped": "each tool as its users run it: wsnas with the allocator thresholds its commands set "
                  "(wsnas.core.runtime), the peers with glibc's defaults",
    "system": "every tool with glibc's default allocator thresholds (WSNAS_MALLOC=system)",
    "tuned": "every tool with the allocator thresholds wsnas's commands set (wsnas.core.runtime)",
}


def worker_env(cfg: BenchConfig, tool: str) -> dict:
    """Environment of a tool's worker process: the allocator mode, wsnas's channels-last."""
    mode = cfg.malloc
    if mode not in MALLOC_MODES:
        raise ValueError(f"unknown allocator mode {mode!r}; accepted: {', '.join(MALLOC_MODES)}")
    env = {"WSNAS_CHANNELS_LAST": "1" if cfg.channels_last and tool == "wsnas" else "0"}
    if mode == "system":
        env["WSNAS_MALLOC"] = "system"
    if mode == "tuned" and tool != "wsnas":
        env["BENCH_TUNE_MALLOC"] = "1"
    return env


def tune_allocator_from_source() -> bool:
    """wsnas.core.runtime.tune_allocator, loaded from the source tree (a peer's environment lacks wsnas)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "src" / "wsnas" / "core" / "runtime.py"
    spec = importlib.util.spec_from_file_location("wsnas_runtime", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tune_allocator()


@dataclass
class Workload:
    """One timed unit of work: ``step()`` processes ``images`` images."""

    step: Callable[[], object]
    images: int
    info: dict = field(default_factory=dict)
    archs: int = 1        # architectures per unit (eval): times are reported per architecture


class Unavailable(Exception):
    """A tool cannot run a workload; the message is the one-line reason shown in the table."""


def set_threads(threads: int) -> int:
    n = threads if threads and threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def synthetic_batches(batch: int, count: int, seed: int, device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` CIFAR-shaped batches (normalised-looking noise, labels 0..9), the same for every tool."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        x = torch.randn((batch, *IMAGE_SHAPE), generator=gen)
        y = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
        out.append((x.to(device), y.to(device)))
    return out


class Cycle:
    """Endless round-robin over a list."""

    def __init__(self, items: list) -> None:
        self.items, self.i = items, 0

    def next(self):
        item = self.items[self.i % len(self.items)]
        self.i += 1
        return item


def nb201_edge_ops(arch: str) -> list[str]:
    """The six ops of an NB201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, in edge order."""
    ops = []
    for node in arch.split("+"):
        for part in node.strip("|").split("|"):
            ops.append(part.split("~")[0])
    if len(ops) != len(NB201_EDGES) or any(op not in NB201_OPS for op in ops):
        raise ValueError(f"not an NB201 architecture: {arch!r}")
    return ops


def count_params(params) -> int:
    return int(sum(p.numel() for p in params))


# ---------------------------------------------------------------------------------- memory
def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return (kb or 0) / 1024.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM; ru_maxrss where /proc is missing)."""
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0


CPU_MEMORY_NOTE = ("CPU: peak RSS of the tool's own process (VmHWM from /proc/self/status) minus its RSS "
                   "after importing torch and the tool, before building the network: network, optimiser "
                   "state, data and activations; one fresh process per tool and workload")
CUDA_MEMORY_NOTE = "CUDA: torch.cuda.max_memory_allocated over the tool's process, one process per tool and workload"


class Session:
    """Build one tool's workload and time it; :class:`worker` drives it from another process."""

    def __init__(self, tool: str, workload: str, cfg: BenchConfig) -> None:
        self.tool, self.name, self.cfg = tool, workload, cfg
        self.cuda = cfg.device.startswith("cuda")
        self.threads = set_threads(cfg.threads)
        module = load_tool(tool)  # imports the tool's library (counted in the baseline)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        self.baseline_mb = rss_mb()
        torch.manual_seed(cfg.seed)
        self.workload: Workload = module.build(workload, cfg)
        for _ in range(cfg.warmup if workload not in ("eval", "epoch") else min(cfg.warmup, 1)):
            self.workload.step()
        self._sync()
        # CPU time and page faults of the timed units (sys time is mostly the allocator's page faults)
        self.usage = {"units": 0, "user_s": 0.0, "sys_s": 0.0, "minor_faults": 0}

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def info(self) -> dict:
        return {**self.workload.info, "images_per_unit": self.workload.images, "archs_per_unit": self.workload.archs,
                "threads": self.threads, "torch": torch.__version__}

    def run(self, n: int) -> list[float]:
        """Seconds of each of ``n`` units."""
        times = []
        step = self.workload.step
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(n):
            self._sync()
            t0 = time.perf_counter()
            step()
            self._sync()
            times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.usage["units"] += n
        self.usage["user_s"] += after.ru_utime - before.ru_utime
        self.usage["sys_s"] += after.ru_stime - before.ru_stime
        self.usage["minor_faults"] += after.ru_minflt - before.ru_minflt
        return times

    def memory(self) -> dict:
        """Peak memory, and the CPU time and page faults of the timed units so far."""
        usage = {"usage": dict(self.usage)}
        if self.cuda:
            return {"peak_mb": torch.cuda.max_memory_allocated() / 2**20, "kind": "cuda_max_allocated", **usage}
        return {"peak_mb": max(0.0, peak_rss_mb() - self.baseline_mb), "kind": "cpu_peak_rss_delta",
                "baseline_mb": self.baseline_mb, **usage}


def replace_section(text: str, key: str, section: str) -> str:
    """``text`` with the part between ``<!-- BEGIN key -->`` and ``<!-- END key -->`` replaced by
    ``section`` (appended with its markers where they are missing): one device's results in a
    Markdown file that keeps the other device's and the hand-written notes."""
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        return f"{head}{begin}\n{section}\n{end}{tail}"
    return text.rstrip() + f"\n\n{begin}\n{section}\n{end}\n"


def load_tool(tool: str):
    """The module ``tool_<tool>`` next to this file."""
    import importlib

    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; accepted: {', '.join(TOOLS)}")
    return importlib.import_module(f"tool_{tool}")
