"""The wsnas side of the benchmark, through wsnas's public APIs only."""

from __future__ import annotations

import torch
from benchlib import (
    NUM_CLASSES,
    SGD_LR,
    SGD_MOMENTUM,
    SGD_WEIGHT_DECAY,
    BenchConfig,
    Cycle,
    Unavailable,
    Workload,
    count_params,
    synthetic_batches,
)

import wsnas
from wsnas.commands.common import EVAL_ARCH_BATCH_CUDA
from wsnas.core.runtime import prepare_model, tune_allocator
from wsnas.data import Split, iterate_batches, load_cifar10
from wsnas.evaluator import EvalConfig, evaluate_archs
from wsnas.spaces import get_space
from wsnas.strategies import StrategyContext, get_strategy
from wsnas.strategies.base import train_path

VERSION = wsnas.__version__
# what every wsnas command does first (wsnas.cli.main); WSNAS_MALLOC=system (--malloc system) skips it
ALLOCATOR_TUNED = tune_allocator()


def _supernet(cfg: BenchConfig):
    # the weight-sharing papers' supernet: cell BNs without affine parameters or running statistics
    space = get_space("nb201", channels=cfg.channels, cells_per_stage=cfg.cells_per_stage,
                      affine=False, track_running_stats=False)
    net = space.build_supernet(num_classes=NUM_CLASSES).to(cfg.device)
    # as the trainer does: channels-last with --channels-last, bf16 autocast with --precision bf16
    return space, prepare_model(net, cfg.precision)


def _strategy(name: str, space, net, cfg: BenchConfig):
    opt = torch.optim.SGD(net.parameters(), lr=SGD_LR, momentum=SGD_MOMENTUM, weight_decay=SGD_WEIGHT_DECAY)
    strategy = get_strategy(name)
    strategy.setup(StrategyContext(supernet=net, space=space, optimizer=opt, seed=cfg.seed, total_epochs=1))
    return strategy


def build(workload: str, cfg: BenchConfig) -> Workload:
    space, net = _supernet(cfg)
    info = {"params": count_params(net.parameters()), "version": VERSION,
            "recipe": "SGD momentum 0.9 (wsnas trainer's optimiser)"}
    net.train()
    if workload.startswith("single_path_"):
        batch = int(workload.rsplit("_", 1)[1])
        strategy = _strategy("uniform", space, net, cfg)
        data = Cycle(synthetic_batches(batch, 4, cfg.seed, cfg.device))
        if not cfg.path_archs:  # the strategy samples
            return Workload(lambda: strategy.step(*data.next()), batch, {**info, "how": "get_strategy('uniform').step"})
        cells = Cycle([space.parse(a) for a in cfg.path_archs])  # every tool trains the same cells in turn
        return Workload(lambda: train_path(strategy, cells.next(), *data.next()), batch,
                        {**info, "how": "get_strategy('uniform') set up; train_path(strategy, cell, x, y)"})
    if workload in ("darts_64", "gdas_64"):
        name = workload.split("_")[0]
        strategy = _strategy(name, space, net, cfg)
        data = Cycle(synthetic_batches(64, 4, cfg.seed, cfg.device))
        valid = Cycle(synthetic_batches(64, 4, cfg.seed + 1, cfg.device))
        return Workload(lambda: strategy.step(*data.next(), valid_batch=valid.next()), 64,
                        {**info, "how": f"get_strategy('{name}').step" + (" (first order)" if name == "darts" else "")})
    if workload == "eval":
        archs = [space.parse(a) for a in cfg.archs]
        (x, y), = synthetic_batches(cfg.eval_images, 1, cfg.seed + 2, cfg.device)
        split = Split(x, y)
        # what `--eval-arch-batch auto` picks: 16 children per forward pass on CUDA, 1 on a CPU
        arch_batch = EVAL_ARCH_BATCH_CUDA if split.y.device.type == "cuda" else 1
        ecfg = EvalConfig(bn_mode="running", batch_size=cfg.eval_batch, arch_batch=arch_batch)
        return Workload(lambda: evaluate_archs(net, archs, split, ecfg), cfg.eval_images * len(archs),
                        {**info, "how": f"evaluate_archs (bn_mode running, arch_batch {arch_batch})"},
                        archs=len(archs))
    if workload == "epoch":
        if not cfg.data_dir:
            raise Unavailable("no CIFAR-10-format data directory was given")
        strategy = _strategy("uniform", space, net, cfg)
        gen = torch.Generator().manual_seed(cfg.seed)
        valid_size = max(1, cfg.epoch_images // 10)
        train_images = cfg.epoch_images - valid_size

        def epoch() -> None:
            data = load_cifar10(data_dir=cfg.data_dir, device=torch.device(cfg.device), split_seed=cfg.seed,
                                valid_size=valid_size)
            for x, y in iterate_batches(data.train, cfg.epoch_batch, shuffle=True, generator=gen,
                                        augment=data.augment):
                strategy.step(x, y)

        return Workload(epoch, train_images,
                        {**info, "how": "load_cifar10 + iterate_batches(crop_flip on the device) + uniform steps"})
    raise Unavailable(f"unknown workload {workload!r}")
