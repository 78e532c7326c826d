"""Shared fixtures: small data and small networks so every test takes seconds."""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wsnas.data import Split, load_dataset
from wsnas.experiments.insights import InsightsConfig, run_insights
from wsnas.spaces import get_space
from wsnas.store import Store, config_hash
from wsnas.training.standalone import TrainConfig


def shrink(data, train: int = 192, valid: int = 64, test: int = 64):
    """The first images of each split (the splits are already shuffled and stratified)."""
    def cut(split: Split, n: int) -> Split:
        return Split(split.x[:n].clone(), split.y[:n].clone())

    return dataclasses.replace(data, train=cut(data.train, train), valid=cut(data.valid, valid),
                               test=cut(data.test, test))


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def small_digits(digits):
    return shrink(digits)


@pytest.fixture
def small_space():
    """tiny64 with narrow networks: same choices, same structure, a fraction of the compute."""
    return get_space("tiny64", channels=4, stem_channels=8)


# One thread: the tests' networks are tiny, and some tests run subprocesses beside pytest;
# oversubscribing two cores with OpenMP threads slows everything down many times over.
torch.set_num_threads(1)


def randomise_bn(net) -> None:
    """Give every BN layer non-trivial statistics (and affine values) so outputs depend on them."""
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


class WorkerKiller:
    """Arms the jobs' kill hook (wsnas.execution.jobs.KILL_HOOK_ENV): the first job to start writes its
    worker's PID and waits; a thread SIGKILLs that worker, so the executor must rerun the job."""

    def __init__(self, kill_dir, monkeypatch):
        import threading

        from wsnas.execution.jobs import KILL_HOOK_ENV

        kill_dir.mkdir()
        monkeypatch.setenv(KILL_HOOK_ENV, str(kill_dir))
        self.pid_file = kill_dir / "worker.pid"
        self.pid = None
        self.thread = threading.Thread(target=self._kill, daemon=True)
        self.thread.start()

    def _kill(self) -> None:
        import os
        import signal
        import time

        deadline = time.time() + 600  # a guard against a hang, not a speed limit
        while time.time() < deadline:
            if self.pid_file.exists() and self.pid_file.read_text().strip():
                self.pid = int(self.pid_file.read_text())
                os.kill(self.pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    def join(self) -> int | None:
        """Wait for the thread; the PID it killed (None: no worker was killed)."""
        self.thread.join(timeout=5)
        return self.pid


@pytest.fixture
def worker_killer(tmp_path, monkeypatch):
    return lambda: WorkerKiller(tmp_path / "kill", monkeypatch)


# The insights report, read in tests/report and tests/commands: an inline PNG, and a whole tiny study.
IMG_TAG = '<img src="data:image/png;base64,'


def build_tiny_study(run_dir: Path, *, gt_seeds: int = 2, instances: dict | None = None,
                     dense_last: int = 4, finetune_steps: int = 2,
                     sweep: tuple = ("full", "group:2", "group:4", "group:4:random", "prefix:0", "prefix:4")) -> Path:
    """Run a whole (tiny) insights study into ``run_dir``; returns the store's path."""
    data = load_dataset("digits")
    data = dataclasses.replace(data, **{
        name: Split(getattr(data, name).x[:n].clone(), getattr(data, name).y[:n].clone())
        for name, n in (("train", 128), ("valid", 64), ("test", 64))})
    space = get_space("tiny64", channels=4, stem_channels=8)
    train = TrainConfig(epochs=1, batch_size=64, eval_batch_size=256)
    cfg = InsightsConfig(gt_seeds=gt_seeds, groundtruth=train,
                         supernet=train.with_overrides(epochs=2),
                         instances=instances or {"seeds": 2, "orders": 2, "shuffle": 0},
                         dense_last=dense_last, finetune_steps=finetune_steps, sweep=sweep)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: more threads only add contention on a busy machine
    try:
        with Store(run_dir / "results.db") as store:
            run_insights(space, data, cfg, run_dir=run_dir, store=store, progress=False,
                         log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    return run_dir / "results.db"


# Rows for the results-store tests (tests/store, tests/groundtruth, tests/commands): a training config
# and its hash, ground-truth and prediction rows, and reading back a written file.
CONFIG = {"lr": 0.1, "epochs": 3, "data": {"name": "digits", "split_seed": 0}}
HASH = config_hash(CONFIG)


def gt_row(arch: str, index: int, seed: int, test_acc: float, **extra) -> dict:
    row = {"space": "tiny64", "arch": arch, "arch_index": index, "dataset": "digits",
           "seed": seed, "epochs": 3, "config": CONFIG, "test_acc": test_acc,
           "valid_acc": test_acc / 2, "test_loss": 1.0 - test_acc, "seconds": 1.5}
    row.update(extra)
    return row


def pred(checkpoint, arch, index, accuracy, epoch=0, step=0, loss=None):
    return {"checkpoint": checkpoint, "epoch": epoch, "step": step, "arch": arch,
            "arch_index": index, "accuracy": accuracy, "loss": loss}


def read_text(path: Path) -> str:
    with open(path, newline="", encoding="utf-8") as handle:
        return handle.read()


# Datasets in their authors' file formats, tiny (tests/data, tests/groundtruth): pickles with the
# official keys, written as the originals were (protocol 2, Python 2 strings as bytes for CIFAR).
def planar_rows(images: np.ndarray) -> np.ndarray:
    """uint8 N x C x H x W -> the official N x (C*H*W) rows: the red plane, then green, then blue,
    each plane row by row (spelled out with loops, not by the reshape the readers use)."""
    n, c, h, w = images.shape
    rows = np.zeros((n, c * h * w), dtype=np.uint8)
    for i in range(n):
        for ch in range(c):
            for r in range(h):
                rows[i, ch * h * w + r * w:ch * h * w + (r + 1) * w] = images[i, ch, r]
    return rows


def write_cifar100(folder: Path, n_train: int = 60, n_test: int = 40, classes: int = 20, seed: int = 0) -> dict:
    """``cifar-100-python`` with ``train``, ``test`` and ``meta``; returns name -> (images N x 3 x 32 x 32,
    fine labels, the first ``classes`` of the 100 in equal shares). Test images 0 and 1 are a known pattern."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        fine = [int(v) for v in rng.permutation(np.arange(n) % classes)]
        if name == "test":
            images[:2] = (np.arange(3 * 32 * 32).reshape(3, 32, 32) * 7 % 251).astype(np.uint8)
        record = {
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
            b"batch_label": f"{name}ing batch 1 of 1".encode(),
            b"fine_labels": fine,
            b"coarse_labels": [f // 5 for f in fine],
            b"data": planar_rows(images),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(record, f, protocol=2)
        written[name] = (images, fine)
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


def write_imagenet16(folder: Path, per_batch: int = 10, n_valid: int = 30, seed: int = 0) -> dict:
    """``ImageNet16`` with ``train_data_batch_1..10`` and ``val_data`` (``data`` N x 768, ``labels`` 1..1000;
    training batches also a ``mean``); about a fifth of the images are of classes above 120. Returns
    name -> (images N x 3 x 16 x 16, labels 1..1000)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    names = [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]
    for name in names:
        n = n_valid if name == "val_data" else per_batch
        images = rng.integers(0, 256, size=(n, 3, 16, 16), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(1, 121, size=n)]
        for i in range(0, n, 5):
            labels[i] = int(rng.integers(121, 1001))  # not of ImageNet16-120
        if name == "val_data":
            labels[1] = 120  # the last class kept
        record = {"data": planar_rows(images), "labels": labels}
        if name != "val_data":
            record["mean"] = rng.random(768)
        with open(folder / name, "wb") as f:
            pickle.dump(record, f, protocol=2)
        written[name] = (images, labels)
    return written


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard shows for the event files in ``folder``: tag -> [(step, value)] in the order
    TensorBoard reads them (what a restart purged left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def float32(values) -> list[float]:
    """``values`` rounded as TensorBoard stores a scalar (float32), to compare with what it read back."""
    return [float(np.float32(v)) for v in values]


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def import_scripts(folders, *names: str):
    """Import the modules ``names`` from script folders that are no package (``benchmarks/``),
    with the folders on ``sys.path`` only meanwhile; returns the first module."""
    paths = [str(folder) for folder in folders]
    sys.path[:0] = paths
    try:
        modules = [importlib.import_module(name) for name in names]
    finally:
        for path in paths:
            sys.path.remove(path)
    return modules[0]
