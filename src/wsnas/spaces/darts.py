"""The DARTS space (Liu et al., ICLR 2019): genotypes, the search network and the evaluation network.

A cell has two inputs (states 0 and 1: the outputs of the two previous cells after
preprocessing) and 4 intermediate nodes (states 2..5). Node ``j`` (0..3, state ``j + 2``)
picks two distinct earlier states among ``0..j+1`` and one op for each of them, out of

    none, max_pool_3x3, avg_pool_3x3, skip_connect, sep_conv_3x3, sep_conv_5x5,
    dil_conv_3x3, dil_conv_5x5

and sums the two results. The cell output concatenates the 4 nodes. There are two cell types
(``normal`` and ``reduce``); a reduction cell applies stride 2 to the ops reading states 0, 1.

Names. An architecture is a genotype, written in the official text format::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...8 pairs], normal_concat=[2, 3, 4, 5],
             reduce=[...8 pairs], reduce_concat=[2, 3, 4, 5])

:func:`parse_genotype` also reads ``range(2, 6)`` for the concat and the nested per-node form
``normal=[[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], ...4 nodes]``. In the space a node is
three independent choices: its pair of inputs (``"0,1"``, ``"0,2"``, ...) and the op on the
lower- and on the higher-numbered input. The canonical string therefore lists the two pairs
of a node with the lower input first; a published genotype that lists them the other way
round (DARTS_V2's node 2 does) parses to the same architecture and the same network.

Networks. ``build_network`` is the official evaluation network (``NetworkCIFAR``: C=36,
20 cells, auxiliary head, drop-path, affine batch norm). ``build_supernet`` is the official
search network (``Network`` of ``model_search``: C=16, 8 cells, 14 mixed edges per cell,
batch norm without affine parameters, pooling followed by batch norm). Training recipes
(600 epochs, cutout, auxiliary weight 0.4, drop-path schedule) are left to the runner.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from wsnas.core.errors import WsnasError
from wsnas.nn.choice import ChoiceBlock, Spec
from wsnas.nn.ops import DARTS_OPS, AvgPool3x3, BNConfig, FactorizedReduce, Identity, MaxPool3x3, ReLUConvBN, make_op
from wsnas.spaces.base import Arch, Choice, Space
from wsnas.spaces.relax import Edge, Relaxation

OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
       "dil_conv_3x3", "dil_conv_5x5")
NODES = 4
CELL_TYPES = ("normal", "reduce")
CONCAT = (2, 3, 4, 5)
# the 14 edges of a cell in the official order: node j reads states 0..j+1
EDGES: tuple[tuple[int, int], ...] = tuple((i, j + 2) for j in range(NODES) for i in range(j + 2))
PAIRS: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple(itertools.combinations(range(j + 2), 2)) for j in range(NODES)
)


# ---------------------------------------------------------------------------------- genotypes
@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype: 8 ``(op, input)`` pairs per cell type, two per node, and the concat."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]

    def __str__(self) -> str:
        return format_genotype(self)


_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


def _literal(node: ast.expr, field: str):
    """The value of an argument: a literal, or ``range(a, b)`` / ``list(range(a, b))``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id == "list" and len(node.args) == 1:
            return list(_literal(node.args[0], field))
        if node.func.id == "range" and 1 <= len(node.args) <= 3:
            args = [_literal(a, field) for a in node.args]
            if all(isinstance(a, int) and not isinstance(a, bool) for a in args):
                return list(range(*args))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise WsnasError(
            f"genotype field {field} is not a literal list: {ast.unparse(node)!r}"
        ) from None


