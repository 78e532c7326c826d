import csv
from importlib import resources

import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.spaces import SPACES, get_space
from wsnas.spaces.base import Arch


@pytest.fixture
def space():
    return get_space("tiny64")


def test_tiny64_bijection_all_64(space):
    assert len(space) == 64
    seen = set()
    for i in range(64):
        arch = space.from_index(i)
        name = space.format(arch)
        assert space.index(space.parse(name)) == i
        assert space.parse(name) == arch
        seen.add(name)
    assert len(seen) == 64
    assert [space.format(a) for a in space.enumerate()] == [space.format(space.from_index(i)) for i in range(64)]


def test_tiny64_index_formula_and_published_order(space):
    for d01 in range(1, 5):
        for d02 in range(1, 5):
            for d12 in range(1, 5):
                name = f"{d01}{d02}{d12}"
                assert space.index(space.parse(name)) == 16 * (d01 - 1) + 4 * (d02 - 1) + (d12 - 1)
    assert space.format(space.from_index(0)) == "111"
    assert space.format(space.from_index(63)) == "444"
    # identical to the order of the published ground-truth file, ops included
    ref = resources.files("wsnas.groundtruth.benchmarks") / "tiny64_cifar10_groundtruth.csv"
    with ref.open() as f:
        for row in csv.DictReader(f):
            arch = space.from_index(int(row["index"]))
            assert space.format(arch) == row["arch"]
            assert arch.ops == (row["edge_0_1"], row["edge_0_2"], row["edge_1_2"])


def test_op_names_and_options():
    assert get_space("tiny64").ops[3] == "dil_conv_5x5"
    s3 = get_space("tiny64", dil="3x3")
    assert s3.ops == ("max_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3")
    assert s3.parse("max_pool_3x3, dil_conv_3x3, sep_conv_5x5") == s3.parse("143")


@pytest.mark.parametrize("text, fragment", [
    ("4341", "must be 3 digits"),
    ("45", "must be 3 digits"),
    ("", "must be 3 digits"),
    ("435", "bad op '5' on edge 1->2"),
    ("0ab", "bad op '0' on edge 0->1"),
    ("max_pool_3x3,conv9", "has 2 ops"),
    ("max_pool_3x3,conv9,sep_conv_3x3", "unknown option 'conv9'"),
])
def test_parse_errors_are_one_line_and_name_the_bad_part(space, text, fragment):
    with pytest.raises(WsnasError) as info:
        space.parse(text)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg


def test_accepted_values_named_in_errors(space):
    with pytest.raises(WsnasError, match="1=max_pool_3x3, 2=sep_conv_3x3, 3=sep_conv_5x5, 4=dil_conv_5x5"):
        space.parse("519")
    with pytest.raises(WsnasError, match="accepted: max_pool_3x3, sep_conv_3x3"):
        space.parse("a,b,c")
    with pytest.raises(WsnasError, match="out of range .* 0..63"):
        space.from_index(64)
    with pytest.raises(WsnasError, match="unknown space 'nope'; accepted: tiny64"):
        get_space("nope")
    with pytest.raises(WsnasError, match="unknown combine 'max'"):
        get_space("tiny64", combine="max")
    with pytest.raises(WsnasError, match="bad option for space"):
        get_space("tiny64", colour="red")


def test_validate_and_resolve(space):
    assert space.resolve("434") == space.resolve(59) == space.resolve(space.parse("434"))
    with pytest.raises(WsnasError):
        space.validate(Arch("tiny64", ("max_pool_3x3",)))
    with pytest.raises(WsnasError):
        space.validate(Arch("other", space.parse("111").ops))


