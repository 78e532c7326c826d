"""Tests of the provenance of stored results: config hashes and the code version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIG, HASH

import wsnas
from wsnas.core.errors import WsnasError
from wsnas.store import code_version, config_hash


def test_config_hash_is_stable_and_sensitive():
    assert HASH == config_hash({"epochs": 3, "data": {"split_seed": 0, "name": "digits"},
                                "lr": 0.1})
    assert len(HASH) == 16 and int(HASH, 16) >= 0
    assert config_hash({**CONFIG, "lr": 0.2}) != HASH
    assert config_hash({"a": 1}) != config_hash({"a": 1.0})
    assert config_hash({"root": Path("/data")}) == config_hash({"root": "/data"})
    assert config_hash({"n": np.int64(3)}) == config_hash({"n": 3})
    with pytest.raises(WsnasError, match="JSON"):
        config_hash({"x": object()})
    with pytest.raises(WsnasError, match="JSON"):
        config_hash({"x": float("nan")})


def test_code_version_names_the_package_version_and_is_cached():
    version = code_version()
    assert version == wsnas.__version__ or version.startswith(wsnas.__version__ + "+")
    assert code_version() is version