def _check_pairs(field: str, value) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, (list, tuple)):
        raise WsnasError(f"genotype field {field} must be a list of (op, input) pairs, got {value!r}")
    items = list(value)
    # nested form: one list of two pairs per node
    if items and all(isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)) for v in items):
        if len(items) != NODES:
            raise WsnasError(f"genotype field {field} has {len(items)} nodes; expected {NODES} (2 pairs each)")
        flat = []
        for j, node in enumerate(items):
            if len(node) != 2:
                raise WsnasError(f"genotype field {field} node {j} has {len(node)} pairs; expected 2")
            flat.extend(node)
        items = flat
    if len(items) != 2 * NODES:
        raise WsnasError(
            f"genotype field {field} has {len(items)} (op, input) pairs; "
            f"expected {2 * NODES} (2 per node, {NODES} nodes)"
        )
    pairs = []
    for k, pair in enumerate(items):
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[0], str)
                or not isinstance(pair[1], int) or isinstance(pair[1], bool)):
            raise WsnasError(f"genotype field {field} pair {k} is not an (op name, input index) pair: {pair!r}")
        op, inp = pair
        if op not in OPS:
            raise WsnasError(f"unknown op {op!r} in genotype field {field}; accepted: {', '.join(OPS)}")
        j = k // 2
        if not 0 <= inp <= j + 1:
            raise WsnasError(
                f"genotype field {field}: input {inp} out of range for node {j}; accepted: 0..{j + 1}"
            )
        pairs.append((op, inp))
    for j in range(NODES):
        if pairs[2 * j][1] == pairs[2 * j + 1][1]:
            raise WsnasError(
                f"genotype field {field}: node {j} takes input {pairs[2 * j][1]} twice; a node needs two "
                f"distinct inputs among 0..{j + 1}"
            )
    return tuple(pairs)


def _check_concat(field: str, value) -> tuple[int, ...]:
    try:
        concat = tuple(value)
    except TypeError:
        raise WsnasError(f"genotype field {field} must be a list of node indices, got {value!r}") from None
    if concat != CONCAT:
        raise WsnasError(f"genotype field {field} is {list(concat)}; accepted: [2, 3, 4, 5] (or range(2, 6))")
    return concat


def make_genotype(normal, reduce, normal_concat=CONCAT, reduce_concat=CONCAT) -> Genotype:
    """A validated :class:`Genotype` from Python values (flat or nested pair lists)."""
    return Genotype(
        normal=_check_pairs("normal", normal), normal_concat=_check_concat("normal_concat", normal_concat),
        reduce=_check_pairs("reduce", reduce), reduce_concat=_check_concat("reduce_concat", reduce_concat),
    )


def parse_genotype(text: str) -> Genotype:
    """Parse the official text ``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])``.

    Only literals (and ``range``) are read; nothing is evaluated.
    """
    raw = " ".join(str(text).split())
    short = raw if len(raw) <= 80 else raw[:77] + "..."
    try:
        tree = ast.parse(raw, mode="eval")
    except SyntaxError:
        raise WsnasError(
            f"malformed genotype {short!r}; expected Genotype(normal=[(op, input), ...], normal_concat=[2, 3, 4, 5], "
            f"reduce=[...], reduce_concat=[2, 3, 4, 5])"
        ) from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise WsnasError(f"malformed genotype {short!r}; expected text of the form Genotype(normal=..., "
                         f"normal_concat=..., reduce=..., reduce_concat=...)")
    if len(call.args) > len(_FIELDS) or any(isinstance(a, ast.Starred) for a in call.args):
        raise WsnasError(f"malformed genotype {short!r}: too many positional arguments; accepted fields: "
                         f"{', '.join(_FIELDS)}")
    values: dict[str, ast.expr] = dict(zip(_FIELDS, call.args))
    for kw in call.keywords:
        if kw.arg not in _FIELDS:
            raise WsnasError(f"unknown genotype field {kw.arg!r}; accepted: {', '.join(_FIELDS)}")
        if kw.arg in values:
            raise WsnasError(f"genotype field {kw.arg} given twice")
        values[kw.arg] = kw.value
    missing = [f for f in ("normal", "reduce") if f not in values]
    if missing:
        raise WsnasError(f"genotype {short!r} lacks field {', '.join(missing)}; needed: normal, reduce")
    lit = {f: _literal(v, f) for f, v in values.items()}
    return make_genotype(lit["normal"], lit["reduce"], lit.get("normal_concat", CONCAT),
                         lit.get("reduce_concat", CONCAT))


