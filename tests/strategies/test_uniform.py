import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.spaces import get_space
from wsnas.strategies import StrategyContext, get_strategy


def _setup(name, seed=0, **kw):
    space = get_space("tiny64", channels=4, stem_channels=8)
    net = space.build_supernet(num_classes=10, in_channels=1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    s = get_strategy(name, **kw)
    s.setup(StrategyContext(supernet=net, space=space, optimizer=opt, seed=seed))
    return space, s


def _indices(space, s, n):
    return [space.index(s.next_arch()) for _ in range(n)]


def test_round_robin_is_index_order():
    space, s = _setup("round_robin")
    assert _indices(space, s, 130) == list(range(64)) * 2 + [0, 1]


def test_fixed_order_repeats_one_seeded_permutation():
    space, s = _setup("fixed_order", seed=3)
    seq = _indices(space, s, 192)
    assert sorted(seq[:64]) == list(range(64))
    assert seq[:64] == seq[64:128] == seq[128:]
    assert seq[:64] != list(range(64))
    _, again = _setup("fixed_order", seed=3)
    assert _indices(space, again, 64) == seq[:64]
    _, other = _setup("fixed_order", seed=3, order_seed=4)
    assert _indices(space, other, 64) != seq[:64]


def test_shuffle_draws_a_fresh_permutation_every_cycle():
    space, s = _setup("shuffle", seed=1)
    seq = _indices(space, s, 64 * 3)
    cycles = [seq[i * 64:(i + 1) * 64] for i in range(3)]
    assert all(sorted(c) == list(range(64)) for c in cycles)
    assert cycles[0] != cycles[1] != cycles[2]


def test_uniform_is_seeded_and_iid():
    space, s = _setup("uniform", seed=5)
    seq = _indices(space, s, 64 * 100)
    _, s2 = _setup("uniform", seed=5)
    assert _indices(space, s2, 50) == seq[:50]
    counts = torch.bincount(torch.tensor(seq), minlength=64)
    assert counts.min() > 60 and counts.max() < 145  # 100 expected each
    assert seq[:64] != list(range(64))


@pytest.mark.parametrize("name", ["uniform", "round_robin", "fixed_order", "shuffle"])
def test_state_round_trip_continues_the_same_sequence(name):
    space, s = _setup(name, seed=2)
    _indices(space, s, 70)
    state = s.state_dict()
    rest = _indices(space, s, 100)
    _, fresh = _setup(name, seed=99)
    fresh.load_state_dict(state)
    assert _indices(space, fresh, 100) == rest


def test_aliases_and_errors():
    assert get_strategy("spos").name == "uniform"
    assert get_strategy("round-robin").name == "round_robin"
    assert get_strategy("pada-path").name == "pada-path" and get_strategy("darts").name == "darts"
    with pytest.raises(WsnasError, match="unknown strategy 'enas'; accepted: round_robin"):
        get_strategy("enas")
