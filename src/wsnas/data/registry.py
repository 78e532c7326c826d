"""Dataset names and the loader behind each: the one entry point, :func:`load_dataset`.

A dataset is named in one of these forms (:func:`resolve_dataset`), tried in this order:

1. a built-in name, a key of :data:`DATASETS` (spelt exactly: the commands key their
   per-dataset defaults by it): ``digits``, ``cifar10``,
   ``cifar100``, ``ImageNet16-120``;
2. ``npz:PATH``: numpy arrays in a ``.npz`` file (:mod:`wsnas.data.arrays`);
3. ``folder:DIR``: image files, one sub-folder per class (:mod:`wsnas.data.folder`);
4. the name of an installed plugin: an entry point of the group ``wsnas.datasets``
   (:data:`ENTRY_POINT_GROUP`), so that ``pip install`` of a package whose metadata declares
   ``[project.entry-points."wsnas.datasets"] mydata = "mypkg.data:load"`` adds ``mydata``;
5. ``package.module:function``: a function imported from any importable module.

Plugins and modules follow one contract: the object named is a :class:`DatasetLoader`,
called as ``loader(data_dir=..., device=torch.device, split_seed=int, **options)`` with
``--data-dir`` and the ``--data-option`` values (``limit`` aside, which :func:`load_dataset`
applies to every dataset), and returns a :class:`~wsnas.data.base.Dataset` whose splits are on
``device`` (``wsnas.data.base.build_dataset`` builds one from integer images). Its ``name`` is
set to the name it was loaded by, so that a worker process loads the same dataset again.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from wsnas.core.errors import WsnasError
from wsnas.data.arrays import PREFIX as NPZ_PREFIX
from wsnas.data.arrays import load_npz
from wsnas.data.base import SPLIT_NAMES, Dataset, Split, check_seed, resolve_device
from wsnas.data.cifar import load_cifar10
from wsnas.data.cifar100 import load_cifar100
from wsnas.data.digits import load_digits_dataset
from wsnas.data.folder import PREFIX as FOLDER_PREFIX
from wsnas.data.folder import load_folder
from wsnas.data.imagenet16 import load_imagenet16_120
from wsnas.data.stratify import stratified_split


class DatasetLoader(Protocol):
    """A function that builds a :class:`Dataset` (options are dataset-specific)."""

    def __call__(
        self,
        *,
        data_dir: str | Path | None,
        device: torch.device,
        split_seed: int,
        **options: Any,
    ) -> Dataset: ...


#: Dataset name -> loader. A new dataset plugs in by adding its loader here.
DATASETS: dict[str, DatasetLoader] = {
    "digits": load_digits_dataset,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "ImageNet16-120": load_imagenet16_120,
}

#: The entry-point group an installed package adds named datasets to.
ENTRY_POINT_GROUP = "wsnas.datasets"

#: The forms of a dataset name besides the built-in names, for help texts and messages.
NAME_FORMS = (
    f"{NPZ_PREFIX}PATH (numpy arrays)",
    f"{FOLDER_PREFIX}DIR (one sub-folder of images per class)",
    f"a plugin's name (entry-point group {ENTRY_POINT_GROUP})",
    "package.module:function (a loader)",
)

_MODULE_FORM = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


def plugin_datasets() -> dict[str, EntryPoint]:
    """The datasets installed packages add: entry-point name -> entry point (group ``wsnas.datasets``)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def accepted_names() -> str:
    """Every accepted dataset name and form, for messages."""
    plugins = sorted(plugin_datasets())
    installed = f"; plugins installed: {', '.join(plugins)}" if plugins else ""
    return f"{', '.join(DATASETS)}{installed}; or {'; '.join(NAME_FORMS)}"


def _path_of(name: str, prefix: str) -> Path:
    raw = name[len(prefix):].strip()
    if not raw:
        raise WsnasError(f"dataset {name!r} names no path; write it as {prefix}PATH")
    return Path(raw).expanduser().resolve()


