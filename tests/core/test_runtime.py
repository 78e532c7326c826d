"""The allocator settings the wsnas commands apply (glibc's mallopt), in fresh processes."""

import os
import subprocess
import sys

import pytest

from wsnas.core.errors import WsnasError
from wsnas.core.runtime import allocator_setting

# a process that runs eight NB201 forward/backward passes (after three of warm-up): every
# pass frees its activations and allocates them again in the next one; with glibc's thresholds
# part of that memory is given back to the system and faulted in again, tuned it is reused
CHURN = r"""
import resource
import torch
from wsnas.core.runtime import tune_allocator
from wsnas.spaces import get_space
applied = tune_allocator()
torch.set_num_threads(1)
space = get_space("nb201", channels=16, cells_per_stage=1)
net = space.build_supernet(num_classes=10)
x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
archs = space.sample(8, 0)
def step(arch):
    torch.nn.functional.cross_entropy(net(x, arch), y).backward()
for arch in archs[:3]:
    step(arch)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for arch in archs:
    step(arch)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                           reason="glibc only")


def _churn(**env) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "WSNAS_MALLOC"}
    out = subprocess.run([sys.executable, "-c", CHURN], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


@glibc
def test_tuned_allocator_reuses_freed_memory():
    applied, faults = _churn()
    assert applied
    system_applied, system_faults = _churn(WSNAS_MALLOC="system")
    assert not system_applied
    # measured: 40,000-60,000 page faults with glibc's thresholds, 6,000-10,500 tuned
    assert system_faults > 20_000 and faults < system_faults / 3


@glibc
def test_a_users_own_malloc_setting_is_left_alone():
    applied, _ = _churn(MALLOC_ARENA_MAX="2")
    assert not applied


def test_bad_setting_is_one_line_error(monkeypatch):
    monkeypatch.setenv("WSNAS_MALLOC", "jemalloc")
    with pytest.raises(WsnasError, match=r"WSNAS_MALLOC='jemalloc' not understood; accepted: tuned, system"):
        allocator_setting()
    monkeypatch.setenv("WSNAS_MALLOC", "System")
    assert allocator_setting() == "system"


def _nb201_pair():
    import copy

    import torch

    from wsnas.spaces import get_space

    space = get_space("nb201", channels=4, cells_per_stage=1, affine=False, track_running_stats=False)
    torch.manual_seed(0)
    net = space.build_supernet(num_classes=10)
    return space, net, copy.deepcopy(net)


def _step(space, net, x, y, arch):
    import torch

    from wsnas.strategies import StrategyContext, get_strategy
    from wsnas.strategies.base import train_path

    strategy = get_strategy("uniform")
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    strategy.setup(StrategyContext(supernet=net, space=space, optimizer=opt, seed=0, total_epochs=1))
    return float(train_path(strategy, arch, x, y).loss)


def test_channels_last_trains_the_same_up_to_rounding(monkeypatch):
    import torch

    from wsnas.core.runtime import CHANNELS_LAST_ENV, channels_last, prepare_model

    monkeypatch.setenv(CHANNELS_LAST_ENV, "0")
    space, plain, fast = _nb201_pair()
    assert prepare_model(fast) is fast and not fast.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setenv(CHANNELS_LAST_ENV, "1")
    assert channels_last()
    prepare_model(prepare_model(fast))  # twice: one input hook
    assert fast.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert len(fast._forward_pre_hooks) == 1
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
    for arch in space.sample(3, 1):
        assert _step(space, fast, x, y, arch) == pytest.approx(_step(space, plain, x, y, arch), rel=1e-5)
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_channels_last_flag_runs_a_supernet(tmp_path, capsys, monkeypatch):
    from wsnas.cli import main
    from wsnas.core.runtime import CHANNELS_LAST_ENV, channels_last

    monkeypatch.setenv(CHANNELS_LAST_ENV, "0")
    assert main(["supernet", "--space", "nb201", "--space-option", "channels=4", "--space-option",
                 "cells_per_stage=1", "--strategy", "spos", "--sample", "3", "--epochs", "1", "--channels-last",
                 "--store", str(tmp_path / "r.db"), "--run-dir", str(tmp_path / "run"), "--no-progress",
                 "--threads", "1"]) == 0
    assert channels_last() and "3 children evaluated" in capsys.readouterr().out


def test_bf16_autocast_trains_close_to_fp32_and_is_part_of_the_settings(monkeypatch):
    import torch

    from wsnas.core.runtime import CHANNELS_LAST_ENV, prepare_model
    from wsnas.training.standalone import TrainConfig

    monkeypatch.setenv(CHANNELS_LAST_ENV, "0")
    space, plain, fast = _nb201_pair()
    prepare_model(prepare_model(fast, "bf16"), "bf16")
    assert len(fast._forward_pre_hooks) == 1 and len(fast._forward_hooks) == 1
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
    arch = space.sample(1, 2)[0]
    with torch.no_grad():
        out = fast(x, arch)
        assert out.dtype == torch.float32  # logits back in fp32
        assert not torch.is_autocast_enabled("cpu")  # the context is left after the forward pass
        torch.testing.assert_close(out, plain(x, arch), rtol=5e-2, atol=5e-2)
        assert not torch.equal(out, plain(x, arch))  # bf16 really ran
    assert _step(space, fast, x, y, arch) == pytest.approx(_step(space, plain, x, y, arch), rel=2e-2)
    # fp32 keeps the identity runs had before the option; bf16 is part of it
    assert "precision" not in TrainConfig().to_dict()
    assert TrainConfig(precision="bf16").to_dict()["precision"] == "bf16"
    with pytest.raises(WsnasError, match="precision 'fp16' not understood; accepted: fp32, bf16"):
        TrainConfig(precision="fp16")


def test_autocast_is_left_when_the_forward_pass_fails(monkeypatch):
    import torch

    from wsnas.core.runtime import prepare_model

    _, _, net = _nb201_pair()
    prepare_model(net, "bf16")
    with pytest.raises(ValueError, match="a nb201 path has 6 specs"):
        net(torch.randn(2, 3, 8, 8), ["not a spec"])
    assert not torch.is_autocast_enabled("cpu") and net._wsnas_autocast == []


def test_precision_flag_trains_a_bf16_supernet_and_is_part_of_its_identity(tmp_path, capsys):
    from wsnas.cli import main

    args = ["supernet", "--space", "nb201", "--space-option", "channels=4", "--space-option", "cells_per_stage=1",
            "--strategy", "spos", "--sample", "3", "--epochs", "1", "--store", str(tmp_path / "r.db"),
            "--run-dir", str(tmp_path / "run"), "--no-progress", "--threads", "1"]
    assert main([*args, "--precision", "bf16"]) == 0
    assert "3 children evaluated" in capsys.readouterr().out
    assert main(args) == 2  # the same run in fp32 is another configuration
    assert 'supernet.train.precision: "bf16" -> (absent)' in capsys.readouterr().err


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_finetuning_runs_at_the_supernets_precision(monkeypatch, precision):
    import torch

    import wsnas.training.finetune as finetune
    from wsnas.core.runtime import prepare_model
    from wsnas.data.registry import load_dataset
    from wsnas.evaluator import EvalConfig
    from wsnas.spaces import get_space

    data = load_dataset("digits")
    space = get_space("nb201", channels=4, cells_per_stage=1)
    torch.manual_seed(0)
    supernet = prepare_model(space.build_supernet(num_classes=data.num_classes, in_channels=data.in_channels),
                             precision)
    seen = []
    monkeypatch.setattr(finetune, "prepare_model", lambda m, p="fp32": seen.append(p) or prepare_model(m, p))
    batches = [(data.train.x[:32], data.train.y[:32])]
    scores = finetune.finetune_child(supernet, space, space.sample(1, 0)[0], data, finetune.FinetuneConfig(steps=1),
                                     batches, EvalConfig(batch_size=256))
    assert seen == [precision] and len(scores) == 2
