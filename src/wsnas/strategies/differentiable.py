"""Differentiable search strategies: DARTS (first and second order) and GDAS, each with either
architecture parametrisation (``--param softmax|gaea``), bilevel or single-level (algorithms.md 3).

Every step alternates an architecture step and a weight step:

* the architecture step uses an *architecture batch* the trainer supplies: from the held-out
  half of the training split (bilevel, DARTS's protocol) or from a reshuffled pass over the
  whole training split (single-level / ERM, GAEA's);
* the weight step trains the supernet's weights on the weight batch with SGD (the trainer's
  optimiser), the mixing weights held fixed.

The trainer reads the protocol from the strategy's hooks (:mod:`wsnas.strategies.base`):
``arch_data`` (``"bilevel"``, ``"single"``, or None with a fixed alpha), ``arch_split`` and
``supernet_options()`` (PC-DARTS's partial channels); ``differentiable = True`` makes them the
strategies of ``wsnas search`` (:func:`wsnas.strategies.strategy_names`).

DARTS: mixed op = sum_o w_o * o(x) with ``w`` the architecture weights of the edge. First order
(``order=1``) takes the gradient of the architecture loss at the current weights; second order
(``order=2``) at the weights after one unrolled SGD step (momentum and weight decay included, as
the authors' code), with the Hessian-vector product by central finite differences. Architecture
step first, then the weight step.

PC-DARTS: DARTS on a supernet whose mixed ops see 1/K of the channels (K = 4), with edge weights
normalised over each node's incoming edges (GAEA updates them on their simplex too).

GDAS (Dong & Yang, CVPR 2019; reference code D-X-Y/AutoDL-Projects, xautodl's
``search_model_gdas.py`` and ``search_cells.py`` ``forward_gdas``): every edge draws a hard
Gumbel-softmax sample from its logits at temperature ``tau``; only the sampled op runs, scaled by
its straight-through weight ``h = hard - p.detach() + p``, and the other ops' straight-through
weights (0 in value) are added to the edge's output as the reference ``forward_gdas`` does, so
every op's logit gets the gradient of its own weight. Weight step first, then the architecture
step (xautodl's order). Defaults and their sources:

* ``tau_max`` 10, ``tau_min`` 0.1, linear over the run's E epochs after the warm-up:
  ``tau = tau_max - (tau_max - tau_min) * max(e - warmup_epochs, 0) / (E - 1)`` (gaea_release
  ``cnn/architect/architect_egdas.py`` ``set_tau``; xautodl the same without warm-up). With a
  warm-up the last epoch's tau stays above ``tau_min``, as in the authors' runs;
* ``warmup_epochs`` 0: the architecture frozen (no architecture step, tau at ``tau_max``) for the
  first epochs. The authors' GAEA-GDAS configurations (gaea_release
  ``configs/cnn/search_method/egdas/method_egdas_space_{nasbench201,darts}.yaml``) use 50; 0
  here because wsnas's searches are short (``wsnas search --warmup-epochs``);
* with ``--param gaea`` (GAEA-GDAS, liamcli/gaea_release ``cnn/architect/architect_egdas.py``):
  logits log(theta), exponentiated-gradient step 0.01 (``arch_learning_rate``), the architecture
  step first (as wsnas's other GAEA strategies), and ``kl_weight`` 0.01 (the config's
  ``arch_weight_decay``, which ``architect_egdas`` uses as this term's weight): the architecture
  loss gains
  ``kl_weight * sum_e KL(theta_e || uniform) = kl_weight * sum_e sum_o theta_eo log(theta_eo * n_e)``
  over every edge (both cell types in the DARTS space), with ``n_e`` the ops the edge allows
  (excluded ops add nothing). It pulls theta towards uniform. ``kl_weight`` is 0 with softmax
  (xautodl's GDAS has no such term) and set by ``wsnas search --kl-weight``.

Warm-up (``warmup_epochs``, every strategy): the architecture is frozen for the first N epochs;
the weight steps run as usual and the trainer still draws an architecture batch every step, as
PC-DARTS's loop does (``if epoch>=15: architect.step(...)``, yuhuixu1993/PC-DARTS
train_search.py). A warm-up that covers the whole run is refused (the architecture would never
be updated).

Recipes (:data:`RECIPES`, :meth:`_Differentiable.recipe`): each strategy and parametrisation
declares the training settings its authors published, and ``wsnas search`` applies them wherever
no flag is given (``wsnas search --help`` prints the result). The weight optimiser of the DARTS
family is the dataset's search default (:data:`wsnas.selection.search.SEARCH_DEFAULTS`: batch 64,
SGD 0.025 cosine to 0.001, as quark0/darts cnn/train_search.py); a recipe names what differs:

* PC-DARTS (yuhuixu1993/PC-DARTS train_search.py, checked at its last commit): weight batch
  256, SGD lr 0.1 cosine to 0 (``learning_rate_min`` 0.0), architecture Adam lr 6e-4 (betas
  (0.5, 0.999), weight decay 1e-3, architect.py: the DARTS Adam with its own step size), 15
  warm-up epochs; 50 epochs, as the CIFAR-10 search default.
* GAEA PC-DARTS (liamcli/gaea_release configs/cnn/mode/search_pcdarts.yaml with
  search_method/eedarts/method_eedarts_space_pcdarts.yaml): batch 256, lr 0.1 cosine to 0,
  exponentiated gradient 0.1 on the op and edge weights, no warm-up.
* GAEA DARTS (configs/cnn/mode/search_nasbench201.yaml with
  search_method/edarts/method_edarts_space_nasbench201.yaml): the DARTS weight optimiser and
  exponentiated gradient 0.1. The NB201 run's 25 epochs of a 50-epoch schedule are the
  ``gaea-nb201`` preset (:data:`wsnas.selection.search.PRESETS`), not a default.
* GDAS and GAEA GDAS keep the DARTS weight optimiser; what their authors set otherwise is in the
  recipe's ``note`` (not applied here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.nn.choice import Sampled
from wsnas.strategies.archparams import ArchParams, check_param, optimizer_settings
from wsnas.strategies.base import Recipe, StepResult, Strategy, StrategyContext

ARCH_DATA = ("bilevel", "single")
# bilevel: the architecture batches come from the second half of the training split (DARTS) or
# from the validation split (NB201's protocol: weights on its 25k train half, architecture on the
# 25k valid half; load cifar10 with valid_size=25000)
ARCH_SPLITS = ("half", "valid")
# GAEA-GDAS (liamcli/gaea_release, configs/cnn/search_method/egdas/method_egdas_space_nasbench201.yaml):
# exponentiated-gradient step size (arch_learning_rate) and the weight of the KL-to-uniform
# regulariser of cnn/architect/architect_egdas.py (arch_weight_decay)
GAEA_GDAS_ETA = 0.01
GAEA_GDAS_KL_WEIGHT = 0.01

# The authors' recipes, per strategy and parametrisation (see the module docstring). ``train``
# names TrainConfig fields, ``options`` constructor options; the rest are the defaults.
_PCDARTS_WEIGHTS = {"batch_size": 256, "lr": 0.1, "lr_min": 0.0}
RECIPES: dict[str, dict[str, Recipe]] = {
    "darts": {
        "softmax": Recipe(source="quark0/darts cnn/train_search.py"),
        "gaea": Recipe(source="liamcli/gaea_release configs/cnn (mode/search_nasbench201.yaml, "
                              "search_method/edarts)"),
    },
    "gdas": {
        "softmax": Recipe(source="quark0/darts cnn/train_search.py (the DARTS recipe)",
                          note="240 epochs, weight decay 5e-4, Nesterov momentum (the GDAS authors' NB201 run: "
                               "D-X-Y/AutoDL-Projects configs/nas-benchmark/algos/GDAS.config)"),
        "gaea": Recipe(source="liamcli/gaea_release configs/cnn/search_method/egdas (arch lr 0.01)",
                       note="a 50-epoch warm-up (warmup_epochs: 50 in method_egdas_space_nasbench201.yaml; "
                            "--warmup-epochs 50)"),
    },
    "pcdarts": {
        "softmax": Recipe(source="yuhuixu1993/PC-DARTS train_search.py", train=_PCDARTS_WEIGHTS,
                          options={"arch_lr": 6e-4, "warmup_epochs": 15}),
        "gaea": Recipe(source="liamcli/gaea_release configs/cnn (mode/search_pcdarts.yaml, search_method/eedarts)",
                       train=_PCDARTS_WEIGHTS),
    },
}


def _check_warmup(epochs) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise WsnasError(f"the warm-up must be a non-negative number of epochs, got {epochs!r}")


class _Differentiable(Strategy):
    """Shared parts: the architecture parameters, their optimiser, the two-split protocol."""

    differentiable = True
    weight_first = False

    def __init__(self, param: str = "softmax", *, single_level: bool = False, exclude=(),
                 arch_lr: float | None = None, edge_weights: bool = False, fixed_alpha: bool = False,
                 arch_split: str = "half", warmup_epochs: int = 0) -> None:
        check_param(param)
        _check_warmup(warmup_epochs)
        self.warmup_epochs = warmup_epochs  # epochs without architecture updates at the start
        self.param = param
        self.single_level = single_level
        self.exclude = tuple(exclude)
        self.arch_lr = arch_lr
        self.edge_weights = edge_weights
        if arch_split not in ARCH_SPLITS:
            raise WsnasError(f"unknown architecture split {arch_split!r}; accepted: {', '.join(ARCH_SPLITS)}")
        self.arch_split = arch_split
        self.fixed_alpha = fixed_alpha
        self.arch_data = None if fixed_alpha else ("single" if single_level else "bilevel")

    @classmethod
    def recipe(cls, param: str = "softmax") -> Recipe:
        """The training recipe of this strategy's authors with parametrisation ``param`` (:data:`RECIPES`)."""
        check_param(param)
        return RECIPES[cls.name][param]

    def arch_optimizer_settings(self) -> dict:
        """The architecture optimiser this strategy builds (name and hyper-parameters)."""
        return optimizer_settings(self.param, self.arch_lr)

    def describe(self) -> dict:
        return {"strategy": self.name, "param": self.param, "single_level": self.single_level,
                "exclude": list(self.exclude), "arch_lr": self.arch_lr, "edge_weights": self.edge_weights,
                "fixed_alpha": self.fixed_alpha,
                **({"arch_split": self.arch_split} if self.arch_split != "half" else {}),
                **({"warmup_epochs": self.warmup_epochs} if self.warmup_epochs else {})}

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        total = ctx.total_epochs
        if not self.fixed_alpha and self.warmup_epochs and total is not None and self.warmup_epochs >= total:
            raise WsnasError(f"a warm-up of {self.warmup_epochs} epochs covers the whole {total}-epoch search, so the "
                             f"architecture would never be updated; accepted: --warmup-epochs below --epochs "
                             f"(0: no warm-up)")
        self.relaxation = ctx.space.relaxation()
        device = next(ctx.supernet.parameters()).device
        self.arch = ArchParams.for_relaxation(self.relaxation, param=self.param, exclude=self.exclude,
                                              edge_weights=self.edge_weights, seed=ctx.seed).to(device)
        if self.fixed_alpha:  # uniform mixing, never updated
            with torch.no_grad():
                self.arch.alpha.copy_(torch.zeros_like(self.arch.alpha) if self.param == "softmax"
                                      else self.arch.mask / self.arch.mask.sum(1, keepdim=True))
        self.arch_optimizer = self.arch.make_optimizer(lr=self.arch_lr)
        self.epoch = 0
        self.frozen = self.fixed_alpha  # the architecture is not updated
        self.decided: dict[int, int | None] = {}

    # ------------------------------------------------------------------ paths
    def mixed_path(self, weights: torch.Tensor, *, mask: tuple[int, int] | None = None,
                   drop_edge: int | None = None) -> object:
        """The supernet path that mixes every op of every edge with ``weights`` (edges x ops).

        Decided edges (:meth:`decide`) run their op alone (one-hot) and removed edges not at
        all; ``mask=(edge, op)`` zeroes one op's weight (the others left unnormalised) and
        ``drop_edge`` removes one edge, as perturbation-based selection measures.
        """
        beta = self.arch.edge_weights()
        if beta is not None:
            weights = weights * beta[:, None]
        specs: list = list(weights.unbind(0))
        for e, op in self.decided.items():
            specs[e] = None if op is None else F.one_hot(torch.tensor(op), weights.shape[1]).to(weights)
        if mask is not None:
            e, op = mask
            keep = torch.ones(weights.shape[1], device=weights.device)
            keep[op] = 0.0
            specs[e] = specs[e] * keep
        if drop_edge is not None:
            specs[drop_edge] = None
        return self.relaxation.path(specs)

    def decide(self, edge: int, op: int | None) -> None:
        """Fix ``edge`` to one op (one-hot from now on), or remove it (``None``)."""
        self.decided[edge] = op

    def _loss(self, path, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.supernet(x, path)
        return F.cross_entropy(logits, y), logits

    def _weight_step(self, path, x, y) -> StepResult:
        loss, logits = self._loss(path, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.supernet.parameters(), self.grad_clip)
        self.optimizer.step()
        return StepResult(loss=loss.detach(), correct=(logits.detach().argmax(1) == y).sum(), count=len(y))

    def _arch_grads(self, loss: torch.Tensor) -> None:
        params = [p for p in self.arch.parameters()]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g

    def step(self, x: torch.Tensor, y: torch.Tensor, valid_batch=None, *,
             indices: torch.Tensor | None = None) -> StepResult:
        if self.replica is not None:
            raise WsnasError(f"{self.name} does not run data-parallel yet; train it in one process")
        update = self.updates_architecture
        if valid_batch is None and update:
            raise ValueError(f"{self.name} needs an architecture batch every step")
        if self.weight_first:
            result = self._weight_step(self.weight_path(), x, y)
            if update:
                self.arch_step(*valid_batch, x, y)
            return result
        if update:
            self.arch_step(*valid_batch, x, y)
        return self._weight_step(self.weight_path(), x, y)

    @property
    def updates_architecture(self) -> bool:
        """Whether a step updates the architecture now: not frozen, and past the warm-up."""
        return not self.frozen and self.epoch >= self.warmup_epochs

    def end_epoch(self, epoch: int) -> None:
        self.epoch = epoch + 1

    def epoch_metrics(self) -> dict:
        """Diagnostics stored after every epoch: ``entropy``, the mean entropy of the edges' op
        distributions, and ``entropy/<edge>`` each edge's; ``param_free_ops`` and ``argmax_index``,
        of the architecture magnitude selection picks now."""
        arch = self.selected()
        rows = self.relaxation.arch_rows(arch)
        free = {"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "skip"}
        options = self.relaxation.options
        param_free = sum(1 for r in rows if r is not None and options[r] in free)
        per_edge = self.arch.edge_entropy()
        out = {"entropy": float(per_edge.mean()),
               **{f"entropy/{edge.name}": float(h) for edge, h in zip(self.relaxation.edges, per_edge)},
               "param_free_ops": float(param_free)}
        if len(self.space) <= 10**7:
            out["argmax_index"] = float(self.space.index(arch))
        return out

    def selected(self):
        """Magnitude selection of the current weights."""
        return self.relaxation.discretize(self.arch.selection_weights(), exclude=self.exclude)

    @property
    def holdout(self) -> str | None:
        """A fixed alpha takes no architecture batches, yet its weights train on the split a learned
        alpha's would (bilevel: the first half), so PT scores on data the weights never saw, as in
        the authors' fixed-alpha run (darts-pt exp_scripts/blank-201.sh: train_search.py, whose
        weights always train on the first half, with the architecture step a no-op)."""
        return ("single" if self.single_level else "bilevel") if self.fixed_alpha else None

    def state_dict(self) -> dict:
        return {"arch": self.arch.state_dict(), "arch_optimizer": self.arch_optimizer.state_dict(),
                "epoch": self.epoch, "frozen": self.frozen,
                "decided": [[e, -1 if op is None else op] for e, op in sorted(self.decided.items())]}

    def load_state_dict(self, state: dict) -> None:
        self.arch.load_state_dict(state["arch"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.epoch = int(state["epoch"])
        self.frozen = bool(state["frozen"])
        self.decided = {int(e): (None if int(op) < 0 else int(op)) for e, op in state.get("decided", [])}


class DartsStrategy(_Differentiable):
    """DARTS (first or second order); ``--param gaea`` gives GAEA-DARTS."""

    name = "darts"

    def __init__(self, param: str = "softmax", *, order: int = 1, **kw) -> None:
        super().__init__(param, **kw)
        if order not in (1, 2):
            raise WsnasError(f"DARTS order must be 1 or 2, got {order}")
        if order == 2 and param == "gaea":
            raise WsnasError("GAEA updates the architecture first order only; use order 1 with --param gaea")
        self.order = order

    def describe(self) -> dict:
        return {**super().describe(), "order": self.order}

    def weight_path(self):
        return self.mixed_path(self.arch.weights().detach())

    def arch_step(self, xv, yv, x, y) -> None:
        self.arch_optimizer.zero_grad(set_to_none=True)
        if self.order == 1:
            loss, _ = self._loss(self.mixed_path(self.arch.weights()), xv, yv)
            self._arch_grads(loss)
        else:
            self._unrolled_grads(xv, yv, x, y)
        self.arch_optimizer.step()

    def _unrolled_grads(self, xv, yv, x, y) -> None:
        """Second-order DARTS: grad_a L_val(w', a) - xi * H grad, with w' one SGD step ahead."""
        weights = [p for p in self.supernet.parameters()]
        buffers = [b.detach().clone() for b in self.supernet.buffers()]  # the extra passes leave no trace
        group = self.optimizer.param_groups[0]
        xi, mom, wd = group["lr"], group.get("momentum", 0.0), group.get("weight_decay", 0.0)
        loss, _ = self._loss(self.mixed_path(self.arch.weights().detach()), x, y)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        backup = [w.detach().clone() for w in weights]
        with torch.no_grad():
            for w, g in zip(weights, grads):
                buf = self.optimizer.state.get(w, {}).get("momentum_buffer")
                step = (torch.zeros_like(w) if g is None else g) + wd * w
                if buf is not None:
                    step = step + mom * buf
                w.sub_(xi * step)
        loss_v, _ = self._loss(self.mixed_path(self.arch.weights()), xv, yv)
        arch_params = list(self.arch.parameters())
        out = torch.autograd.grad(loss_v, arch_params + weights, allow_unused=True)
        d_arch, d_w = out[: len(arch_params)], out[len(arch_params):]
        with torch.no_grad():
            for w, b in zip(weights, backup):
                w.copy_(b)
        vec = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, d_w)]
        norm = torch.sqrt(sum((v * v).sum() for v in vec))
        eps = 0.01 / (float(norm) + 1e-12)
        hessian = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for w, v in zip(weights, vec):
                    w.add_(sign * eps * v)
            loss_t, _ = self._loss(self.mixed_path(self.arch.weights()), x, y)
            hessian.append(torch.autograd.grad(loss_t, arch_params, allow_unused=True))
            with torch.no_grad():
                for w, b in zip(weights, backup):
                    w.copy_(b)
        with torch.no_grad():
            for buf, saved in zip(self.supernet.buffers(), buffers):
                buf.copy_(saved)
        for p, g, hp, hm in zip(arch_params, d_arch, *hessian):
            if g is None:
                p.grad = None
                continue
            p.grad = g - xi * ((hp - hm) / (2 * eps) if hp is not None else 0.0)


class PcDartsStrategy(DartsStrategy):
    """PC-DARTS: partial channels (1/K through the mixed op, channel shuffle) and edge weights
    normalised over each node's inputs; selection ranks op weights times edge weights."""

    name = "pcdarts"

    def __init__(self, param: str = "softmax", *, k: int = 4, **kw) -> None:
        kw.setdefault("edge_weights", True)
        super().__init__(param, **kw)
        if k < 1:
            raise WsnasError(f"PC-DARTS partial channels K must be at least 1, got {k}")
        self.k = k

    def supernet_options(self) -> dict:
        """The search network's mixed ops see 1/K of the channels."""
        return {"partial_channels": self.k}

    def describe(self) -> dict:
        return {**super().describe(), "k": self.k}


class GdasStrategy(_Differentiable):
    """GDAS: one hard Gumbel sample per edge, only the sampled op computed; the straight-through
    weights of every op, sampled or not, carry the architecture gradient."""

    name = "gdas"

    def __init__(self, param: str = "softmax", *, tau_max: float = 10.0, tau_min: float = 0.1,
                 kl_weight: float | None = None, warmup_epochs: int = 0, arch_lr: float | None = None,
                 **kw) -> None:
        if param == "gaea" and arch_lr is None:
            arch_lr = GAEA_GDAS_ETA
        super().__init__(param, arch_lr=arch_lr, warmup_epochs=warmup_epochs, **kw)
        if not 0 < tau_min <= tau_max:
            raise WsnasError(f"GDAS temperatures must satisfy 0 < tau_min <= tau_max, got {tau_min}, {tau_max}")
        self.tau_max, self.tau_min = tau_max, tau_min
        if kl_weight is None:
            kl_weight = GAEA_GDAS_KL_WEIGHT if param == "gaea" else 0.0
        if not kl_weight >= 0:
            raise WsnasError(f"GDAS KL weight must be >= 0 (0 turns the regulariser off), got {kl_weight}")
        self.kl_weight = float(kl_weight)
        self.weight_first = param == "softmax"

    def describe(self) -> dict:
        return {**super().describe(), "tau_max": self.tau_max, "tau_min": self.tau_min,
                "kl_weight": self.kl_weight, "warmup_epochs": self.warmup_epochs}

    def setup(self, ctx: StrategyContext) -> None:
        super().setup(ctx)
        self.gen = torch.Generator(device="cpu").manual_seed(ctx.seed + 7)

    @property
    def tau(self) -> float:
        """Temperature of this epoch, the authors' schedule (gaea_release ``architect_egdas.set_tau``;
        xautodl's GDAS is the case without warm-up):
        ``tau_max - (tau_max - tau_min) * max(epoch - warmup_epochs, 0) / (E - 1)`` with E the run's
        ``total_epochs``. The denominator ignores the warm-up, so with one the last epoch's
        temperature stays above ``tau_min``, as in the authors' runs."""
        denom = max(1, (self.ctx.total_epochs or 1) - 1)
        t = min(1.0, max(0, self.epoch - self.warmup_epochs) / denom)  # the clamp only guards E unset
        return self.tau_max - (self.tau_max - self.tau_min) * t

    def _sample(self, with_grad: bool):
        logits = self.arch.logits()
        u = torch.rand(logits.shape, generator=self.gen).clamp_(1e-10, 1 - 1e-10).to(logits.device)
        gumbel = -torch.log(-torch.log(u))
        probs = torch.softmax((logits + gumbel) / self.tau, dim=-1)
        index = probs.argmax(-1)
        hard = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
        beta = self.arch.edge_weights()
        scale = beta if beta is not None else torch.ones(len(index), device=logits.device)
        if not with_grad:
            specs = [Sampled(int(i), hard[e, i] * scale[e]) for e, i in enumerate(index.tolist())]
        else:
            # straight-through: the sampled op's weight is 1 in value, the others' 0, and all carry
            # the gradient of probs; the others' weights are added to the edge's output (xautodl's
            # and gaea_release's forward_gdas), so every op's logit gets the gradient of its own
            # weight, not only through the sampled op's probability
            weights = hard - probs.detach() + probs
            others = (weights * (1 - hard)).sum(-1)  # exactly 0: each term is 0 - p + p
            specs = [Sampled(int(i), weights[e, i] * scale[e], others[e] * scale[e])
                     for e, i in enumerate(index.tolist())]
        for e, op in self.decided.items():
            specs[e] = None if op is None else Sampled(op, torch.ones((), device=logits.device))
        return self.relaxation.path(specs)

    def weight_path(self):
        with torch.no_grad():
            return self._sample(with_grad=False)

    def arch_step(self, xv, yv, x, y) -> None:
        self.arch_optimizer.zero_grad(set_to_none=True)
        loss, _ = self._loss(self._sample(with_grad=True), xv, yv)
        if self.kl_weight:
            loss = loss + self.kl_weight * self.kl_to_uniform()
        self._arch_grads(loss)
        self.arch_optimizer.step()

    def kl_to_uniform(self) -> torch.Tensor:
        """GAEA-GDAS's regulariser: sum over every edge of KL(theta_e || uniform), differentiable.

        ``sum_e sum_o theta_eo * log(theta_eo / u_e)`` with ``u_e`` one over the number of ops the
        edge allows; excluded ops (theta 0) add nothing (0 log 0 = 0). Its gradient
        ``log(theta / u) + 1`` pulls every edge towards uniform (authors' ``architect_egdas``).
        """
        theta = self.arch.weights()
        allowed = self.arch.mask > 0
        n = allowed.sum(-1, keepdim=True).to(theta.dtype)
        # log of 1 on the excluded entries, so that neither the value nor the gradient sees log(0)
        ratio = torch.where(allowed, theta.clamp_min(1e-30) * n, torch.ones_like(theta))
        return (torch.where(allowed, theta, torch.zeros_like(theta)) * torch.log(ratio)).sum()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.gen.set_state(state["gen"].cpu())


__all__ = ["ARCH_DATA", "RECIPES", "DartsStrategy", "GdasStrategy", "PcDartsStrategy"]