def format_genotype(g: Genotype) -> str:
    """The official flat text of ``g``."""
    def pairs(ps):
        return "[" + ", ".join(f"({op!r}, {i})" for op, i in ps) + "]"

    return (f"Genotype(normal={pairs(g.normal)}, normal_concat={list(g.normal_concat)}, "
            f"reduce={pairs(g.reduce)}, reduce_concat={list(g.reduce_concat)})")


# The DARTS paper's cells, as in the official genotypes.py (first- and second-order search).
DARTS_V1 = make_genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
)
DARTS_V2 = make_genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)
DARTS = DARTS_V2


# ---------------------------------------------------------------------------------- the space
@dataclass(frozen=True)
class DartsConfig:
    """Settings of the DARTS networks (defaults: the official code)."""

    channels: int = 36          # C of the evaluation network
    layers: int = 20            # cells of the evaluation network
    auxiliary: bool = True      # auxiliary head of the evaluation network
    search_channels: int = 16   # C of the search network (supernet)
    search_layers: int = 8      # cells of the search network

    def __post_init__(self) -> None:
        for name in ("channels", "search_channels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WsnasError(f"{name} must be a positive integer, got {v!r}")
        for name in ("layers", "search_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 3:
                raise WsnasError(f"{name} must be an integer >= 3 (two reduction cells), got {v!r}")
        if not isinstance(self.auxiliary, bool):
            raise WsnasError(f"auxiliary must be true or false, got {self.auxiliary!r}")


def _choices() -> tuple[Choice, ...]:
    out = []
    for cell in CELL_TYPES:
        for j in range(NODES):
            out.append(Choice(f"{cell}.node{j}.inputs", tuple(f"{a},{b}" for a, b in PAIRS[j])))
            out.append(Choice(f"{cell}.node{j}.op_low", OPS))
            out.append(Choice(f"{cell}.node{j}.op_high", OPS))
    return tuple(out)


class DartsSpace(Space):
    """The DARTS space; an architecture is a genotype (3 choices per node and cell type)."""

    name = "darts"
    depth_options = ("layers", "search_layers")
    has_drop_path = True

    def __init__(self, **config) -> None:
        self.config = DartsConfig(**config)
        self.ops = OPS
        self.choices = _choices()

    @property
    def has_auxiliary_head(self) -> bool:
        return self.config.auxiliary

    def describe(self) -> dict:
        return {"space": self.name, **asdict(self.config)}

    # ------------------------------------------------------------------ genotype <-> arch
    def genotype(self, arch: Arch) -> Genotype:
        """The canonical genotype of ``arch`` (per node, the lower-numbered input first)."""
        self.validate(arch)
        cells = {}
        for c, cell in enumerate(CELL_TYPES):
            pairs = []
            for j in range(NODES):
                inputs, op_low, op_high = arch.ops[3 * (NODES * c + j): 3 * (NODES * c + j) + 3]
                a, b = (int(s) for s in inputs.split(","))
                pairs += [(op_low, a), (op_high, b)]
            cells[cell] = tuple(pairs)
        return Genotype(cells["normal"], CONCAT, cells["reduce"], CONCAT)

    def from_genotype(self, genotype: Genotype) -> Arch:
        ops: list[str] = []
        for cell in CELL_TYPES:
            pairs = _check_pairs(cell, getattr(genotype, cell))
            for j in range(NODES):
                (op1, i1), (op2, i2) = sorted(pairs[2 * j: 2 * j + 2], key=lambda p: p[1])
                ops += [f"{i1},{i2}", op1, op2]
        _check_concat("normal_concat", genotype.normal_concat)
        _check_concat("reduce_concat", genotype.reduce_concat)
        return self.validate(Arch(self.name, tuple(ops)))

    # ------------------------------------------------------------------ names
    def format(self, arch: Arch) -> str:
        return format_genotype(self.genotype(arch))

    def parse(self, text: str) -> Arch:
        """Parse a genotype in the official text format (flat or nested per node)."""
        return self.from_genotype(parse_genotype(text))

    def _as_genotype(self, arch: Arch | Genotype) -> Genotype:
        return arch if isinstance(arch, Genotype) else self.genotype(arch)

    def relaxation(self) -> DartsRelaxation:
        return DartsRelaxation(self)

    # ------------------------------------------------------------------ networks
    def build_network(self, arch: Arch | Genotype, *, num_classes: int = 10,
                      in_channels: int = 3) -> DartsNetwork:
        cfg = self.config
        return DartsNetwork(self._as_genotype(arch), channels=cfg.channels, layers=cfg.layers,
                            auxiliary=cfg.auxiliary, num_classes=num_classes, in_channels=in_channels)

    def check_image_size(self, image_size: int, dataset: str) -> None:
        """The auxiliary head pools the 8x8 maps of 32x32 images (two reductions): smaller ones fail."""
        if self.config.auxiliary and image_size < 32:
            raise WsnasError(f"darts networks with auxiliary=true need images of at least 32x32 (the auxiliary "
                             f"head reads their 8x8 feature maps); {dataset} has {image_size}x{image_size}; "
                             "accepted: the space option auxiliary=false, or larger images")

    def estimate_networks(self, *, num_classes: int, in_channels: int) -> list[nn.Module]:
        """The search network, and the evaluation network of the heaviest genotype (every op
        sep_conv_5x5): the two networks' options differ."""
        heaviest = [("sep_conv_5x5", 0), ("sep_conv_5x5", 1)] * NODES
        return [self.build_supernet(num_classes=num_classes, in_channels=in_channels),
                self.build_network(make_genotype(heaviest, heaviest), num_classes=num_classes,
                                   in_channels=in_channels)]

    def build_supernet(self, *, num_classes: int = 10, in_channels: int = 3,
                       partial_channels: int = 1) -> DartsSearchNetwork:
        """The search network; ``partial_channels=K`` builds PC-DARTS's mixed ops (1/K of the channels)."""
        cfg = self.config
        if partial_channels < 1 or cfg.search_channels % partial_channels:
            raise WsnasError(f"partial channels K={partial_channels} must divide the {cfg.search_channels} "
                             "search channels")
        return DartsSearchNetwork(self, channels=cfg.search_channels, layers=cfg.search_layers,
                                  num_classes=num_classes, in_channels=in_channels, partial=partial_channels)


class DartsRelaxation(Relaxation):
    """The 2 x 14 edges of the DARTS search network (normal cell first), 8 ops each.

    Selection follows DARTS: for every node keep the two incoming edges whose strongest op
    other than ``none`` is strongest, and on each the strongest op other than ``none``.
    """

    inputs_per_node = 2

    def __init__(self, space: DartsSpace) -> None:
        self.space = space
        self.edges = tuple(Edge(f"{cell}.{dst}<-{i}", OPS, node=f"{cell}.{dst}", source=i)
                           for cell in CELL_TYPES for i, dst in EDGES)

    def path(self, specs: Sequence) -> dict[str, tuple]:
        if len(specs) != len(self.edges):
            raise ValueError(f"darts has {len(self.edges)} edges, got {len(specs)} specs")
        return {"normal": tuple(specs[: len(EDGES)]), "reduce": tuple(specs[len(EDGES):])}

    def discretize(self, weights, *, exclude: Sequence[str] = ("none",), keep=None) -> Arch:
        """Magnitude selection; ``keep`` (edge indices) restricts the candidate inputs."""
        w = np.asarray(weights, dtype=float).copy()
        for op in set(exclude) | {"none"}:  # the official rule never picks none
            w[:, OPS.index(op)] = -np.inf
        cells = {}
        for c, cell in enumerate(CELL_TYPES):
            pairs = []
            for j in range(NODES):
                cand = [c * len(EDGES) + e for e, (_, dst) in enumerate(EDGES) if dst == j + 2]
                if keep is not None:
                    cand = [e for e in cand if e in keep]
                best = sorted(cand, key=lambda e: -w[e].max())[:2]
                pairs += [(OPS[int(np.argmax(w[e]))], EDGES[e - c * len(EDGES)][0]) for e in best]
            cells[cell] = pairs
        return self.space.from_genotype(make_genotype(cells["normal"], cells["reduce"]))

    def arch_rows(self, arch: Arch) -> list[int | None]:
        rows: list[int | None] = [None] * len(self.edges)
        g = self.space._as_genotype(arch)
        for c, cell in enumerate(CELL_TYPES):
            for k, (op, inp) in enumerate(getattr(g, cell)):
                rows[c * len(EDGES) + EDGES.index((inp, k // 2 + 2))] = OPS.index(op)
        return rows


def genotype_path(space: DartsSpace, genotype: Genotype | Arch) -> dict[str, tuple[Spec, ...]]:
    """A supernet path running ``genotype``: a one-hot weight vector on each chosen edge, ``None`` elsewhere."""
    g = space._as_genotype(genotype)
    if isinstance(genotype, Genotype):
        space.from_genotype(g)  # validate
    path = {}
    for cell in CELL_TYPES:
        specs: list[Spec] = [None] * len(EDGES)
        pairs = getattr(g, cell)
        for k, (op, inp) in enumerate(pairs):
            w = torch.zeros(len(OPS))
            w[OPS.index(op)] = 1.0
            specs[EDGES.index((inp, k // 2 + 2))] = w
        path[cell] = tuple(specs)
    return path


# ---------------------------------------------------------------------------------- evaluation network
def _eval_op(name: str, c: int, stride: int, bn: BNConfig) -> nn.Module:
    # the evaluation network's pooling has no batch norm (unlike the search network's mixed op)
    if name == "max_pool_3x3":
        return MaxPool3x3() if stride == 1 else nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return AvgPool3x3(stride)
    return make_op(name, c, stride, bn)


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``prob`` and scale the rest by ``1 / (1 - prob)``."""
    if prob <= 0.0:
        return x
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    """A cell of the evaluation network: 8 fixed ops, two per node."""

    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, bn: BNConfig):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c, bn) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, bn)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, bn)
        pairs = genotype.reduce if reduction else genotype.normal
        self.concat = tuple(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.indices = tuple(i for _, i in pairs)
        self.ops = nn.ModuleList(
            _eval_op(op, c, 2 if reduction and i < 2 else 1, bn) for op, i in pairs
        )
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for j in range(len(self.ops) // 2):
            hs = []
            for k in (2 * j, 2 * j + 1):
                op = self.ops[k]
                h = op(states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                hs.append(h)
            states.append(hs[0] + hs[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """The official auxiliary classifier for 8x8 feature maps."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """The DARTS evaluation network (``NetworkCIFAR``) of one genotype.

    ``forward(x)`` returns ``(logits, logits_aux)`` in training mode with the auxiliary head,
    else ``logits``. Set ``drop_path_prob`` (an attribute) each epoch; it is applied in
    training to the output of every op that is not an identity.
    """

    def __init__(self, genotype: Genotype, *, channels: int = 36, layers: int = 20, auxiliary: bool = True,
                 num_classes: int = 10, in_channels: int = 3, stem_multiplier: int = 3):
        super().__init__()
        self.genotype = genotype
        self.layers = layers
        self.auxiliary = auxiliary
        self.drop_path_prob = 0.0
        bn = BNConfig(affine=True)
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        self.aux_at = 2 * layers // 3
        cells, reduction_prev, c_aux = [], False, c_p
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = EvalCell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev, bn)
            cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == self.aux_at:
                c_aux = c_p
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor):
        logits_aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_at and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        if logits_aux is not None:
            return logits, logits_aux
        return logits


# ---------------------------------------------------------------------------------- search network
class SearchCell(nn.Module):
    """A cell of the search network: a :class:`ChoiceBlock` of all 8 ops on each of the 14 edges."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, bn: BNConfig,
                 partial: int = 1):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c, bn) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, bn)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, bn)
        # DARTS_OPS already follows pooling by batch norm (affine=False), as the official mixed op does;
        # PC-DARTS (partial > 1): ops on c / partial channels, the rest max-pooled on stride-2 edges
        self.edges = nn.ModuleList(
            ChoiceBlock(OPS, lambda name, s=(2 if reduction and i < 2 else 1): make_op(name, c // partial, s, bn,
                                                                                     DARTS_OPS),
                        partial=partial,
                        bypass=nn.MaxPool2d(2, 2) if partial > 1 and reduction and i < 2 else None)
            for i, _ in EDGES
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, specs: Sequence[Spec]) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for j in range(NODES):
            out = None
            for e, (i, dst) in enumerate(EDGES):
                if dst != j + 2 or specs[e] is None:
                    continue
                y = self.edges[e](states[i], specs[e])
                out = y if out is None else out + y
            if out is None:
                raise ValueError(f"node {j} of the cell has no edge in the path; give at least one spec")
            states.append(out)
        return torch.cat(states[-NODES:], dim=1)


class DartsSearchNetwork(nn.Module):
    """The DARTS search network (supernet).

    ``forward(x, path)``: ``path`` is a dict ``{"normal": specs, "reduce": specs}`` or a
    tuple of 28 specs (14 normal then 14 reduce), one spec per edge in the official order
    (node j reads states 0..j+1; see ``EDGES``). A spec is a weight vector of 8 (weighted sum
    over the ops), an op index (single path) or ``None`` (edge not used). An :class:`Arch`
    or :class:`Genotype` runs that discrete cell through :func:`genotype_path`.
    """

    def __init__(self, space: DartsSpace, *, channels: int = 16, layers: int = 8, num_classes: int = 10,
                 in_channels: int = 3, stem_multiplier: int = 3, partial: int = 1):
        super().__init__()
        self.space = space
        bn = BNConfig(affine=False)
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        cells, reduction_prev = [], False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cells.append(SearchCell(c_pp, c_p, c_curr, reduction, reduction_prev, bn, partial))
            reduction_prev = reduction
            c_pp, c_p = c_p, NODES * c_curr
        self.cells = nn.ModuleList(cells)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def _specs(self, path) -> tuple[Sequence[Spec], Sequence[Spec]]:
        if isinstance(path, (Arch, Genotype)):
            path = genotype_path(self.space, path)
        if isinstance(path, Mapping):
            if set(path) != set(CELL_TYPES):
                raise ValueError(f"a path dict needs the keys normal and reduce, got {sorted(path)}")
            normal, reduce = path["normal"], path["reduce"]
        else:
            if path is None or len(path) != 2 * len(EDGES):
                raise ValueError(f"a path needs {2 * len(EDGES)} specs (14 normal then 14 reduce)")
            normal, reduce = path[: len(EDGES)], path[len(EDGES):]
        for name, specs in (("normal", normal), ("reduce", reduce)):
            if len(specs) != len(EDGES):
                raise ValueError(f"{name} path has {len(specs)} specs; expected {len(EDGES)}")
        return normal, reduce

    def forward(self, x: torch.Tensor, path) -> torch.Tensor:
        normal, reduce = self._specs(path)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        return self.classifier(self.global_pooling(s1).flatten(1))