def _load_object(name: str, target: str, what: str) -> Any:
    """``module:attribute`` imported; ``what`` says where the reference came from, for messages."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of the user's module, whatever its kind
        raise WsnasError(f"dataset {name!r}: cannot import module {module_name!r} ({what}): "
                         f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
    loader = getattr(module, attr, None)
    if loader is None:
        raise WsnasError(f"dataset {name!r}: module {module_name!r} has no {attr!r} ({what})")
    if not callable(loader):
        raise WsnasError(f"dataset {name!r}: {target!r} is a {type(loader).__name__}, not a loader function ({what})")
    return loader


def resolve_dataset(name: str) -> tuple[str, DatasetLoader, bool]:
    """``(canonical name, loader, is_plugin)`` of a dataset name in any accepted form.

    The canonical name is a built-in name, ``npz:``/``folder:`` with an absolute path, or the
    plugin's name as given.

    Raises:
        WsnasError: the name matches no form (the message lists them all), or a plugin or
            module cannot be imported.
    """
    key = str(name).strip()
    if key in DATASETS:
        return key, DATASETS[key], False
    if key.startswith(NPZ_PREFIX):
        path = _path_of(key, NPZ_PREFIX)
        return f"{NPZ_PREFIX}{path}", partial(load_npz, path), False
    if key.startswith(FOLDER_PREFIX):
        path = _path_of(key, FOLDER_PREFIX)
        return f"{FOLDER_PREFIX}{path}", partial(load_folder, path), False
    plugins = plugin_datasets()
    if key in plugins:
        ep = plugins[key]
        try:
            loader = ep.load()
        except Exception as exc:  # whatever the plugin's import raises
            dist = getattr(getattr(ep, "dist", None), "name", None)
            raise WsnasError(f"dataset {key!r}: cannot load the plugin {ep.value!r} (entry point of group "
                             f"{ENTRY_POINT_GROUP}{', package ' + dist if dist else ''}): "
                             f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc
        if not callable(loader):
            raise WsnasError(f"dataset {key!r}: the plugin {ep.value!r} is a {type(loader).__name__}, "
                             "not a loader function")
        return key, loader, True
    if _MODULE_FORM.match(key):
        return key, _load_object(key, key, "named by package.module:function"), True
    raise WsnasError(f"unknown dataset {key!r}; accepted: {accepted_names()}")


def check_dataset(data: Any, name: str) -> Dataset:
    """``data`` if it is a consistent :class:`Dataset` (a plugin's result), else a one-line error."""
    if not isinstance(data, Dataset):
        raise WsnasError(f"dataset loader {name!r} returned a {type(data).__name__}, expected a "
                         "wsnas.data.Dataset (see wsnas.data.build_dataset)")
    shape = (data.in_channels, data.image_size, data.image_size)
    for split_name in SPLIT_NAMES:
        split = data.split(split_name)
        if not isinstance(split, Split):
            raise WsnasError(f"dataset {name!r}: its {split_name} split is a {type(split).__name__}, not a Split")
        if tuple(split.x.shape[1:]) != shape or split.device != data.device:
            raise WsnasError(f"dataset {name!r}: its {split_name} images are {tuple(split.x.shape[1:])} on "
                             f"{split.device}, but it declares {shape} (in_channels, image_size) on {data.device}")
        if len(split) and (int(split.y.min()) < 0 or int(split.y.max()) >= data.num_classes):
            raise WsnasError(f"dataset {name!r}: its {split_name} labels span {int(split.y.min())}.."
                             f"{int(split.y.max())}, but it declares {data.num_classes} classes")
    return data


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    split_seed: int = 0,
    **options: Any,
) -> Dataset:
    """Load dataset ``name`` with every split resident on ``device``.

    Args:
        name: a key of :data:`DATASETS` (``digits``, ``cifar10``, ``cifar100``,
            ``ImageNet16-120``), ``npz:PATH``, ``folder:DIR``, a plugin's name or
            ``package.module:function`` (see :func:`resolve_dataset`).
        data_dir: where the files are, for datasets that are not bundled (not used by
            ``npz:`` and ``folder:``, whose path is part of the name).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or a ``torch.device``.
        split_seed: seed of the stratified split into train/valid(/test); the same seed
            gives the same split on every machine.
        **options: dataset-specific options (e.g. ``valid_size``, ``augment``); unknown
            ones raise :class:`WsnasError`. One option every dataset takes: ``limit=N``
            keeps at most N images of each split, a class-balanced subset (seeded by
            ``split_seed``) in the split's order, for quick trials and tests; the
            normalisation stays that of the whole train split.

    Raises:
        WsnasError: unknown name (the message lists the accepted names and forms), device,
            seed or option, or missing/corrupt files.
    """
    canonical, loader, plugin = resolve_dataset(name)
    limit = check_limit(options.pop("limit", None))
    split_seed = check_seed(split_seed)
    device = resolve_device(device)
    if plugin:
        try:
            data = loader(data_dir=data_dir, device=device, split_seed=split_seed, **options)
        except TypeError as exc:
            raise WsnasError(f"dataset loader {canonical!r} cannot be called as loader(data_dir=..., device=..., "
                             f"split_seed=..., **options) with options {sorted(options)}: {exc}") from exc
        data = check_dataset(data, canonical)
    else:
        data = loader(data_dir=data_dir, device=device, split_seed=split_seed, **options)
    data = dataclasses.replace(data, name=canonical, options=dict(options))
    return data if limit is None else limit_dataset(data, limit)


