"""Supernets: networks whose choice points can run one option, a weighted sum, or a mask.

:mod:`~wsnas.supernet.sharing` describes how much a supernet shares (a :class:`Sharing`) and
builds the :class:`~wsnas.supernet.bank.WeightBank` of private copies that partial sharing
needs; the bank is passed explicitly (``bank=``) to whatever reads a child's weights.
"""

from __future__ import annotations

from torch import nn

from wsnas.nn.choice import ChoiceBlock, Spec
from wsnas.supernet.bank import WeightBank


def child_state_dict(supernet: nn.Module, child: nn.Module, *, bank: WeightBank | None = None) -> dict:
    """The supernet's weights for ``child``: every entry of the child's state dict, by key.

    Works because a standalone network names its modules exactly as the supernet does and
    holds only the picked candidates (see :class:`ChoiceBlock`). Under partial sharing pass the
    supernet's ``bank``: the child (with an ``arch``) gets its own private copies.
    """
    if bank is not None and getattr(child, "arch", None) is not None:
        bank.activate_arch(child.arch)  # the child's own copies under partial sharing
    shared = supernet.state_dict()
    missing = [k for k in child.state_dict() if k not in shared]
    if missing:
        raise KeyError(f"supernet lacks {len(missing)} child weights, e.g. {missing[:3]}")
    return {k: shared[k].clone() for k in child.state_dict()}


def load_child_from_supernet(supernet: nn.Module, child: nn.Module, *,
                             bank: WeightBank | None = None) -> nn.Module:
    """Copy the shared weights of ``child``'s path (its private copies in ``bank``, if given)
    into ``child`` (in place) and return it."""
    child.load_state_dict(child_state_dict(supernet, child, bank=bank))
    return child


__all__ = ["ChoiceBlock", "Spec", "child_state_dict", "load_child_from_supernet"]
