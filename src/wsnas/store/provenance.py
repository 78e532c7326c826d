"""Where a stored result came from: the identity of its config, the code that made it, and when.

* :func:`config_hash`: a stable hash of a config (canonical JSON), the key that keeps results of
  different configurations apart.
* :func:`code_version`: the wsnas version plus the git commit it ran from.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import wsnas
from wsnas.core.errors import WsnasError


def _json_default(value: Any) -> Any:
    """Plain JSON for the non-JSON values that configs commonly hold."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON serializable")


def canonical_json(config: Any) -> str:
    """Canonical JSON of a config: sorted keys, no whitespace, ASCII only, no NaN."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise WsnasError(f"a config must be a dict of settings, not {type(config).__name__} "
                         f"{config!r}")
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise WsnasError(f"config cannot be stored as JSON: {exc}; use numbers, strings, "
                         "booleans, None, lists and dicts with string keys") from None


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable identity of a config: the first 16 hex digits of sha256 of its canonical JSON.

    Key order does not matter; types do (``1`` and ``1.0`` hash differently), as do all values.
    Paths, numpy scalars and arrays, sets and dataclasses are converted to plain JSON first.
    """
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()[:16]


def _git(args: list[str], cwd: Path) -> str | None:
    """Output of a read-only git command, or None when git is missing or the command fails."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take the index lock
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.cache
def code_version() -> str:
    """The wsnas version, plus the short git commit when running from a git checkout.

    ``0.1.0`` for an installed package; ``0.1.0+6d54006`` from a clean checkout;
    ``0.1.0+6d54006+dirty`` when the package's source files have uncommitted changes (files
    outside the package, such as tests, do not count). Computed once per process.
    """
    package_dir = Path(wsnas.__file__).resolve().parent
    # Only a checkout that tracks the package's own files says which code ran; a git repository
    # that merely contains an installed copy (e.g. a virtualenv inside a project) does not.
    if _git(["ls-files", "--error-unmatch", "__init__.py"], package_dir) is None:
        return wsnas.__version__
    head = (_git(["rev-parse", "--short", "HEAD"], package_dir) or "").strip()
    if not head:
        return wsnas.__version__
    status = _git(["status", "--porcelain", "--", "."], package_dir)
    dirty = "+dirty" if status and status.strip() else ""
    return f"{wsnas.__version__}+{head}{dirty}"


def utc_now() -> str:
    """The current UTC time as ISO 8601 with milliseconds, e.g. ``2026-05-09T07:35:25.123Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
