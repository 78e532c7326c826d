"""Architecture selection after a differentiable search: magnitude (argmax) or perturbation (PT).

* ``magnitude`` (:class:`MagnitudeSelector`, :func:`select_magnitude`) — the argmax of the
  architecture weights per edge (tiny64, NB201); in the DARTS space the two inputs per node
  with the strongest non-``none`` op, then that op.
* ``pt`` (:class:`PTSelector`, :func:`select_pt`) — DARTS-PT (Wang et al., ICLR 2021;
  algorithms.md 4; the authors' procedure, checked against ruocwang/darts-pt in
  :mod:`wsnas.selection.pt`): the strength of op o on edge e is the supernet's accuracy with o
  masked out on e (its weight set to 0, the others left unnormalised), measured on the search's
  architecture split (the data the architecture steps use; the held-out half of the training
  split by default) at batch 64 with batch-statistics BN and no gradients; the op whose removal
  hurts most is kept and the edge becomes one-hot on it. Undecided edges are decided one at a
  time in a random order seeded by the search's seed (``seed`` overrides it; one edge per cell
  type at a time in the DARTS space, normal and reduce in parallel), and the supernet is tuned
  between decisions (architecture and weight steps alternate, ``interval`` = 5 epochs, weight
  lr constant at 0.0025). In the DARTS space the topology is then decided, one random node per
  cell type per round among those with more than two inputs: the node keeps the two incoming
  edges whose removal leaves the lowest accuracy and loses the others at once; tuning runs
  between rounds.

Both work on a trained :class:`~wsnas.training.trainer.SupernetTrainer` whose strategy is differentiable
(``strategy.arch``); a fixed-alpha supernet (``--fixed-alpha``: uniform mixing, never updated,
the weights trained on the same half of the training split as a bilevel search's, the other
half kept for PT) followed by PT is the paper's fixed-alpha variant.

Every method is a :class:`~wsnas.selection.base.Selector` in the registry below:
``get_selector(name, **options)`` builds one (``get_selector("pt", interval=1)``),
``selection_names()`` lists the accepted names in the order they run (methods that change the
supernet last), ``register_selector`` adds one. A new method is one file with a ``Selector``
subclass and one ``register_selector`` line here.
"""

from wsnas.selection.base import (
    SELECTORS,
    Selector,
    check_selections,
    get_selector,
    get_selectors,
    ordered,
    register_selector,
    selection_label,
    selection_names,
    selector_class,
    unregister_selector,
)
from wsnas.selection.magnitude import MagnitudeSelector, select_magnitude
from wsnas.selection.pt import PTConfig, PTSelector, select_pt

# the registry: one line per method (registration order is the order reports list them in)
register_selector(MagnitudeSelector)
register_selector(PTSelector)

__all__ = ["SELECTORS", "MagnitudeSelector", "PTConfig", "PTSelector", "Selector", "check_selections",
           "get_selector", "get_selectors", "ordered", "register_selector", "select_magnitude", "select_pt",
           "selection_label", "selection_names", "selector_class", "unregister_selector"]
