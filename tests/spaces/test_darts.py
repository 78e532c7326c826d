import math

import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.spaces import get_space
from wsnas.spaces.darts import (
    DARTS_V1,
    DARTS_V2,
    EDGES,
    OPS,
    DartsNetwork,
    drop_path,
    format_genotype,
    genotype_path,
    parse_genotype,
)

torch.set_num_threads(1)

V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=[2, 3, 4, 5])"
)


@pytest.fixture(scope="module")
def space():
    return get_space("darts")


def test_official_text_parses_to_the_constant_and_formats_back():
    assert parse_genotype(V2_TEXT) == DARTS_V2
    assert format_genotype(DARTS_V2) == V2_TEXT
    assert parse_genotype(format_genotype(DARTS_V1)) == DARTS_V1


def test_range_concat_and_multiline_text():
    text = V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 6)").replace(", reduce=", ",\n    reduce=")
    assert parse_genotype(text) == DARTS_V2
    assert parse_genotype(V2_TEXT.replace("[2, 3, 4, 5]", "list(range(2, 6))")) == DARTS_V2


def test_nested_form():
    nested = ("Genotype(normal=[[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], [('sep_conv_3x3', 0), "
              "('sep_conv_3x3', 1)], [('sep_conv_3x3', 1), ('skip_connect', 0)], [('skip_connect', 0), "
              "('dil_conv_3x3', 2)]], normal_concat=range(2, 6), reduce=[[('max_pool_3x3', 0), "
              "('max_pool_3x3', 1)], [('skip_connect', 2), ('max_pool_3x3', 1)], [('max_pool_3x3', 0), "
              "('skip_connect', 2)], [('skip_connect', 2), ('max_pool_3x3', 1)]], reduce_concat=range(2, 6))")
    assert parse_genotype(nested) == DARTS_V2


def test_darts_v2_round_trip(space):
    arch = space.parse(V2_TEXT)
    text = space.format(arch)
    # canonical form: lower-numbered input first within each node (DARTS_V2's node 2 is swapped)
    assert space.parse(text) == arch
    assert space.from_index(space.index(arch)) == arch
    assert space.format(space.from_index(space.index(arch))) == text
    assert sorted(parse_genotype(text).normal) == sorted(DARTS_V2.normal)
    assert sorted(parse_genotype(text).reduce) == sorted(DARTS_V2.reduce)
    assert space.resolve(V2_TEXT) == arch


def test_random_sample_round_trip(space):
    for arch in space.sample(50, seed=3):
        text = space.format(arch)
        back = space.from_index(space.index(space.parse(text)))
        assert back == arch
        assert space.format(back) == text


def test_size_is_product_of_option_counts(space):
    assert len(space) == math.prod(len(c.options) for c in space.choices)
    assert len(space) == (1 * 3 * 6 * 10 * 8 ** 8) ** 2
    assert [len(c.options) for c in space.choices[:3]] == [1, 8, 8]
    assert space.choices[1].options == OPS
    assert space.describe() == {"space": "darts", "channels": 36, "layers": 20, "auxiliary": True,
                                "search_channels": 16, "search_layers": 8}


@pytest.mark.parametrize("text, fragment", [
    (V2_TEXT.replace("'dil_conv_3x3'", "'conv_7x7'"), "unknown op 'conv_7x7'"),
    (V2_TEXT.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ", "", 1), "has 6 (op, input) pairs; expected 8"),
    (V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "input 5 out of range for node 3; accepted: 0..4"),
    (V2_TEXT.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "('sep_conv_3x3', 1), ('sep_conv_3x3', 1)", 1),
     "node 0 takes input 1 twice"),
    ("Genotype(normal=[('sep_conv_3x3', 0)", "malformed genotype"),
    ("Foo(normal=[])", "malformed genotype"),
    (V2_TEXT.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=__import__('os')"), "not a literal"),
    (V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3]"), "accepted: [2, 3, 4, 5]"),
    (V2_TEXT.replace("normal_concat=", "extra=1, normal_concat="), "unknown genotype field 'extra'"),
])
def test_errors(text, fragment):
    with pytest.raises(WsnasError) as exc:
        parse_genotype(text)
    msg = str(exc.value)
    assert fragment in msg
    assert "\n" not in msg
    if "unknown op" in fragment:
        assert ", ".join(OPS) in msg


def test_bad_config():
    with pytest.raises(WsnasError, match="layers"):
        get_space("darts", layers=2)
    with pytest.raises(WsnasError, match="bad option"):
        get_space("darts", width=3)


def test_darts_v2_parameter_count(space):
    net = space.build_network(space.parse(V2_TEXT), num_classes=10)
    without_aux = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("auxiliary_head"))
    assert without_aux == 3_349_342  # the official train.py logs "param size = 3.349342MB"
    assert round(without_aux / 1e6, 1) == 3.3
    assert sum(p.numel() for p in net.parameters()) == 3_825_768  # with the auxiliary head
    # the text order of the pairs does not change the network
    assert sum(p.numel() for p in DartsNetwork(DARTS_V2, auxiliary=False).parameters()) == 3_349_342


