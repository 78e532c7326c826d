"""The mobile chain space (ProxylessNAS / PA&DA on ImageNet): names, networks, cost, and every family of
strategies on it from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.nn.choice import Sampled
from wsnas.spaces import get_space
from wsnas.spaces.mobile import MBCONVS, OPS, PROXYLESS_MOBILE, PROXYLESS_MOBILE_WIDTHS, make_divisible
from wsnas.store import Store
from wsnas.strategies import StrategyContext, get_strategy

# The 20 MBConv blocks after the stem of the authors' released ProxylessNAS-Mobile
# (han-cai/files proxylessnas/proxyless_mobile.config, the net mit-han-lab/proxylessnas
# proxyless_nas/model_zoo.py loads): (in, out, kernel, stride, expand_ratio); its two ZeroLayer
# blocks (stage 1, layers 3 and 4) have no weights and no cost.
RELEASED = [(32, 16, 3, 1, 1), (16, 32, 5, 2, 3), (32, 32, 3, 1, 3), (32, 40, 7, 2, 3), (40, 40, 3, 1, 3),
            (40, 40, 5, 1, 3), (40, 40, 5, 1, 3), (40, 80, 7, 2, 6), (80, 80, 5, 1, 3), (80, 80, 5, 1, 3),
            (80, 80, 5, 1, 3), (80, 96, 5, 1, 6), (96, 96, 5, 1, 3), (96, 96, 5, 1, 3), (96, 96, 5, 1, 3),
            (96, 192, 7, 2, 6), (192, 192, 7, 1, 6), (192, 192, 7, 1, 3), (192, 192, 7, 1, 3), (192, 320, 7, 1, 6)]


def released_counts() -> tuple[int, int]:
    """Parameters (BN scale and shift, the classifier's bias included) and multiply-adds of the released
    config counted by hand, as the authors' get_flops counts them: a convolution out_h * out_w * c_in *
    c_out * k * k / groups (input size // stride), the classifier its weights (1280 x 1000), no bias."""
    params = macs = 0

    def conv(c_in, c_out, k, size, groups=1):
        nonlocal params, macs
        params += c_in * c_out * k * k // groups + 2 * c_out  # the weights and the BN after them
        macs += c_in * c_out * k * k * size * size // groups

    size = 224 // 2
    conv(3, 32, 3, size)  # first_conv: 3x3, stride 2, 32 channels
    for c_in, c_out, k, stride, expand in RELEASED:
        mid = round(c_in * expand)
        if expand != 1:
            conv(c_in, mid, 1, size)
        size //= stride
        conv(mid, mid, k, size, groups=mid)
        conv(mid, c_out, 1, size)
    conv(320, 1280, 1, size)  # feature_mix_layer
    params += 1280 * 1000 + 1000
    macs += 1280 * 1000
    return params, macs


def test_proxyless_mobile_costs_what_the_authors_released_net_does(capsys):
    params, macs = released_counts()
    assert (params, macs) == (4_080_512, 320_427_584)  # published: 4.1M parameters, 320M multiply-adds
    widths = ",".join(map(str, PROXYLESS_MOBILE_WIDTHS))
    assert main(["cost", "--space", "mobile", "--space-option", f"widths={widths}", "--dataset", "imagenet",
                 "--arch", PROXYLESS_MOBILE, "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)
    assert cost["params"] == params and cost["arch"] == PROXYLESS_MOBILE
    assert cost["macs"] == macs + 1000  # wsnas also counts one per output of a layer with a bias
    assert cost["mflops"] == 320.43


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_names_and_indices_round_trip(data):
    space = get_space("mobile")
    idx = [data.draw(st.integers(0, len(c.options) - 1)) for c in space.choices]
    arch = space.from_option_indices(idx)
    text = space.format(arch)
    assert space.parse(text) == arch and space.resolve(text) == arch
    assert space.parse(",".join(arch.ops)) == arch and space.parse(text.replace("/", "-")) == arch
    index = space.index(arch)
    assert 0 <= index < len(space) and space.from_index(index) == arch


def test_the_space_and_its_names():
    space = get_space("mobile")
    assert len(space.choices) == 21 and space.choices[0].name == "s1l1" and space.choices[-1].name == "s6l1"
    firsts = [0, 4, 8, 12, 16, 20]
    assert all(space.choices[k].options == (MBCONVS if k in firsts else OPS) for k in range(21))
    assert len(space) == 6 ** 6 * 7 ** 15
    assert [(p.c_in, p.c_out, p.stride) for p in space.plan[:5]] == [(16, 24, 2), (24, 24, 1), (24, 24, 1),
                                                                      (24, 24, 1), (24, 40, 2)]
    assert sum(p.residual for p in space.plan) == 15
    small = get_space("mobile", resolution=32, width=0.25)
    assert small.stem_stride == 1 and [p.stride for p in small.plan if not p.residual] == [2, 2, 2, 1]
    assert [make_divisible(v) for v in (6, 10, 20, 24, 48, 80)] == [8, 16, 24, 24, 48, 80]
    assert small.describe()["widths"] == [24, 40, 80, 96, 192, 320]
    assert get_space("mobile", **{k: v for k, v in small.describe().items() if k != "space"}).plan == small.plan


@pytest.mark.parametrize("text, fragment", [
    ("skip-k3e3-k3e3-k3e3/" + PROXYLESS_MOBILE.split("/", 1)[1], "s1l1 is the first layer of a stage and cannot "
                                                                 "be skipped; accepted: k3e3, k3e6"),
    ("k3e3-k3e3/k3e3", "has 2 stages; expected 6 separated by '/'"),
    (PROXYLESS_MOBILE.replace("/k7e6", "-k7e6/", 1).rsplit("/", 1)[0] + "/k7e6", "has 5 layers; expected 4"),
    (PROXYLESS_MOBILE.replace("k5e3", "k9e3", 1), "unknown option 'k9e3' for s1l1; accepted: k3e3"),
    ("k3e3-k3e3", "has 2 layers; expected 21"),
])
def test_bad_names_are_one_line_errors(text, fragment):
    with pytest.raises(WsnasError) as err:
        get_space("mobile").parse(text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("options, fragment", [
    ({"resolution": 64}, "unknown resolution 64; accepted: 224, 32"),
    ({"width": 0}, "width must be a positive multiplier"),
    ({"widths": "24,40"}, "widths must be 6 positive integers"),
    ({"colour": "red"}, "bad option for space 'mobile'"),
])
def test_bad_options(options, fragment):
    with pytest.raises(WsnasError, match=fragment):
        get_space("mobile", **options)


def test_supernet_paths_match_the_standalone_network():
    """A child's single path, its one-hot mixture (laid out by the relaxation's 7 ops, the first layers'
    missing skip dropped) and its standalone network give the same logits on 8x8 digits-sized inputs."""
    space = get_space("mobile", resolution=32, width=0.25)
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=10, in_channels=1).eval()
    arch = space.sample(1, seed=3)[0]
    alone = space.build_network(arch, num_classes=10, in_channels=1).eval()
    state = net.state_dict()
    alone.load_state_dict({k: state[k] for k in alone.state_dict()})
    x = torch.randn(4, 1, 8, 8)
    relax = space.relaxation()
    assert relax.options == OPS and relax.allowed().sum(1).tolist() == [6, 7, 7, 7] * 5 + [6]
    onehot = torch.zeros(21, 7)
    onehot[range(21), relax.arch_rows(arch)] = 1.0
    with torch.no_grad():
        ref = alone(x)
        torch.testing.assert_close(net(x, arch), ref)
        torch.testing.assert_close(net(x, relax.path(list(onehot))), ref)
        torch.testing.assert_close(net(x, relax.path([Sampled(r, torch.tensor(1.0)) for r in relax.arch_rows(arch)])),
                                   ref)
    weights = np.full((21, 7), 0.1)
    weights[:, 6] = 1.0  # skip strongest everywhere: the first layers, which have none, take their best other op
    weights[0, 2] = 0.5
    picked = relax.discretize(weights)
    assert picked.ops[0] == "k5e3" and picked.ops[1] == "skip" and picked.ops[4] == "k3e3"
    with pytest.raises(WsnasError, match=r"partial channels K=3 must divide the width of every layer with a "
                                         r"residual \(8, 16, 24, 48\)"):
        space.build_supernet(num_classes=10, partial_channels=3)
    pc = space.build_supernet(num_classes=10, in_channels=1, partial_channels=4)
    assert pc(x, relax.path(list(torch.softmax(torch.randn(21, 7), 1)))).shape == (4, 10)


SMALL = ["--space", "mobile", "--space-option", "resolution=32", "--space-option", "width=0.25",
         "--data-option", "limit=32", "--batch-size", "32", "--epochs", "1", "--no-progress", "--threads", "1"]


def test_a_single_path_supernet_trains_and_ranks_a_sample(tmp_path, capsys):
    args = ["supernet", *SMALL, "--strategy", "spos", "--sample", "3", "--store", str(tmp_path / "r.db"),
            "--run-dir", str(tmp_path / "run")]
    assert main(args) == 0
    assert "3 children evaluated" in capsys.readouterr().out
    with Store(tmp_path / "r.db") as store:
        assert len(store.predictions("supernet/uniform/0")) == 3
        assert store.get_run("supernet/uniform/0")["config"]["space"]["resolution"] == 32


def _context(space, strategy, seed=0):
    torch.manual_seed(seed)
    net = space.build_supernet(num_classes=10, in_channels=1, **strategy.supernet_options())
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    strategy.setup(StrategyContext(supernet=net, space=space, optimizer=optimizer, seed=seed, total_epochs=2,
                                   train_size=8))
    return net


def test_fairnas_pada_and_pcdarts_step_on_layers_with_six_or_seven_ops():
    """FairNAS: 7 paths, every op of a 7-op layer once, a 6-op layer's six once and one twice. PA&DA: one
    probability per op of any layer, a first layer drawing among its own six. PC-DARTS: partial channels on
    the layers with a residual. One step each on 8 digits-sized images."""
    space = get_space("mobile", resolution=32, width=0.25)
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8)
    fair = get_strategy("fairnas")
    _context(space, fair)
    paths = fair.paths()
    assert len(paths) == 7
    for c, column in zip(space.choices, zip(*(p.ops for p in paths))):
        assert set(column) == set(c.options) and len(column) == 7
    assert np.isfinite(float(fair.step(x, y).loss))
    pada = get_strategy("pada")
    _context(space, pada)
    assert pada.ops == OPS and pada.probs.shape == (1, 7)
    drawn = [pada.next_arch() for _ in range(50)]
    assert all(a.ops[k] != "skip" for a in drawn for k in (0, 4, 8, 12, 16, 20))
    assert any(a.ops[1] == "skip" for a in drawn)
    pada.end_epoch(0)  # tau = 0 after the first epoch (the authors' schedule)
    pada.step(x, y, indices=torch.arange(8))
    pada.end_epoch(1)  # tau = 1/2: the ops with convolutions gained on skip, which has none
    assert pada.probs[0, 6] < 1 / 7 and pada.probs.sum() == pytest.approx(1.0)
    pc = get_strategy("pcdarts", param="gaea")
    net = _context(space, pc)
    theta = pc.arch.probabilities()  # GAEA starts uniform over the ops each layer offers
    assert theta[0, 6] == 0 and theta[0, 0] == pytest.approx(1 / 6) and theta[1, 6] == pytest.approx(1 / 7)
    assert float(pc.step(x[:4], y[:4], (x[4:], y[4:])).loss) > 0
    assert pc.arch.probabilities()[0, 6] == 0  # never given weight where there is no such op
    assert net.layers[1].choice.partial == 4 and net.layers[4].choice.partial == 1
    assert pc.selected().ops[0] != "skip"


@pytest.mark.parametrize("extra, fragment", [
    ([], "mobile has 2.22e+17 architectures, too many to list or evaluate one by one; sample them instead "
         "(e.g. --sample 1000)"),
    (["--sample", "3", "--sharing", "group:4"], "group sharing partitions every child; mobile has 2.22e+17, too many"),
])
def test_what_needs_every_child_is_refused_in_one_line(tmp_path, capsys, extra, fragment):
    assert main(["supernet", *SMALL, "--store", str(tmp_path / "r.db"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


@pytest.mark.parametrize("strategy, param", [("darts", "gaea"), ("gdas", "softmax")])
def test_differentiable_search_selects_an_architecture(tmp_path, capsys, strategy, param):
    args = ["search", *SMALL, "--strategy", strategy, "--param", param, "--select", "magnitude",
            "--store", str(tmp_path / "r.db"), "--run-dir", str(tmp_path / "run")]
    assert main(args) == 0
    out = capsys.readouterr().out
    chosen = out.split("magnitude: ")[1].split()[0]
    space = get_space("mobile", resolution=32, width=0.25)
    arch = space.parse(chosen)
    assert all(op != "skip" for op in arch.ops[::4])
    with Store(tmp_path / "r.db") as store:
        run_id = f"search/mobile/{strategy}-{param}/0"
        assert [r["method"] for r in store.selections(run_id)] == ["magnitude"]
        assert store.selections(run_id)[0]["arch_index"] is None  # too many architectures for an index column
        assert len(store.run_metrics(run_id, name="entropy")) == 1