def reload_described(described: dict[str, Any], *, data_dir: str | Path | None = None,
                     device: str | torch.device = "cpu", what: str = "the run") -> Dataset:
    """The dataset a run trained on, from the ``Dataset.describe()`` stored with it.

    Loads ``described["name"]`` from ``data_dir`` (default: its recorded source, when that is
    still a folder) with its split seed, its loader options and its ``limit``; a run stored
    before datasets recorded their options gets its augmentation (and, on cifar10, its valid
    size) back from the description. Raises :class:`WsnasError` naming ``what`` when the data
    loaded differs from the description (another folder, another version of the files).
    """
    d = described
    source = data_dir or (d.get("source") if d.get("source") and Path(d["source"]).is_dir() else None)
    limit = {"limit": d["limit"]} if d.get("limit") is not None else {}

    def load(**options: Any) -> Dataset:
        return load_dataset(d["name"], data_dir=source, device=device, split_seed=d.get("split_seed", 0),
                            **options, **limit)

    def same(data: Dataset) -> bool:  # the source folder may have moved
        return ({k: v for k, v in data.describe().items() if k != "source"}
                == {k: v for k, v in d.items() if k != "source"})

    data = load(**d.get("options", {}))
    if not same(data) and "options" not in d:
        # stored before describe() recorded the loader's options: the augmentation (and cifar10's
        # valid size) from the description, the options left out of the identity as they were then
        legacy = {"augment": d.get("augment")}
        if d["name"] == "cifar10" and not limit:
            legacy["valid_size"] = d["sizes"]["valid"]
        data = dataclasses.replace(load(**legacy), options={})
    if not same(data):
        raise WsnasError(f"the dataset loaded for {what} differs from the one it trained on ({d['name']!r} "
                         f"from {source or 'its built-in copy'}); give its folder with --data-dir")
    return data


def check_limit(limit: Any) -> int | None:
    """``limit`` as a positive int (strings from the command line included), or None."""
    if limit is None:
        return None
    try:
        value = int(str(limit))
    except ValueError:
        value = 0
    if value < 1:
        raise WsnasError(f"data option limit must be a positive number of images per split, got {limit!r}")
    return value


def limit_dataset(data: Dataset, limit: int) -> Dataset:
    """``data`` with at most ``limit`` images per split: a stratified subset (each class within
    one image of its share), drawn with the dataset's split seed, kept in the split's order."""
    cut = {}
    for name in SPLIT_NAMES:
        split = data.split(name)
        n = len(split.y)
        if n <= limit:
            cut[name] = split
            continue
        labels = split.y.cpu().numpy()
        keep = stratified_split(labels, (limit, n - limit), data.split_seed)[0]
        idx = torch.from_numpy(np.asarray(keep)).to(split.y.device)
        cut[name] = Split(split.x[idx], split.y[idx])
    return dataclasses.replace(data, **cut, limit=limit, valid_before_limit=len(data.valid))
