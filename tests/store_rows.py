"""Rows for the results-store tests (tests/store, tests/groundtruth, tests/commands): a training
config and its hash, ground-truth and prediction rows, and reading back a written file."""

from __future__ import annotations

from pathlib import Path

from wsnas.store import config_hash

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