def test_names_and_indices_never_overlap(space):
    """A tiny64 name is three digits 1-4, an index has no leading zeros: 011 is neither, not index 11."""
    assert space.resolve("5") == space.from_index(5) and space.resolve("63") == space.from_index(63)
    assert space.resolve("111") == space.from_index(0) and space.resolve(" 0 ") == space.from_index(0)
    for text, fragment in (("011", "bad op '0' on edge 0->1"), ("05", "must be 3 digits"), ("0063", "3 digits"),
                           ("64", "must be 3 digits"), ("٣", "must be 3 digits"), ("9" * 5000, "(5000 characters)")):
        with pytest.raises(WsnasError) as info:
            space.resolve(text)
        assert fragment in str(info.value) and "or an index 0..63, without leading zeros" in str(info.value)
    nb201 = get_space("nb201")
    with pytest.raises(WsnasError, match="or an index 0..15624"):
        nb201.resolve("1" * 4400)  # more digits than Python converts: out of range, not a ValueError
    with pytest.raises(WsnasError, match=r"architecture index '9999.*\(5000 characters\) out of range"):
        nb201.check_index("9" * 5000)


def test_memory_is_checked_from_a_parameter_count_on_the_meta_device():
    from wsnas.spaces.base import COUNTED_DEPTH, TRAINING_BYTES_PER_PARAMETER, check_memory

    for name, options in (("tiny64", {}), ("nb201", {"cells_per_stage": 2}),
                          ("darts", {"layers": 3, "search_layers": 3, "channels": 4, "search_channels": 4})):
        space = get_space(name, **options)
        built = space.estimate_networks(num_classes=10, in_channels=3)  # allocated, unlike the estimate
        assert space.parameter_estimate() == max(sum(p.numel() for p in net.parameters()) for net in built)
    small = get_space("tiny64", channels=4, stem_channels=8)
    params = check_memory(small, memory=10**9)
    assert params * TRAINING_BYTES_PER_PARAMETER < 10**9
    with pytest.raises(WsnasError, match=r"tiny64 with channels=4, stem_channels=8 has about .* parameters"):
        check_memory(small, memory=params * TRAINING_BYTES_PER_PARAMETER - 1)
    # a depth beyond COUNTED_DEPTH is counted at that depth and scaled
    deep = get_space("tiny64", cells=100 * COUNTED_DEPTH)
    assert deep.parameter_estimate() == get_space("tiny64", cells=COUNTED_DEPTH).parameter_estimate() * 100
    with pytest.raises(WsnasError, match="too large to build"):
        get_space("tiny64", channels=10**12).parameter_estimate()
    with pytest.raises(WsnasError, match="channels must be a positive integer, got 1.5"):
        get_space("tiny64", channels=1.5)


def test_sample_is_seeded_uniform_and_distinct(space):
    a = space.sample(20, seed=3)
    assert a == space.sample(20, seed=3)
    assert a != space.sample(20, seed=4)
    assert len(set(a)) == 20
    with pytest.raises(WsnasError, match="cannot sample 65"):
        space.sample(65, seed=0)
    counts = torch.zeros(64)
    for arch in space.sample(64 * 200, seed=1, replace=True):
        counts[space.index(arch)] += 1
    assert counts.min() > 120 and counts.max() < 290  # uniform: 200 expected each


def test_registry_lists_spaces():
    assert "tiny64" in SPACES


@pytest.mark.parametrize("name", ["tiny64", "nb201", "darts"])
def test_search_operators_stay_in_the_space_and_are_seeded(name):
    import numpy as np

    space = get_space(name)
    draws = [space.random_arch(np.random.default_rng(5)) for _ in range(2)]
    assert draws[0] == draws[1]  # the same generator state, the same architecture
    rng = np.random.default_rng(0)
    archs = [space.random_arch(rng) for _ in range(200)]
    for c, options in zip(space.choices, zip(*(a.ops for a in archs))):
        assert set(options) == set(c.options)  # every option of every choice is drawn
    for a, b in zip(archs, archs[1:]):
        for child in (space.mutate(a, rng, 0.5), space.crossover(a, b, rng)):
            assert space.validate(child) is child
            assert space.parse(space.format(child)) == child
        assert all(x in (p, q) for x, p, q in zip(space.crossover(a, b, rng).ops, a.ops, b.ops))
    assert space.mutate(archs[0], rng, 0.0) == archs[0]
