"""Spaces from outside the package: ``--space module:factory`` and the ``wsnas.spaces`` entry points,
with examples/my_space.py as the plug-in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from wsnas.cli import main
from wsnas.core.errors import WsnasError
from wsnas.execution.jobs import job_space
from wsnas.spaces import get_space, space_from_description, space_names
from wsnas.store import Store

ROOT = Path(__file__).resolve().parents[2]
SPEC = "examples.my_space:make_space"


@pytest.fixture
def on_path(monkeypatch):
    """The repository root on sys.path, as an installed package or PYTHONPATH would put it."""
    monkeypatch.syspath_prepend(str(ROOT))


def test_module_factory_builds_the_example_space_with_its_options(on_path):
    space = get_space(SPEC, width=4, depth=2)
    assert space.name == "chain" and len(space) == 9 and space.width == 4
    arch = space.parse("conv5, skip")
    assert space.format(arch) == "conv5,skip" and space.from_index(space.index(arch)) == arch
    # the run records where the space came from, so a worker (or `wsnas select`) rebuilds it
    described = space.describe()
    assert described == {"space": "chain", "source": SPEC, "width": 4, "depth": 2}
    again = space_from_description(described)
    assert again.describe() == described and job_space(described).describe() == described
    # every mode of the supernet: single path, weighted sum, masked sum
    net, x = space.build_supernet(num_classes=3, in_channels=1), torch.randn(2, 1, 8, 8)
    assert net(x, arch).shape == (2, 3)
    weights = torch.softmax(torch.randn(2, 3), 1)
    assert net(x, list(weights)).shape == (2, 3)
    masked = [torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])]
    standalone = space.build_network(space.parse("conv3,skip"), num_classes=3, in_channels=1)
    standalone.load_state_dict({k: v for k, v in net.state_dict().items() if k in standalone.state_dict()})
    net.eval()
    standalone.eval()
    torch.testing.assert_close(net(x, masked), standalone(x))


@pytest.mark.parametrize("name, fragment", [
    ("chain", "unknown space 'chain'; accepted: tiny64, darts, nb201"),
    ("chain", "or MODULE:FACTORY"),
    ("no_such_module:make", "cannot import module 'no_such_module'"),
    ("examples.my_space:nothing", "module 'examples.my_space' has no 'nothing'"),
    ("examples.my_space:OPS", "'OPS' is a tuple, not a function or class"),
    ("examples.my_space:make_op", "bad option for space 'examples.my_space:make_op'"),
    (":make_space", "bad space ':make_space'; accepted: a space name"),
])
def test_bad_names_are_one_line_errors(on_path, name, fragment):
    with pytest.raises(WsnasError) as err:
        get_space(name)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bad_plugins_are_refused_when_loaded(on_path, tmp_path, monkeypatch):
    (tmp_path / "bad_spaces.py").write_text(
        "from wsnas.spaces import Space\n"
        "class Named(Space):\n    name = 'tiny64'\n"
        "class Forgets(Space):\n    name = 'forgets'\n    def describe(self):\n        return {'space': self.name}\n"
        "def not_a_space():\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec, fragment in [("bad_spaces:not_a_space", "returned int, not a wsnas.spaces.Space"),
                           ("bad_spaces:Named", "is called 'tiny64', the name of a built-in space"),
                           ("bad_spaces:Forgets", "start it from super().describe()")]:
        with pytest.raises(WsnasError) as err:
            get_space(spec)
        assert fragment in str(err.value)
    with pytest.raises(WsnasError, match="bad option for space 'examples.my_space:make_space'"):
        get_space(SPEC, colour="red")


def test_an_installed_distribution_adds_a_named_space(tmp_path, monkeypatch):
    """A distribution's entry point (group wsnas.spaces) names the space; importlib.metadata finds the
    fake distribution's metadata on sys.path as it finds an installed one's. The module is on the
    path by its own folder, as a file."""
    dist = tmp_path / "chain_space-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: chain-space\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[wsnas.spaces]\nchain = my_space:make_space\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    assert space_names()[:3] == ["tiny64", "darts", "nb201"] and "chain" in space_names()
    space = get_space("chain", depth=2)
    assert space.name == "chain" and space.describe() == {"space": "chain", "width": 8, "depth": 2}
    assert space_from_description(space.describe()).describe() == space.describe()
    assert main(["spaces"]) == 0  # listed with the built-in spaces


def test_a_plugin_space_trains_and_ranks_from_the_command_line(on_path, tmp_path, capsys, monkeypatch):
    """A short supernet through the CLI, in process: every one of the 27 children ranked."""
    monkeypatch.chdir(tmp_path)
    args = ["supernet", "--space", SPEC, "--space-option", "width=4", "--epochs", "1", "--batch-size", "128",
            "--data-option", "limit=200", "--no-progress", "--threads", "1", "--store", "r.db"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "27 children evaluated" in out and "best children with shared weights: " in out
    with Store(tmp_path / "r.db") as store:
        run = store.get_run("supernet/uniform/0")
        assert run["config"]["space"] == {"space": "chain", "source": SPEC, "width": 4, "depth": 3}
        assert len(store.predictions("supernet/uniform/0")) == 27
    assert main(["spaces", "--space", SPEC, "--arch", "conv3,skip,conv5"]) == 0
    assert capsys.readouterr().out.startswith("7\tconv3,skip,conv5\t")
    assert main(["spaces", "--space", SPEC, "--arch", "conv3,conv9,skip"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown option 'conv9' for layer1; accepted: conv3, conv5, skip" in err and "\n" not in err


def test_the_current_directory_is_tried_when_the_module_is_not_on_the_path(tmp_path, monkeypatch):
    """A console script does not put the current directory on sys.path; the module is found there anyway."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(ROOT), ".")])
    for name in [m for m in sys.modules if m == "examples" or m.startswith("examples.")]:
        monkeypatch.delitem(sys.modules, name)
    assert get_space(SPEC).name == "chain"