def test_small_forward_train_and_eval():
    space = get_space("darts", channels=8, layers=5)
    torch.manual_seed(0)
    net = space.build_network(DARTS_V1, num_classes=7)
    net.drop_path_prob = 0.2
    x = torch.randn(2, 3, 32, 32)
    net.train()
    logits, aux = net(x)
    assert logits.shape == (2, 7) and aux.shape == (2, 7)
    net.eval()
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
    no_aux = get_space("darts", channels=8, layers=5, auxiliary=False).build_network(DARTS_V2)
    assert no_aux.auxiliary_head is None
    assert no_aux(x).shape == (2, 10)


def test_drop_path_zeroes_whole_samples_in_training_only():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 4, 4) + 1.0
    y = drop_path(x, 0.5)
    per_sample = y.flatten(1)
    zero = (per_sample == 0).all(1)
    kept = (per_sample != 0).all(1)
    assert bool((zero | kept).all()) and 0 < int(zero.sum()) < 64
    torch.testing.assert_close(y[kept], x[kept] * 2.0)

    space = get_space("darts", channels=4, layers=3, auxiliary=False)
    net = space.build_network(DARTS_V2)
    net.drop_path_prob = 0.0
    xs = torch.randn(4, 3, 16, 16)
    net.eval()
    ref = net(xs)
    net.drop_path_prob = 0.9
    torch.testing.assert_close(net(xs), ref, rtol=0, atol=0)  # eval mode: no drop path
    net.drop_path_prob = 0.5
    net.train()
    for m in net.modules():  # batch norm on running statistics, so only drop path differs
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    torch.manual_seed(1)
    a = net(xs)
    torch.manual_seed(2)
    b = net(xs)
    assert not torch.equal(a, b) and not torch.equal(a, ref)  # training: random masks
    net.drop_path_prob = 0.0
    torch.testing.assert_close(net(xs), ref)


def test_search_network_weighted_and_single_path():
    space = get_space("darts", search_channels=4, search_layers=3)
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=5)
    assert len(net.cells[0].edges) == len(EDGES) == 14
    x = torch.randn(2, 3, 16, 16)
    alphas = torch.zeros(2, 14, len(OPS), requires_grad=True)
    w = torch.softmax(alphas, dim=-1)
    out = net(x, {"normal": tuple(w[0]), "reduce": tuple(w[1])})
    assert out.shape == (2, 5)
    out.sum().backward()
    assert alphas.grad is not None and alphas.grad.abs().sum() > 0

    net.zero_grad(set_to_none=True)
    k = OPS.index("sep_conv_3x3")
    net(x, tuple([k] * 28)).sum().backward()
    for name, p in net.named_parameters():
        if ".candidates." in name:
            assert (p.grad is not None) == (".candidates.sep_conv_3x3." in name), name


def test_genotype_path_runs_only_the_chosen_edges():
    space = get_space("darts", search_channels=4, search_layers=3)
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=5)
    path = genotype_path(space, DARTS_V2)
    assert sum(s is not None for s in path["normal"]) == 8
    assert path["normal"][EDGES.index((2, 5))].argmax() == OPS.index("dil_conv_3x3")
    x = torch.randn(2, 3, 16, 16)
    net.eval()
    a = net(x, path)
    torch.testing.assert_close(net(x, space.parse(V2_TEXT)), a)
    net.train()
    net(x, path).sum().backward()
    normal = net.cells[0]
    assert normal.edges[EDGES.index((2, 5))].candidates["dil_conv_3x3"].op[1].weight.grad is not None
    assert normal.edges[EDGES.index((2, 5))].candidates["sep_conv_3x3"].op[0].op[1].weight.grad is None
    assert all(p.grad is None for p in normal.edges[EDGES.index((1, 5))].parameters())


def test_search_network_parameter_count(space):
    net = space.build_supernet(num_classes=10)
    assert sum(p.numel() for p in net.parameters()) == 1_930_618  # official train_search: 1.930618MB
