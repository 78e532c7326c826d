"""The NNI 3.0 side of the benchmark (runs in the peers' environment).

The supernet is NNI's NAS-Bench-201 model space (``nni.nas.hub.pytorch.NasBench201``) turned into
a one-shot supernet by the strategy's own ``mutate_model``; each step does what the strategy's
Lightning module does in ``training_step``, without the Lightning trainer around it:

* single path: ``RandomOneShot`` — resample every supernet module (one cell for the whole
  network: NNI labels every cell's choices alike; ``memo`` gives the shared sequence of cells),
  forward, cross-entropy, backward, SGD step;
* DARTS: ``DARTS`` — architecture step on the validation batch (``backward`` of the loss,
  Adam(3e-4, (0.5, 0.999), 1e-3) as NNI configures it), then the weight step;
* GDAS: NNI has no GDAS (a hard sample running one op per edge); its ``GumbelDARTS`` (soft Gumbel
  softmax weights, every op computed) is measured instead and labelled so.

NNI has no weight-optimiser recipe of its own: SGD lr 0.025, momentum 0.9, weight decay 5e-4.
Its hub model's cell batch norms are affine with running statistics (no option to change them).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from benchlib import (
    NB201_EDGES,
    NUM_CLASSES,
    SGD_LR,
    SGD_MOMENTUM,
    SGD_WEIGHT_DECAY,
    BenchConfig,
    Cycle,
    Unavailable,
    Workload,
    count_params,
    nb201_edge_ops,
    synthetic_batches,
)

warnings.filterwarnings("ignore")

try:
    from importlib.metadata import version as _dist_version

    VERSION = _dist_version("nni")
except Exception:  # noqa: BLE001 - the version is informative only
    VERSION = "unknown"

# NNI names the NB201 ops and edges its own way
NNI_OPS = {"none": "none", "skip_connect": "skip_connect", "nor_conv_1x1": "conv_1x1",
           "nor_conv_3x3": "conv_3x3", "avg_pool_3x3": "avg_pool_3x3"}
NNI_EDGE_LABELS = tuple(f"cell/{i}_{j}" for j, i in NB201_EDGES)


def _supernet(cfg: BenchConfig, strategy_name: str):
    from nni.nas.hub.pytorch import NasBench201
    from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
    from nni.nas.strategy import DARTS, GumbelDARTS, RandomOneShot

    strategy = {"random": RandomOneShot, "darts": DARTS, "gumbel": GumbelDARTS}[strategy_name]()
    net = strategy.mutate_model(NasBench201(cfg.channels, cfg.cells_per_stage, NUM_CLASSES)).to(cfg.device)
    modules = [m for m in net.modules() if isinstance(m, BaseSuperNetModule)]
    alphas = list({id(p): p for m in modules if hasattr(m, "arch_parameters") for p in m.arch_parameters()}.values())
    ids = {id(p) for p in alphas}
    weights = [p for p in net.parameters() if id(p) not in ids]
    return net, modules, alphas, weights


def _resample(modules, memo: dict | None = None) -> dict:
    memo = {} if memo is None else dict(memo)
    for m in modules:
        memo.update(m.resample(memo=memo))
    return memo


def _choice(arch: str) -> dict:
    """NNI's sample (label -> op) of an NB201 string."""
    return {label: NNI_OPS[op] for label, op in zip(NNI_EDGE_LABELS, nb201_edge_ops(arch))}


def build(workload: str, cfg: BenchConfig) -> Workload:
    if workload == "epoch":
        raise Unavailable("NNI has no CIFAR-10 loader of its own (its examples load data with torchvision)")
    kind = "single_path" if workload.startswith("single_path_") else workload.split("_")[0]
    if kind not in ("single_path", "darts", "gdas", "eval"):
        raise Unavailable(f"unknown workload {workload!r}")
    strategy_name = {"darts": "darts", "gdas": "gumbel"}.get(kind, "random")
    net, modules, alphas, weights = _supernet(cfg, strategy_name)
    w_opt = torch.optim.SGD(weights, lr=SGD_LR, momentum=SGD_MOMENTUM, weight_decay=SGD_WEIGHT_DECAY)
    info = {"params": count_params(weights), "version": VERSION,
            "recipe": "SGD momentum 0.9 (no NNI recipe; same as wsnas)"}
    net.train()
    if kind == "single_path":
        batch = int(workload.rsplit("_", 1)[1])
        data = Cycle(synthetic_batches(batch, 4, cfg.seed, cfg.device))
        cells = Cycle([_choice(a) for a in cfg.path_archs] or [None])

        def step() -> None:
            _resample(modules, cells.next())
            x, y = data.next()
            loss = F.cross_entropy(net(x), y)
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
            w_opt.step()

        return Workload(step, batch, {**info, "how": "RandomOneShot supernet: resample + weight step"})
    if kind in ("darts", "gdas"):
        a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        data = Cycle(synthetic_batches(64, 4, cfg.seed, cfg.device))
        valid = Cycle(synthetic_batches(64, 4, cfg.seed + 1, cfg.device))

        def step() -> None:
            xv, yv = valid.next()
            _resample(modules)
            a_opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(xv), yv).backward()
            a_opt.step()
            x, y = data.next()
            _resample(modules)
            loss = F.cross_entropy(net(x), y)
            w_opt.zero_grad(set_to_none=True)
            loss.backward()
            w_opt.step()

        how = ("DARTS supernet: arch step + weight step" if kind == "darts" else
               "GumbelDARTS (soft Gumbel weights, every op computed; NNI has no GDAS): arch step + weight step")
        return Workload(step, 64, {**info, "how": how, **({"substitute": "GumbelDARTS"} if kind == "gdas" else {})})
    choices = [_choice(a) for a in cfg.archs]
    (x, y), = synthetic_batches(cfg.eval_images, 1, cfg.seed + 2, cfg.device)

    @torch.no_grad()
    def evaluate() -> None:
        net.eval()
        for choice in choices:
            _resample(modules, choice)
            correct = torch.zeros((), dtype=torch.long, device=x.device)
            loss = torch.zeros((), dtype=torch.float64, device=x.device)
            for i in range(0, len(x), cfg.eval_batch):
                logits = net(x[i:i + cfg.eval_batch])
                yb = y[i:i + cfg.eval_batch]
                loss += F.cross_entropy(logits, yb, reduction="sum").double()
                correct += (logits.argmax(1) == yb).sum()
            float(correct), float(loss)

    return Workload(evaluate, cfg.eval_images * len(choices),
                    {**info, "how": "RandomOneShot supernet, resample(memo=cell), eval mode, no_grad"},
                    archs=len(choices))
