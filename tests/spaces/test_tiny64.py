import pytest
import torch
from conftest import randomise_bn

from wsnas.spaces import get_space
from wsnas.supernet import child_state_dict, load_child_from_supernet


@pytest.mark.parametrize("options", [{}, {"dil": "3x3"}, {"combine": "sum"}])
def test_supernet_and_standalone_give_the_same_output(options):
    space = get_space("tiny64", **options)
    torch.manual_seed(0)
    supernet = space.build_supernet(num_classes=10, in_channels=3)
    randomise_bn(supernet)
    x = torch.randn(4, 3, 8, 8)
    for name in ("111", "234", "434", "444"):
        arch = space.parse(name)
        child = load_child_from_supernet(supernet, space.build_network(arch, num_classes=10, in_channels=3))
        supernet.eval(), child.eval()
        torch.testing.assert_close(supernet(x, arch), child(x), rtol=0, atol=0)
        supernet.train(), child.train()
        torch.testing.assert_close(supernet(x, arch), child(x), rtol=1e-6, atol=1e-6)


def test_only_the_path_gets_gradients():
    space = get_space("tiny64")
    supernet = space.build_supernet(num_classes=10, in_channels=1)
    arch = space.parse("243")
    supernet(torch.randn(8, 1, 8, 8), arch).sum().backward()
    child_keys = set(space.build_network(arch, num_classes=10, in_channels=1).state_dict())
    for name, p in supernet.named_parameters():
        has_grad = p.grad is not None and p.grad.abs().sum() > 0
        assert has_grad == (name in child_keys), name


def test_structure_matches_the_spec():
    space = get_space("tiny64")
    net = space.build_network(space.parse("111"), num_classes=10, in_channels=3)
    convs = [m for m in net.stem if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [(3, 48, (3, 3)), (48, 48, (3, 3))]
    assert len(net.cells) == 4
    assert net.cells[0].preprocess[1].in_channels == 48 and net.cells[1].preprocess[1].in_channels == 32
    assert net.classifier.in_features == 32
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.momentum == 0.4 for m in bns)
    assert all(not m.affine for m in bns[2:]) and all(m.affine for m in bns[:2])
    dil = net_op = space.build_network(space.parse("444"), num_classes=10, in_channels=3).cells[0].edges[0]
    conv = dil.candidates["dil_conv_5x5"].op[1]
    assert conv.kernel_size == (5, 5) and conv.dilation == (2, 2) and conv.padding == (4, 4)
    del net_op
    sum_net = get_space("tiny64", combine="sum").build_network(space.parse("111"), num_classes=10)
    assert sum_net.classifier.in_features == 16


def test_child_state_dict_is_a_copy():
    space = get_space("tiny64")
    supernet = space.build_supernet(num_classes=10)
    child = space.build_network(space.parse("121"), num_classes=10)
    sd = child_state_dict(supernet, child)
    key = next(k for k in sd if k.endswith("weight"))
    sd[key].add_(1.0)
    assert not torch.equal(sd[key], supernet.state_dict()[key])


def test_weighted_and_masked_specs():
    space = get_space("tiny64")
    torch.manual_seed(1)
    supernet = space.build_supernet(num_classes=10).eval()
    x = torch.randn(2, 3, 8, 8)
    onehot = [torch.eye(4)[k] for k in (1, 3, 2)]
    torch.testing.assert_close(supernet(x, onehot), supernet(x, (1, 3, 2)))
    mixed = [torch.full((4,), 0.25) for _ in range(3)]
    assert supernet(x, mixed).shape == (2, 10)


def test_fast_max_pool_equals_pytorch():
    from wsnas.nn.ops import MaxPool3x3

    x = torch.randn(5, 7, 9, 6)
    with torch.no_grad():
        assert torch.equal(torch.nn.MaxPool2d(3, 1, 1)(x), MaxPool3x3()(x))
    x.requires_grad_(True)
    assert torch.equal(torch.nn.MaxPool2d(3, 1, 1)(x), MaxPool3x3()(x))
