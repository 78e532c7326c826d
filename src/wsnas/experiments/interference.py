"""Interference between children of a weight-sharing supernet, measured during training.

Zhang et al. (2020) observe that training one child with shared weights moves the others: the
child trained in the latest mini-batch tends to rank high. :class:`InterferenceProbe` measures
that directly. It wraps a single-path strategy (round-robin by default, so every child is the
trained one once per cycle) and around every training step on child A it measures every child
B of the space on one fixed *probe batch*:

* ``d_loss = loss_B(after) - loss_B(before)`` -- the change of B's mean cross-entropy on the
  probe batch across A's optimiser step (negative: training A helped B);
* ``d_acc = acc_B(after) - acc_B(before)`` -- the same for B's accuracy;
* ``cosine`` -- the cosine similarity of A's and B's gradients of the probe loss, taken at the
  weights *before* the step, over the parameters both paths use (those whose probe gradient
  exists for both A and B: the stem, the classifier, the cells' preprocessing, and the ops the
  two children pick alike). A's gradient here is A's gradient on the probe batch, not on the
  training batch, so that A and B are compared on the same data and ``cosine(A, A) = 1``.

Definitions and choices:

* The probe batch is drawn once from the *train* split by a generator seeded with
  ``probe_seed`` (``probe_size`` images without replacement, or the whole split if smaller).
* Probe forward passes use eval-mode batch norm (the running statistics), so probing changes
  neither the weights nor the BN statistics nor any random generator: the training itself is
  identical to an unprobed run with the same seed (the real step is
  :func:`wsnas.strategies.base.train_path`, exactly as the inner strategy would run it).
* The losses "after" step t are the losses "before" step t + 1 when nothing changed the
  weights in between (checked by comparing every parameter and buffer with a copy taken after
  the step), so each probed step costs one forward and backward pass per child; otherwise
  (and at the end of every epoch) a forward-only pass at the post-step weights provides them.
* Rows are kept in :attr:`InterferenceProbe.rows`; when a store is given, the rows of each
  epoch are written at the epoch's end (upsert keyed by ``(run_id, step, other_index)``), just
  before the trainer's checkpoint, so a resumed run rewrites identical rows.

:func:`interference_matrix` aggregates rows into ``n x n`` matrices (row: the trained child A,
column: the measured child B); :func:`summarize_interference` condenses them;
:func:`run_interference` trains a supernet with the probe and a :class:`GradVarianceMonitor`
and stores everything; :func:`interference_study` (``wsnas interference``) runs it and writes
the matrix to ``RUN_DIR/interference.csv`` (:func:`write_matrix_csv`) and its heat maps to
``RUN_DIR/interference.png`` (:func:`wsnas.report.interference.interference_figure`).
:data:`INTERFERENCE_DEFAULTS` holds the default budget per dataset.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wsnas.core.errors import WsnasError
from wsnas.core.files import atomic_write
from wsnas.data import Dataset, Split
from wsnas.experiments.insights import SUPERNET_DEFAULTS
from wsnas.runs import train_run
from wsnas.spaces import Arch, Space
from wsnas.strategies.base import SinglePathStrategy, StepResult, Strategy, StrategyContext, train_path
from wsnas.training.gradvar import METRIC_NAMES, GradVarianceMonitor
from wsnas.training.monitor import tensorboard_monitor
from wsnas.training.standalone import TrainConfig
from wsnas.training.trainer import SupernetConfig, SupernetTrainer

__all__ = [
    "GRAD_METRICS",
    "INTERFERENCE_DEFAULTS",
    "InterferenceConfig",
    "InterferenceProbe",
    "interference_defaults",
    "interference_matrix",
    "interference_study",
    "run_interference",
    "shared_choices",
    "summarize_interference",
    "write_matrix_csv",
]

#: Spaces larger than this are refused: the probe runs every child on every step.
MAX_CHILDREN = 256

#: Names under which gradient-variance windows go to the store's ``run_metrics`` table.
GRAD_METRICS = METRIC_NAMES


class InterferenceProbe(Strategy):
    """A single-path strategy that also measures how each step moves every child.

    Args:
        inner: the single-path strategy that picks the trained child (its decisions, state
            and training step are exactly those of an unprobed run).
        train: the train split the probe batch is drawn from.
        probe_size: images in the probe batch (the whole split if it has fewer).
        probe_seed: seed of the probe batch's draw.
        start_epoch: probe only from this (0-based) epoch on; earlier steps train unprobed.
        store, run_id: where each epoch's rows (and the attached monitor's windows) are written.
    """

    name = "interference"

    def __init__(self, inner: SinglePathStrategy, train: Split, *, probe_size: int = 256,
                 probe_seed: int = 0, start_epoch: int = 0, store=None, run_id: str | None = None):
        if not isinstance(inner, SinglePathStrategy):
            raise WsnasError(f"interference probing needs a single-path strategy (one child per step), "
                             f"not {getattr(inner, 'name', type(inner).__name__)!r}")
        if isinstance(probe_size, bool) or not isinstance(probe_size, int) or probe_size < 1:
            raise WsnasError(f"probe size must be a positive number of images, got {probe_size!r}")
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 0:
            raise WsnasError(f"probe start epoch must be a non-negative integer, got {start_epoch!r}")
        if store is not None and run_id is None:
            raise WsnasError("an interference probe with a store needs a run id")
        self.inner = inner
        self.probe_size = min(probe_size, len(train))
        self.probe_seed = probe_seed
        self.start_epoch = start_epoch
        self.store, self.run_id = store, run_id
        gen = torch.Generator(device="cpu").manual_seed(probe_seed)
        idx = torch.randperm(len(train), generator=gen)[: self.probe_size].to(train.x.device)
        self.probe_x, self.probe_y = train.x[idx], train.y[idx]
        self.monitor: GradVarianceMonitor | None = None
        self.rows: list[dict] = []

    # ------------------------------------------------------------------ strategy interface
    def describe(self) -> dict:
        d = {**self.inner.describe(), "probe": "interference", "probe_size": self.probe_size,
             "probe_seed": self.probe_seed, "probe_start_epoch": self.start_epoch}
        if self.monitor is not None:
            d["grad_window"] = self.monitor.window
        return d

    def setup(self, ctx: StrategyContext) -> None:
        if ctx.replica is not None:
            raise WsnasError("interference probing runs in one process; it is not supported under torchrun")
        super().setup(ctx)
        space = ctx.space
        if len(space) > MAX_CHILDREN:
            raise WsnasError(f"interference probing runs every child on every step; {space.name} has "
                             f"{len(space)} children (at most {MAX_CHILDREN})")
        self.inner.setup(ctx)
        self.archs: list[Arch] = list(space.enumerate())
        self.names = [space.format(a) for a in self.archs]
        self.position = {space.index(a): k for k, a in enumerate(self.archs)}
        self.steps = 0
        self.epoch = 0
        self._pending: dict | None = None
        self._snapshot: list[torch.Tensor] | None = None
        self._flushed = 0
        self._windows_flushed = 0

    def attach_monitor(self, monitor: GradVarianceMonitor) -> None:
        """Carry ``monitor``'s state in this strategy's checkpoints and store its windows."""
        self.monitor = monitor

    def next_arch(self) -> Arch:
        return self.inner.next_arch()

    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        arch = self.inner.next_arch()
        self.steps += 1
        if self.epoch < self.start_epoch:
            return train_path(self, arch, x, y)
        a = self.position[self.space.index(arch)]
        losses, correct, cosine = self._probe(a)
        if self._pending is not None:
            self._finish(losses, correct)
        result = train_path(self, arch, x, y)
        self._pending = {"step": self.steps, "a": a, "loss": losses, "correct": correct, "cosine": cosine}
        self._snapshot = [t.detach().clone() for t in self._state_tensors()]
        return result

    def end_epoch(self, epoch: int) -> None:
        if self._pending is not None:
            self._finish(None, None)
        self.inner.end_epoch(epoch)
        self.flush(epoch)
        self.epoch = epoch + 1

    def state_dict(self) -> dict:
        state = {"inner": self.inner.state_dict(), "steps": self.steps, "epoch": self.epoch,
                 "windows_flushed": self._windows_flushed}
        if self.monitor is not None:
            state["monitor"] = self.monitor.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.steps = int(state["steps"])
        self.epoch = int(state["epoch"])
        if self.monitor is not None and "monitor" in state:
            self.monitor.load_state_dict(state["monitor"])
        self._pending, self._snapshot = None, None
        self.rows, self._flushed = [], 0
        self._windows_flushed = int(state.get("windows_flushed", 0))

    # ------------------------------------------------------------------ measuring
    def _state_tensors(self) -> list[torch.Tensor]:
        return [*self.supernet.parameters(), *self.supernet.buffers()]

    def _probe(self, a: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every child's probe loss and correct count, and its gradient's cosine with child ``a``."""
        net = self.supernet
        params = [p for p in net.parameters() if p.requires_grad]
        n = len(self.archs)
        losses = torch.empty(n, dtype=torch.float64)
        correct = torch.empty(n, dtype=torch.long)
        cosine = torch.full((n,), float("nan"), dtype=torch.float64)
        was_training = net.training
        net.eval()  # running BN statistics: probing changes no buffer
        try:
            with torch.enable_grad():
                stem_fn = getattr(net, "forward_stem", None)
                stem = stem_fn(self.probe_x) if stem_fn is not None else None
                grad_a = None
                for k in [a, *(k for k in range(n) if k != a)]:
                    if stem is not None:
                        logits = net(self.probe_x, self.archs[k], stem=stem)
                    else:
                        logits = net(self.probe_x, self.archs[k])
                    loss = F.cross_entropy(logits, self.probe_y)
                    grads = torch.autograd.grad(loss, params, retain_graph=stem is not None,
                                                allow_unused=True)
                    losses[k] = loss.detach().double().cpu()
                    correct[k] = (logits.detach().argmax(1) == self.probe_y).sum().cpu()
                    if grad_a is None:
                        grad_a = grads
                    cosine[k] = _cosine_on_shared(grad_a, grads)
        finally:
            net.train(was_training)
        return losses, correct, cosine

    @torch.no_grad()
    def _forward_losses(self) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.supernet
        n = len(self.archs)
        losses = torch.empty(n, dtype=torch.float64)
        correct = torch.empty(n, dtype=torch.long)
        was_training = net.training
        net.eval()
        try:
            stem_fn = getattr(net, "forward_stem", None)
            stem = stem_fn(self.probe_x) if stem_fn is not None else None
            for k, arch in enumerate(self.archs):
                logits = net(self.probe_x, arch, stem=stem) if stem is not None else net(self.probe_x, arch)
                losses[k] = F.cross_entropy(logits, self.probe_y).double().cpu()
                correct[k] = (logits.argmax(1) == self.probe_y).sum().cpu()
        finally:
            net.train(was_training)
        return losses, correct

    def _forward_after(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Probe losses at the weights right after the pending step (restored if changed since)."""
        current = self._state_tensors()
        if self._snapshot is None or all(torch.equal(c, s) for c, s in zip(current, self._snapshot)):
            return self._forward_losses()
        saved = [c.detach().clone() for c in current]
        with torch.no_grad():
            for c, s in zip(current, self._snapshot):
                c.copy_(s)
            try:
                return self._forward_losses()
            finally:
                for c, s in zip(current, saved):
                    c.copy_(s)

    def _finish(self, losses_after: torch.Tensor | None, correct_after: torch.Tensor | None) -> None:
        """Close the pending step with the probe values at the current weights, used only when
        they equal the weights right after the step (else they are measured at those)."""
        pending, self._pending = self._pending, None
        unchanged = losses_after is not None and self._snapshot is not None and all(
            torch.equal(c, s) for c, s in zip(self._state_tensors(), self._snapshot))
        if not unchanged:
            losses_after, correct_after = self._forward_after()
        self._snapshot = None
        m = len(self.probe_y)
        d_loss = (losses_after - pending["loss"]).tolist()
        d_acc = ((correct_after - pending["correct"]).double() / m).tolist()
        cos = pending["cosine"].tolist()
        a = pending["a"]
        trained_index = self.space.index(self.archs[a])
        for k, arch in enumerate(self.archs):
            self.rows.append({"step": pending["step"], "trained_index": trained_index,
                              "other_index": self.space.index(arch), "trained_arch": self.names[a],
                              "other_arch": self.names[k], "d_loss": d_loss[k], "d_acc": d_acc[k],
                              "cosine": cos[k]})

    def flush(self, epoch: int) -> None:
        """Write the rows and gradient-variance windows not yet written to the store (called at
        the end of 0-based ``epoch``, whose number the new windows are stored with)."""
        if self.store is None:
            return
        new = self.rows[self._flushed:]
        if new:
            self.store.add_interference(self.run_id, new)
        self._flushed = len(self.rows)
        if self.monitor is not None and len(self.monitor.windows) > self._windows_flushed:
            self.store.add_run_metrics(self.run_id, grad_metric_rows(
                self.monitor.windows[self._windows_flushed:], epoch))
            self._windows_flushed = len(self.monitor.windows)


def _cosine_on_shared(ga, gb) -> float:
    """Cosine of two gradients (tuples aligned with one parameter list, None = unused) over the
    parameters both use; NaN when either restricted gradient is zero."""
    dot = torch.zeros((), dtype=torch.float64)
    na = torch.zeros((), dtype=torch.float64)
    nb = torch.zeros((), dtype=torch.float64)
    for x, y in zip(ga, gb):
        if x is None or y is None:
            continue
        x, y = x.double(), y.double()
        dot += (x * y).sum().cpu()
        na += x.square().sum().cpu()
        nb += y.square().sum().cpu()
    denom = math.sqrt(na.item() * nb.item())
    return dot.item() / denom if denom > 0 else float("nan")


def grad_metric_rows(windows: list[dict], epoch: int | None) -> list[dict]:
    """Store rows (``run_metrics``) of gradient-variance windows, keyed by their end step."""
    return [{"name": name, "step": int(w["end_step"]), "epoch": epoch, "value": w[key]}
            for w in windows for key, name in GRAD_METRICS.items()]


# ---------------------------------------------------------------------------------------- analysis


def interference_matrix(rows, n: int) -> dict[str, np.ndarray]:
    """Aggregate interference rows into ``n x n`` matrices indexed ``[trained_index, other_index]``.

    Returns ``d_loss``, ``d_acc`` and ``cosine`` (the mean over every occurrence of the pair;
    NaN values, e.g. a cosine of a zero gradient, are left out of the mean) and ``count`` (how
    many steps trained the row's child while the column's child was measured). Pairs never
    observed are NaN.
    """
    if n < 1:
        raise WsnasError(f"matrix size must be positive, got {n}")
    sums = {k: np.zeros((n, n)) for k in ("d_loss", "d_acc", "cosine")}
    counts = {k: np.zeros((n, n), dtype=np.int64) for k in sums}
    count = np.zeros((n, n), dtype=np.int64)
    for r in rows:
        i, j = int(r["trained_index"]), int(r["other_index"])
        if not (0 <= i < n and 0 <= j < n):
            raise WsnasError(f"interference row ({i}, {j}) is outside a {n} x {n} matrix")
        count[i, j] += 1
        for k in sums:
            v = r.get(k)
            if v is not None and not math.isnan(v):
                sums[k][i, j] += v
                counts[k][i, j] += 1
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in sums:
            out[k] = np.where(counts[k] > 0, sums[k] / np.maximum(counts[k], 1), np.nan)
    out["count"] = count
    return out


def shared_choices(space: Space, n: int | None = None) -> np.ndarray:
    """``n x n`` matrix of how many choices two children make alike (tiny64: equal digits)."""
    archs = list(space.enumerate()) if n is None else [space.from_index(i) for i in range(n)]
    idx = np.array([space.option_indices(a) for a in archs])
    return (idx[:, None, :] == idx[None, :, :]).sum(-1)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def summarize_interference(matrix: dict[str, np.ndarray], space: Space | None = None) -> dict:
    """A few numbers that condense the matrices of :func:`interference_matrix`.

    * ``self_d_loss`` / ``other_d_loss`` -- mean d_loss on the diagonal (a child's step on
      itself) and off it (on the other children); the same for ``d_acc``;
    * ``other_hurt_fraction`` -- the share of observed off-diagonal pairs whose mean d_loss is
      positive (training A raised B's loss);
    * ``self_cosine`` (1 up to rounding) and ``other_cosine``;
    * with ``space``: ``corr_cosine_shared`` / ``corr_d_loss_shared`` -- Pearson correlation
      over off-diagonal pairs with the number of choices A and B make alike, and
      ``cosine_by_shared`` / ``d_loss_by_shared`` -- the mean per number of shared choices;
    * ``pairs_observed`` and ``steps`` -- off-diagonal pairs seen at least once, and the
      number of probed steps (the diagonal's count).
    """
    n = matrix["count"].shape[0]
    diag = np.eye(n, dtype=bool)
    off = ~diag & (matrix["count"] > 0)

    def mean(values: np.ndarray) -> float:
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else float("nan")

    dl, da, cs = matrix["d_loss"], matrix["d_acc"], matrix["cosine"]
    observed_off = dl[off]
    observed_off = observed_off[~np.isnan(observed_off)]
    out = {
        "steps": int(np.trace(matrix["count"])),
        "pairs_observed": int(off.sum()),
        "self_d_loss": mean(dl[diag]), "other_d_loss": mean(dl[off]),
        "self_d_acc": mean(da[diag]), "other_d_acc": mean(da[off]),
        "self_cosine": mean(cs[diag]), "other_cosine": mean(cs[off]),
        "other_hurt_fraction": float((observed_off > 0).mean()) if observed_off.size else float("nan"),
    }
    if space is not None:
        shared = shared_choices(space, n).astype(float)
        out["corr_cosine_shared"] = _corr(shared[off], cs[off])
        out["corr_d_loss_shared"] = _corr(shared[off], dl[off])
        levels = sorted({int(s) for s in shared[off]})
        out["cosine_by_shared"] = {s: mean(cs[off & (shared == s)]) for s in levels}
        out["d_loss_by_shared"] = {s: mean(dl[off & (shared == s)]) for s in levels}
    return out


# ---------------------------------------------------------------------------------------- driver

#: Default budgets: digits is sized to take about 2 minutes on a 2-core CPU (docs/interference.md).
INTERFERENCE_DEFAULTS: dict[str, dict] = {
    "digits": {"train": TrainConfig(epochs=8, batch_size=64), "probe_size": 64},
    "cifar10": {"train": SUPERNET_DEFAULTS["cifar10"], "probe_size": 256},
}


def interference_defaults(dataset: str) -> dict:
    """The default budget of an interference run on ``dataset``: ``{"train": TrainConfig,
    "probe_size": int}`` (any dataset without its own entry gets cifar10's)."""
    return INTERFERENCE_DEFAULTS.get(dataset, INTERFERENCE_DEFAULTS["cifar10"])


@dataclass(frozen=True)
class InterferenceConfig:
    """Settings of an interference run (the supernet's training and evaluation, and the probe)."""

    supernet: SupernetConfig | None = None  # default: SupernetConfig()
    strategy: str = "round_robin"
    order_seed: int | None = None
    probe_size: int = 256
    probe_seed: int = 0
    start_epoch: int = 0
    grad_window: int = 64
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["supernet"] = None if self.supernet is None else self.supernet.to_dict()
        return d


def run_interference(space: Space, data: Dataset, cfg: InterferenceConfig, *, seed: int, store=None,
                     run_id: str | None = None, run_dir: str | Path, progress: bool = True,
                     tensorboard: str | Path | None = None) -> dict:
    """Train a supernet with an :class:`InterferenceProbe` and a :class:`GradVarianceMonitor`.

    The run resumes from ``run_dir``'s checkpoint when one exists (per-epoch checkpoints; rows
    of a repeated epoch are rewritten identically). With a store, the run is recorded with
    kind ``interference``, its rows in the ``interference`` table and the gradient-variance
    windows in ``run_metrics`` (names in :data:`GRAD_METRICS`). ``tensorboard``: a folder, the
    run's live curves (the trainer's, and the gradient-variance windows as they close) go to
    ``<folder>/<run_id>`` (``<folder>`` itself without a run id).

    Returns a dict: ``run_id``, ``resumed``, ``epochs``, ``summary`` (the trainer's last epoch),
    ``matrix`` (:func:`interference_matrix`), ``interference`` (:func:`summarize_interference`),
    ``grad_windows`` (the monitor's records) and ``grad_variance`` (their mean ``variance`` and
    ``relative``), ``seconds``.
    """
    from wsnas.strategies import get_strategy

    sn_cfg = cfg.supernet if cfg.supernet is not None else SupernetConfig()
    inner = get_strategy(cfg.strategy, order_seed=cfg.order_seed, **cfg.options)
    if store is not None and run_id is None:
        raise WsnasError("an interference run with a store needs a run id")
    probe = InterferenceProbe(inner, data.train, probe_size=cfg.probe_size, probe_seed=cfg.probe_seed,
                              start_epoch=cfg.start_epoch, store=store, run_id=run_id)
    trainer = SupernetTrainer(space, data, probe, sn_cfg, seed=seed, run_dir=run_dir, store=store,
                              run_id=run_id, progress=progress)
    monitor = GradVarianceMonitor(trainer.supernet.parameters(), cfg.grad_window)
    probe.attach_monitor(monitor)
    start = time.perf_counter()
    folder = None if tensorboard is None else Path(tensorboard) / (run_id or "")
    with tensorboard_monitor(folder) as live:

        def on_step(step: int, result) -> None:
            window = monitor.update()
            if window is not None:
                live.on_metrics("gradient", {name: window[k] for k, name in GRAD_METRICS.items()}, step)

        if store is not None:
            summary, resumed = train_run(store, run_id, "interference", trainer, seed=seed, on_step=on_step,
                                         monitor=live)
        else:
            resumed = trainer.try_resume()
            summary = trainer.train(on_step=on_step, monitor=live)
    seconds = time.perf_counter() - start
    if store is not None:
        rows = store.interference(run_id)
    else:
        rows = probe.rows
    matrix = interference_matrix(rows, len(space))
    windows = list(monitor.windows)
    return {
        "run_id": run_id, "resumed": resumed, "epochs": trainer.epoch, "summary": summary,
        "matrix": matrix, "interference": summarize_interference(matrix, space),
        "grad_windows": windows,
        "grad_variance": {
            "windows": len(windows),
            "variance": float(np.mean([w["variance"] for w in windows])) if windows else float("nan"),
            "relative": float(np.mean([w["relative"] for w in windows])) if windows else float("nan"),
        },
        "seconds": seconds,
    }


def interference_study(space: Space, data: Dataset, cfg: InterferenceConfig, *, seed: int, run_id: str,
                       run_dir: str | Path, store=None, progress: bool = True,
                       tensorboard: str | Path | None = None) -> dict:
    """``wsnas interference``: :func:`run_interference`, then the matrix written into ``run_dir``.

    Writes ``run_dir/interference.png`` (the d_loss and cosine heat maps,
    :func:`wsnas.report.interference.interference_figure`, titled
    ``"<run_id>: <space> on <dataset>"``) and ``run_dir/interference.csv``
    (:func:`write_matrix_csv`, with the number of choices each pair makes alike).

    Returns :func:`run_interference`'s dict plus ``figure`` and ``matrix_csv`` (the two paths)
    and ``probe_images`` (the images in the probe batch: ``cfg.probe_size``, or the whole train
    split if it has fewer).
    """
    from wsnas.report.interference import interference_figure  # matplotlib: imported only here

    run_dir = Path(run_dir)
    result = run_interference(space, data, cfg, seed=seed, store=store, run_id=run_id, run_dir=run_dir,
                              progress=progress, tensorboard=tensorboard)
    matrix = result["matrix"]
    names = space.arch_names()
    png = interference_figure(matrix, run_dir / "interference.png", names=names,
                              title=f"{run_id}: {space.name} on {data.name}")
    csv_path = write_matrix_csv(matrix, names, run_dir / "interference.csv", shared=shared_choices(space))
    return {**result, "figure": png, "matrix_csv": csv_path,
            "probe_images": cfg.probe_size if cfg.probe_size <= len(data.train) else len(data.train)}


def write_matrix_csv(matrix: dict, names, path: str | Path, *, shared=None) -> Path:
    """One line per (trained, measured) pair: indices, names, count and the mean values.

    ``matrix`` is :func:`interference_matrix`'s, ``names`` the children's names in index order;
    with ``shared`` (:func:`shared_choices`) a last column ``shared_choices``. Unobserved values
    are empty cells, the others ``repr`` of the float. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = matrix["count"].shape[0]
    with atomic_write(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        header = ["trained_index", "trained_arch", "other_index", "other_arch", "count", "d_loss", "d_acc",
                  "cosine"]
        w.writerow(header + (["shared_choices"] if shared is not None else []))
        for i in range(n):
            for j in range(n):
                values = ["" if math.isnan(matrix[k][i, j]) else repr(float(matrix[k][i, j]))
                          for k in ("d_loss", "d_acc", "cosine")]
                extra = [int(shared[i, j])] if shared is not None else []
                w.writerow([i, names[i], j, names[j], int(matrix["count"][i, j]), *values, *extra])
    return path
