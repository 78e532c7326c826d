import pytest
import torch
from conftest import randomise_bn

from wsnas.core.errors import WsnasError
from wsnas.spaces import get_space
from wsnas.spaces.nb201 import EDGE_NAMES, OPS
from wsnas.supernet import child_state_dict, load_child_from_supernet

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"

# from the official generator (field-notes.md)
OFFICIAL = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    9: "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    123: "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
}


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


def small(**options):
    return get_space("nb201", channels=4, cells_per_stage=1, **options)


def test_choices(space):
    assert len(space) == 15_625
    assert [c.name for c in space.choices] == ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]
    assert EDGE_NAMES == tuple(c.name for c in space.choices)
    assert all(c.options == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
               for c in space.choices)


@pytest.mark.parametrize("index", sorted(OFFICIAL))
def test_official_index(space, index):
    assert space.format(space.from_index(index)) == OFFICIAL[index]
    assert space.index(space.parse(OFFICIAL[index])) == index
    assert space.format(space.resolve(str(index))) == OFFICIAL[index]


def test_every_string_round_trips_and_the_index_is_a_bijection(space):
    seen = set()
    for i, arch in enumerate(space.enumerate()):
        text = space.format(arch)
        parsed = space.parse(text)
        assert parsed == arch
        assert space.index(parsed) == i
        back = space.from_index(space.index(parsed))
        assert space.format(back) == text
        seen.add(text)
    assert len(seen) == 15_625
    assert sorted(space.index(space.from_option_indices(d)) for d in
                  [(a, b, c, d, e, f) for a in range(5) for b in range(5) for c in range(5)
                   for d in range(5) for e in range(5) for f in range(5)]) == list(range(15_625))


def test_format_order_is_node_by_node(space):
    arch = space.from_option_indices([0, 1, 2, 3, 4, 0])
    assert space.format(arch) == "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"


@pytest.mark.parametrize("text, words", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", ["2 nodes", "expected 3"]),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["unknown op 'conv'", "1<-0", "avg_pool_3x3"]),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", ["node 2", "1 edges", "expected 2"]),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", ["node 3", "4 edges", "expected 3"]),
    ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", ["input 2", "expected ~1"]),
    ("|none~0|+|none~0|none|+|none~0|none~1|none~2|", ["'none'", "op~1"]),
    ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", ["node 1", "|op~0|"]),
    ("", ["1 nodes"]),
])
def test_parse_errors(space, text, words):
    with pytest.raises(WsnasError) as info:
        space.parse(text)
    message = str(info.value)
    assert "\n" not in message
    for w in words:
        assert w in message, message


def test_out_of_range_index(space):
    with pytest.raises(WsnasError, match="0..15624"):
        space.from_index(15_625)
    with pytest.raises(WsnasError, match="0..15624"):
        space.resolve("99999")


def test_options():
    space = get_space("nb201", affine="false", track_running_stats=0, bn_momentum=0.2)
    assert space.describe() == {"space": "nb201", "channels": 16, "cells_per_stage": 5, "affine": False,
                                "track_running_stats": False, "bn_momentum": 0.2}
    with pytest.raises(WsnasError, match="channels"):
        get_space("nb201", channels=0)
    with pytest.raises(WsnasError, match="affine"):
        get_space("nb201", affine="maybe")
    with pytest.raises(WsnasError, match="bad option"):
        get_space("nb201", colour=1)


def test_structure_matches_the_official_network(space):
    net = space.build_network(space.parse(ALL_CONV), num_classes=10)
    assert len(net.cells) == 17
    blocks = [m for m in net.cells if type(m).__name__ == "NB201ResBlock"]
    assert [net.cells[5], net.cells[11]] == blocks
    assert blocks[0].conv_a.op[1].stride == (2, 2) and blocks[0].downsample[1].kernel_size == (1, 1)
    assert net.classifier.in_features == 64
    assert all(m.affine and m.momentum == 0.1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    sup = get_space("nb201", affine=False, track_running_stats=False).build_supernet(num_classes=10)
    cell_bns = [m for m in sup.cells[0].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert cell_bns and all(not m.affine and not m.track_running_stats for m in cell_bns)
    assert sup.stem[1].affine and sup.lastact[0].affine and sup.cells[5].conv_a.op[2].affine
    pool = space.build_network(space.from_option_indices([4] * 6), num_classes=10).cells[0].edges[0]
    pool = pool.candidates["avg_pool_3x3"]
    assert pool.kernel_size == 3 and pool.stride == 1 and pool.padding == 1 and not pool.count_include_pad


def test_networks_run_on_every_dataset_shape(space):
    net = small().build_network(space.from_index(0), num_classes=120)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 120)
    net = small().build_network(space.from_index(0), num_classes=10, in_channels=1)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)




@pytest.mark.parametrize("index", [0, 9, 123, 4000])
def test_supernet_and_standalone_give_the_same_output(index):
    space = small()
    torch.manual_seed(0)
    supernet = space.build_supernet(num_classes=10)
    randomise_bn(supernet)
    x = torch.randn(4, 3, 8, 8)
    arch = space.from_index(index)
    child = load_child_from_supernet(supernet, space.build_network(arch, num_classes=10))
    assert set(child_state_dict(supernet, child)) == set(child.state_dict())
    supernet.eval(), child.eval()
    torch.testing.assert_close(supernet(x, arch), child(x), rtol=0, atol=0)
    torch.testing.assert_close(supernet(x, list(space.option_indices(arch))), child(x), rtol=0, atol=0)
    supernet.train(), child.train()
    torch.testing.assert_close(supernet(x, arch), child(x), rtol=1e-6, atol=1e-6)


def test_only_the_path_gets_gradients():
    space = small(affine=False, track_running_stats=False)
    supernet = space.build_supernet(num_classes=10)
    arch = space.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
    supernet(torch.randn(4, 3, 8, 8), arch).sum().backward()
    child_keys = set(space.build_network(arch, num_classes=10).state_dict())
    for name, p in supernet.named_parameters():
        has_grad = p.grad is not None and p.grad.abs().sum() > 0
        assert has_grad == (name in child_keys), name


def test_weighted_sum_with_one_hot_weights_is_the_single_path():
    space = small()
    torch.manual_seed(1)
    supernet = space.build_supernet(num_classes=10).eval()
    randomise_bn(supernet)
    x = torch.randn(2, 3, 8, 8)
    arch = space.from_index(123)
    one_hot = [torch.nn.functional.one_hot(torch.tensor(k), len(OPS)).float()
               for k in space.option_indices(arch)]
    torch.testing.assert_close(supernet(x, one_hot), supernet(x, arch), rtol=0, atol=0)
    # the same with weights that need a gradient (nothing is skipped then)
    grads = [w.clone().requires_grad_(True) for w in one_hot]
    torch.testing.assert_close(supernet(x, grads), supernet(x, arch), rtol=1e-6, atol=1e-6)


def test_supernet_needs_a_full_path():
    space = small()
    supernet = space.build_supernet(num_classes=10)
    with pytest.raises(ValueError, match="path"):
        supernet(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="6 specs"):
        supernet(torch.randn(1, 3, 8, 8), [0, 1, 2])
