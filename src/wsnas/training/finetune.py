"""Fine-tuning from a supernet snapshot (algorithms.md 1.5).

For every child: copy its path's shared weights (BN statistics included) into its standalone
network, train that child alone at the snapshot's learning rate for ``steps`` mini-batches
(the same batches for every child), and evaluate it on the validation split before the
first step and after every step. Results are stored as predictions ``ft:<step>`` of a
fine-tuning run, child by child, so an interrupted fine-tuning continues with the next child.
A supernet trained with partial sharing passes its weight bank (``bank=``, the trainer's
``bank``): each child starts from its own private copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from wsnas.core.errors import WsnasError
from wsnas.core.runtime import precision_of, prepare_model
from wsnas.data import Dataset, iterate_batches
from wsnas.evaluator import EvalConfig, evaluate_archs, recalibration_batches
from wsnas.spaces import Arch, Space
from wsnas.store import Store
from wsnas.supernet import load_child_from_supernet
from wsnas.supernet.bank import WeightBank


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 10
    lr: float = 0.001  # the snapshot's learning rate; callers pass the schedule's value
    momentum: float = 0.9
    weight_decay: float = 1e-3
    batch_size: int = 64
    seed: int = 0  # order of the fine-tuning batches, identical for every child

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise WsnasError(f"fine-tuning steps must be at least 1, got {self.steps}")

    def to_dict(self) -> dict:
        return asdict(self)


def finetune_batches(data: Dataset, cfg: FinetuneConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    while len(out) < cfg.steps:
        for batch in iterate_batches(data.train, cfg.batch_size, shuffle=True, generator=gen,
                                     augment=data.augment):
            out.append(batch)
            if len(out) == cfg.steps:
                break
    return out


def finetune_child(supernet: nn.Module, space: Space, arch: Arch, data: Dataset,
                   cfg: FinetuneConfig, batches, eval_cfg: EvalConfig, recal=None, *,
                   bank: WeightBank | None = None) -> list[tuple[float, float]]:
    """(accuracy, loss) on the validation split at steps 0..``cfg.steps`` of fine-tuning, at the
    supernet's precision (``--precision``); ``bank``: the supernet's weight bank, if any."""
    device = data.train.x.device
    child = space.build_network(arch, num_classes=data.num_classes, in_channels=data.in_channels)
    child = prepare_model(load_child_from_supernet(supernet, child.to(device), bank=bank), precision_of(supernet))
    opt = torch.optim.SGD(child.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    scores = evaluate_archs(child, [None], data.valid, eval_cfg, recal=recal)
    for x, y in batches:
        child.train()
        loss = F.cross_entropy(child(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        scores += evaluate_archs(child, [None], data.valid, eval_cfg, recal=recal)
    return scores


def run_finetune(supernet: nn.Module, space: Space, data: Dataset, cfg: FinetuneConfig,
                 eval_cfg: EvalConfig, *, archs: Sequence[Arch], store: Store, run_id: str,
                 progress: bool = True, bank: WeightBank | None = None) -> None:
    """Fine-tune every child in ``archs`` and store ``ft:<step>`` predictions, skipping done ones
    (``bank``: the supernet's weight bank under partial sharing)."""
    done: dict[str, int] = {}
    for row in store.predictions(run_id):
        done[row["arch"]] = done.get(row["arch"], 0) + 1
    todo = [a for a in archs if done.get(space.format(a), 0) < cfg.steps + 1]
    batches = finetune_batches(data, cfg)
    recal = recalibration_batches(data.train, eval_cfg) if eval_cfg.bn_mode == "recal" else None
    for arch in tqdm(todo, desc=f"fine-tune {run_id}", unit="child", disable=not progress,
                     dynamic_ncols=True, leave=False):
        scores = finetune_child(supernet, space, arch, data, cfg, batches, eval_cfg, recal, bank=bank)
        name, index = space.format(arch), space.index(arch)
        store.add_predictions(run_id, [
            {"checkpoint": f"ft:{s}", "epoch": 0, "step": s, "arch": name, "arch_index": index,
             "accuracy": acc, "loss": loss}
            for s, (acc, loss) in enumerate(scores)])
