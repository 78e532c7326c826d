"""Dataset names: built-ins, path forms, ``package.module:function`` and entry-point plugins."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.data import ENTRY_POINT_GROUP, load_dataset, plugin_datasets
from wsnas.execution.jobs import DataSpec

PLUGIN = textwrap.dedent('''
    import numpy as np
    from wsnas.data import build_dataset

    def load(*, data_dir, device, split_seed, classes=3):
        rng = np.random.default_rng(split_seed)
        images = {s: rng.integers(0, 256, size=(n, 1, 6, 6), dtype=np.uint8)
                  for s, n in (("train", 12), ("valid", 6), ("test", 6))}
        labels = {s: np.arange(len(x)) % classes for s, x in images.items()}
        return build_dataset(images, labels, max_value=255, device=device, name="whatever",
                             num_classes=classes, in_channels=1, image_size=6, augment=None,
                             split_seed=split_seed)

    def too_few_classes(*, data_dir, device, split_seed):
        data = load(data_dir=data_dir, device=device, split_seed=split_seed, classes=3)
        data.num_classes = 2
        return data

    def not_a_dataset(**options):
        return [1, 2, 3]

    RESULT = 42
''')


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """An importable module ``wsnas_test_plugin_toy`` with loaders (removed from sys.modules after)."""
    name = "wsnas_test_plugin_toy"
    (tmp_path / f"{name}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def test_unknown_name_lists_every_accepted_name_and_form():
    with pytest.raises(WsnasError) as info:
        load_dataset("mnist")
    message = str(info.value)
    for needle in ("'mnist'", "digits", "cifar10", "cifar100", "ImageNet16-120", "npz:PATH", "folder:DIR",
                   "package.module:function", ENTRY_POINT_GROUP):
        assert needle in message
    assert "\n" not in message
    with pytest.raises(WsnasError, match="unknown dataset 'DIGITS'; accepted: digits, cifar10"):
        load_dataset("DIGITS")  # built-in names are spelt exactly (the commands' defaults are keyed by them)
    with pytest.raises(WsnasError, match="names no path; write it as npz:PATH"):
        load_dataset("npz:")


def test_a_module_function_is_a_dataset(plugin_module):
    data = load_dataset(f"{plugin_module}:load", split_seed=2, classes=4)
    assert data.name == f"{plugin_module}:load" and data.num_classes == 4 and data.options == {"classes": 4}
    again = DataSpec.of(data).load()  # a worker reloads it by its name and options
    assert again.describe() == data.describe() and torch.equal(again.train.x, data.train.x)
    with pytest.raises(WsnasError, match=r"returned a list, expected a wsnas.data.Dataset"):
        load_dataset(f"{plugin_module}:not_a_dataset")
    with pytest.raises(WsnasError, match=r"its train labels span 0..2, but it declares 2 classes"):
        load_dataset(f"{plugin_module}:too_few_classes")
    with pytest.raises(WsnasError, match=r"cannot be called as loader\(data_dir=.*'colour'"):
        load_dataset(f"{plugin_module}:load", colour=1)
    with pytest.raises(WsnasError, match=rf"module '{plugin_module}' has no 'missing'"):
        load_dataset(f"{plugin_module}:missing")
    with pytest.raises(WsnasError, match=r"'wsnas_test_plugin_toy:RESULT' is a int, not a loader function"):
        load_dataset(f"{plugin_module}:RESULT")
    with pytest.raises(WsnasError, match=r"cannot import module 'no_such_module_xyz' .*ModuleNotFoundError"):
        load_dataset("no_such_module_xyz:load")


def test_an_installed_entry_point_adds_a_named_dataset(tmp_path, monkeypatch, plugin_module):
    """What `pip install` of a package declaring the entry point leaves on sys.path: a dist-info."""
    dist = tmp_path / "wsnas_toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wsnas-toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoyset = {plugin_module}:load\n"
                                           f"broken = {plugin_module}_gone:load\n")
    assert {"toyset", "broken"} <= set(plugin_datasets())
    data = load_dataset("toyset", classes=2)
    assert data.name == "toyset" and data.num_classes == 2 and (data.in_channels, data.image_size) == (1, 6)
    with pytest.raises(WsnasError, match=r"plugins installed: broken, toyset"):
        load_dataset("nothing")
    with pytest.raises(WsnasError, match=r"dataset 'broken': cannot load the plugin .*wsnas-toy-plugin.*"
                                         r"ModuleNotFoundError"):
        load_dataset("broken")


def test_path_datasets_reload_identically_from_their_spec(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", x_train=rng.integers(0, 256, (20, 5, 5, 3), dtype=np.uint8),
             y_train=np.arange(20) % 2, x_test=rng.integers(0, 256, (6, 5, 5, 3), dtype=np.uint8),
             y_test=np.arange(6) % 2)
    monkeypatch.chdir(tmp_path)
    data = load_dataset("npz:a.npz", valid_size=4, limit=5)  # a relative path: the name holds it absolute
    assert data.name == f"npz:{tmp_path.resolve() / 'a.npz'}"
    monkeypatch.chdir("/")
    again = DataSpec.of(data).load()
    assert again.describe() == data.describe()
    for split in ("train", "valid", "test"):
        assert torch.equal(again.split(split).x, data.split(split).x)
