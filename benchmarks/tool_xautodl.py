"""The xautodl side of the benchmark (runs in the peers' environment).

The supernet is xautodl's own NB201 search network, ``get_cell_based_tiny_net`` with the
NATS-Bench search configuration (``name="generic"``), and each step follows its search loop
(``exps/NATS-algos/search-cell.py``) through the network's own modes:

* single path: a uniformly random cell (``dync_genotype(True)``, or the shared sequence of cells
  every tool trains in turn), run with ``set_cal_mode("dynamic", cell)``
  (the weight step of its SETN/ENAS-style algorithms; one cell for the whole network, as wsnas's
  uniform sampler);
* DARTS (``darts-v1``): weight step then architecture step, both ``set_cal_mode("joint")``;
* GDAS: weight step then architecture step, both ``set_cal_mode("gdas")``, tau 10;

with its recipe: SGD lr 0.025, momentum 0.9, nesterov, weight decay 5e-4 on ``network.weights``,
Adam(3e-4, (0.5, 0.999), 1e-3) on ``network.alphas``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

try:
    from importlib.metadata import version as _dist_version

    VERSION = _dist_version("xautodl")
except Exception:  # noqa: BLE001 - the version is informative only
    VERSION = "unknown"

ALGOS = {"single_path": "setn", "darts": "darts-v1", "gdas": "gdas"}


def _network(cfg: BenchConfig, algo: str):
    from xautodl.models import get_cell_based_tiny_net
    from xautodl.models.cell_operations import SearchSpaceNames

    config = {"name": "generic", "super_type": "basic", "C": cfg.channels, "N": cfg.cells_per_stage,
              "max_nodes": 4, "num_classes": NUM_CLASSES, "space": SearchSpaceNames["nats-bench"],
              "affine": False, "track_running_stats": False}
    net = get_cell_based_tiny_net(config)
    net.set_algo(algo)
    net = net.to(cfg.device)
    w_opt = torch.optim.SGD(net.weights, lr=SGD_LR, momentum=SGD_MOMENTUM, weight_decay=SGD_WEIGHT_DECAY,
                            nesterov=True)
    a_opt = torch.optim.Adam(net.alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    return net, w_opt, a_opt


def _train(net, opt, x, y) -> None:
    net.zero_grad()
    _, logits = net(x)
    F.cross_entropy(logits, y).backward()
    opt.step()


def build(workload: str, cfg: BenchConfig) -> Workload:
    if workload == "epoch":
        try:
            import xautodl.datasets  # noqa: F401 - its CIFAR loaders
        except ImportError as exc:
            raise Unavailable(f"peer loader needs torchvision ({exc})") from None
        raise Unavailable("peer loader needs torchvision-style transforms; not benchmarked")
    kind = "single_path" if workload.startswith("single_path_") else workload.split("_")[0]
    if kind not in ALGOS and kind != "eval":
        raise Unavailable(f"unknown workload {workload!r}")
    net, w_opt, a_opt = _network(cfg, ALGOS.get(kind, "setn"))
    info = {"params": count_params(net.weights), "version": VERSION,
            "recipe": "SGD momentum 0.9 nesterov (xautodl's search recipe)"}
    net.train()
    if kind == "single_path":
        batch = int(workload.rsplit("_", 1)[1])
        data = Cycle(synthetic_batches(batch, 4, cfg.seed, cfg.device))
        from xautodl.models.cell_searchs.genotypes import Structure

        cells = Cycle([Structure.str2structure(a) for a in cfg.path_archs])

        def step() -> None:
            cell = cells.next() if cfg.path_archs else net.dync_genotype(use_random=True)
            net.set_cal_mode("dynamic", cell)
            _train(net, w_opt, *data.next())

        how = "algo setn weight step: set_cal_mode('dynamic', cell) + forward/backward/SGD step"
        return Workload(step, batch, {**info, "how": how})
    if kind in ("darts", "gdas"):
        mode = "joint" if kind == "darts" else "gdas"
        if kind == "gdas":
            net.set_tau(10.0)
        data = Cycle(synthetic_batches(64, 4, cfg.seed, cfg.device))
        valid = Cycle(synthetic_batches(64, 4, cfg.seed + 1, cfg.device))

        def step() -> None:
            net.set_cal_mode(mode, None)
            _train(net, w_opt, *data.next())
            net.set_cal_mode(mode, None)
            _train(net, a_opt, *valid.next())

        return Workload(step, 64, {**info, "how": f"algo {ALGOS[kind]}: weight step + arch step, mode {mode}"})
    from xautodl.models.cell_searchs.genotypes import Structure

    cells = [Structure.str2structure(a) for a in cfg.archs]
    (x, y), = synthetic_batches(cfg.eval_images, 1, cfg.seed + 2, cfg.device)

    @torch.no_grad()
    def evaluate() -> None:
        net.eval()
        for cell in cells:
            net.set_cal_mode("dynamic", cell)
            correct = torch.zeros((), dtype=torch.long, device=x.device)
            loss = torch.zeros((), dtype=torch.float64, device=x.device)
            for i in range(0, len(x), cfg.eval_batch):
                _, logits = net(x[i:i + cfg.eval_batch])
                yb = y[i:i + cfg.eval_batch]
                loss += F.cross_entropy(logits, yb, reduction="sum").double()
                correct += (logits.argmax(1) == yb).sum()
            float(correct), float(loss)

    return Workload(evaluate, cfg.eval_images * len(cells),
                    {**info, "how": "eval mode, no_grad, mode dynamic per cell"}, archs=len(cells))
