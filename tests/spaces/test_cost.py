import json

import pytest
import torch
from torch import nn

from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.spaces import get_space
from wsnas.spaces.cost import DATASETS, cost_of, count_flops, count_parameters, dataset_shape

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


def test_the_official_figures_of_the_all_conv_cell(space):
    cost = cost_of(space, space.parse(ALL_CONV), "cifar10")
    assert cost["params"] == 1_531_546
    assert cost["mflops"] == 220.12
    assert cost["params_m"] == pytest.approx(1.531546)
    assert cost["macs"] == 220_119_690


@pytest.mark.parametrize("text", [ALL_NONE, ALL_SKIP])
def test_parameter_free_cells_by_hand(space, text):
    # The cells hold no parameter and cost nothing, so only the fixed parts remain (C=16, 32x32):
    #   stem conv 3*16*9 = 432 weights + BN 2*16                                 =    464
    #   block 16->32: conv_a 16*32*9 + BN 64 + conv_b 32*32*9 + BN 64 + 1x1 16*32 = 14,464
    #   block 32->64: conv_a 32*64*9 + BN 128 + conv_b 64*64*9 + BN 128 + 32*64   = 57,600
    #   last BN 2*64 = 128; classifier 64*10 + 10 = 650                  -> params 73,306
    # MACs (per output pixel times output pixels):
    #   stem 432*32*32 = 442,368
    #   block 1 at 16x16: (4,608 + 9,216 + 512)*256 = 3,670,016; block 2 at 8x8: (18,432 + 36,864 + 2,048)*64
    #   = 3,670,016; classifier 640 + 10 bias = 650           -> 7,783,050 MACs, 7.78 MFLOPs
    cost = cost_of(space, space.parse(text), "cifar10")
    assert cost["params"] == 464 + 14_464 + 57_600 + 128 + 650 == 73_306
    assert cost["macs"] == 442_368 + 2 * 3_670_016 + 650 == 7_783_050
    assert cost["mflops"] == 7.78


def test_datasets(space):
    assert DATASETS["ImageNet16-120"] == (120, 3, 16) == dataset_shape("imagenet16-120")
    arch = space.parse(ALL_NONE)
    # ImageNet16-120: classifier 64*120 + 120 = 7,800 instead of 650; every feature map a quarter
    cost = cost_of(space, arch, "ImageNet16-120")
    assert cost["params"] == 73_306 - 650 + 7_800
    assert cost["macs"] == (442_368 + 2 * 3_670_016) // 4 + 7_800
    digits = cost_of(space, arch, "digits")  # one input channel, 8x8
    assert digits["params"] == 73_306 - 2 * 16 * 9
    with pytest.raises(WsnasError, match="unknown dataset 'mnist'; accepted: cifar10"):
        cost_of(space, arch, "mnist")


def test_counters_on_a_small_model():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.BatchNorm2d(4), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 3, bias=False))
    assert count_parameters(model) == 4 * 1 * 9 + 4 + 8 + 100 * 3
    model.train()
    macs = count_flops(model, (2, 5, 5))
    assert macs == (9 * 1 + 1) * 4 * 25 + 100 * 3
    assert model.training  # mode restored
    assert count_flops(model, (3, 2, 5, 5)) == macs  # per image
    with pytest.raises(WsnasError, match="input shape"):
        count_flops(model, (5, 5))


def test_count_flops_passes_forward_kwargs():
    space = get_space("nb201", channels=4, cells_per_stage=1)
    supernet = space.build_supernet(num_classes=10)
    arch = space.parse(ALL_CONV)
    child = space.build_network(arch, num_classes=10)
    assert count_flops(supernet, (3, 8, 8), {"path": arch}) == count_flops(child, (3, 8, 8))


def test_cli_plain_and_json(capsys):
    assert main(["cost", "--space", "nb201", "--arch", ALL_CONV]) == 0
    out = capsys.readouterr().out
    assert "1,531,546" in out and "220.12" in out and "cifar10" in out
    assert main(["cost", "--arch", "9", "--dataset", "cifar100", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["arch"] == "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert data["dataset"] == "cifar100" and data["space"] == "nb201"
    assert set(data) >= {"params", "mflops", "params_m"}
    assert main(["cost", "--genotype", ALL_NONE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 73_306
    assert main(["cost", "--space", "tiny64", "--arch", "434", "--dataset", "digits"]) == 0
    assert "tiny64" in capsys.readouterr().out


@pytest.mark.parametrize("argv, word", [
    (["--arch", "|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown op 'bad'"),
    (["--arch", "20000"], "0..15624"),
    (["--arch", "0", "--dataset", "mnist"], "unknown dataset"),
    (["--arch", "0", "--space-option", "channels=0"], "channels"),
])
def test_cli_errors_exit_2_with_one_line(capsys, argv, word):
    assert main(["cost", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("wsnas cost: error:") and word in err


def test_latency_is_the_median_of_timed_passes_after_a_warm_up(monkeypatch):
    import wsnas.spaces.cost as cost_module

    calls = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            calls.append((tuple(x.shape), self.training, torch.is_grad_enabled()))
            return x

    clock = iter([0.0, 0.003, 1.0, 1.001, 2.0, 2.010])  # three timed passes: 3, 1 and 10 ms
    monkeypatch.setattr(cost_module, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: next(clock))}))
    assert cost_module.measure_latency(Probe().train(), (1, 3, 8, 8), "cpu", warmup=2, repeats=3) == pytest.approx(3)
    assert calls == [((1, 3, 8, 8), False, False)] * 5
