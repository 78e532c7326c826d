"""What executor jobs share: rebuilding the driver's space and dataset once per worker process.

A job travels small (a space's settings and a :class:`DataSpec`); the worker rebuilds the space
and loads the dataset the first time it sees them and keeps them for the next jobs. Jobs run in
the driver's own process reuse the driver's objects (:class:`Preloaded`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from wsnas.core.errors import WsnasError
from wsnas.data import Dataset, load_dataset
from wsnas.spaces import Space, space_from_description


@dataclass(frozen=True)
class DataSpec:
    """What a worker needs to load the driver's dataset itself: small and picklable."""

    name: str
    data_dir: str | None = None
    split_seed: int = 0
    device: str = "cpu"
    options: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, data: Dataset, device: str | None = None) -> DataSpec:
        """The spec that reloads ``data`` (on ``device``, default the data's own)."""
        data_dir = data.source if data.source and Path(data.source).is_dir() else None
        options: dict = dict(data.options)  # the loader's options as given (the loader's defaults otherwise)
        if data.limit is not None:
            options["limit"] = data.limit
        return cls(name=data.name, data_dir=data_dir, split_seed=int(data.split_seed),
                   device=str(device or data.device), options=tuple(sorted(options.items())))

    def load(self) -> Dataset:
        return load_dataset(self.name, data_dir=self.data_dir, device=self.device,
                            split_seed=self.split_seed, **dict(self.options))


# Per-process cache of rebuilt spaces and loaded datasets: a worker loads each once.
_CACHE: dict[str, object] = {}

#: Test hook: when set to a directory, the first job to start (over all workers) writes its PID
#: to DIR/worker.pid and waits there (up to 120 s) to be killed; its retry then runs normally.
KILL_HOOK_ENV = "WSNAS_TEST_KILL_DIR"


def _key(kind: str, value) -> str:
    return kind + ":" + json.dumps(value, sort_keys=True, default=str)


def job_space(described: dict) -> Space:
    """The space with the settings ``Space.describe()`` returned in the driver."""
    key = _key("space", described)
    if key not in _CACHE:
        _CACHE[key] = space_from_description(described)
    return _CACHE[key]  # type: ignore[return-value]


def job_data(spec: DataSpec, described: dict) -> Dataset:
    """The dataset ``spec`` loads, checked against the driver's ``Dataset.describe()``."""
    key = _key("data", spec)
    if key not in _CACHE:
        data = spec.load()
        if data.describe() != described:
            raise WsnasError(f"the dataset loaded from {spec} differs from the driver's")
        _CACHE[key] = data
    return _CACHE[key]  # type: ignore[return-value]


def kill_hook() -> None:
    """See :data:`KILL_HOOK_ENV` (tests of worker loss only)."""
    folder = os.environ.get(KILL_HOOK_ENV)
    if not folder:
        return
    try:
        fd = os.open(Path(folder) / "worker.pid", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)


class Preloaded:
    """Put the driver's own space and dataset in the cache for the jobs run in this process."""

    def __init__(self, space: Space, space_described: dict, data: Dataset, spec: DataSpec) -> None:
        self.keys = {_key("space", space_described): space, _key("data", spec): data}

    def __enter__(self) -> None:
        self.added = [k for k in self.keys if k not in _CACHE]
        _CACHE.update({k: self.keys[k] for k in self.added})

    def __exit__(self, *exc) -> None:
        for k in self.added:
            _CACHE.pop(k, None)


__all__ = ["KILL_HOOK_ENV", "DataSpec", "Preloaded", "job_data", "job_space", "kill_hook"]
