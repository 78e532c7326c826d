"""Load pickles that may only rebuild an explicit allow-list of globals.

A pickle can name any importable callable and have the unpickler call it, so loading a
downloaded file with :func:`pickle.load` runs whatever its author chose. The loader here
resolves a global only when its ``(module, name)`` pair is on a list the caller passes in;
anything else stops the load with a :class:`~wsnas.core.errors.WsnasError` that names the
refused global and the file. Dictionaries, lists, tuples, strings, bytes and numbers need
no globals and always load.

Ready-made allow-lists:

* :data:`NUMPY_ARRAY_GLOBALS`: what pickled numpy arrays, dtypes and numpy scalars need,
  written by numpy 1.x (``numpy.core.*``) or numpy 2.x (``numpy._core.*``), under any
  pickle protocol, by Python 2 or Python 3.
* :data:`BYTES_GLOBALS`: what Python 3 needs to rebuild ``bytes`` pickled with protocol
  0, 1 or 2 (already part of :data:`NUMPY_ARRAY_GLOBALS`).
* :data:`BASIC_GLOBALS`: harmless builtin containers (sets, ordered dicts, ...).

Combine them with set union, e.g. ``NUMPY_ARRAY_GLOBALS | BASIC_GLOBALS``.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import importlib
import os
import pickle
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from wsnas.core.errors import WsnasError

Global = tuple[str, str]

_NUMPY_INTERNAL_PREFIXES = ("numpy.core", "numpy._core")
# Where the installed numpy keeps its internals (renamed to ``numpy._core`` in numpy 2).
_NUMPY_INTERNALS = "numpy._core" if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else "numpy.core"

#: The ``(module, name)`` pairs a pickled ``bytes`` object needs under protocols 0-2 when
#: written by Python 3 (``_codecs.encode(text, "latin1")``). The loader resolves it to a
#: wrapper that accepts only the latin-1 encoding pickle itself uses.
BYTES_GLOBALS: frozenset[Global] = frozenset({("_codecs", "encode")})

#: The ``(module, name)`` pairs pickled numpy arrays, dtypes and numpy scalars need.
#: ``_reconstruct`` and ``_frombuffer`` only build arrays, ``scalar`` only builds a numpy
#: scalar from a dtype and raw bytes; object arrays still need their elements' globals.
NUMPY_ARRAY_GLOBALS: frozenset[Global] = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
    }
    | BYTES_GLOBALS
)

#: Builtin containers and values whose construction has no side effects.
BASIC_GLOBALS: frozenset[Global] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("collections", "OrderedDict"),
    }
)


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that rebuilds bytes the way pickle writes them."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(
            f"_codecs.encode is only allowed to rebuild bytes from latin-1 text, "
            f"not {type(text).__name__} with encoding {encoding!r}"
        )
    return text.encode("latin1", errors)


def _canonical(module: str, name: str) -> Global:
    """Map Python 2 names (``__builtin__.set``, ``copy_reg``) to their Python 3 names."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _importable_module(module: str) -> str:
    """The module to import for ``module`` under the installed numpy.

    numpy 2 renamed ``numpy.core`` to ``numpy._core`` (the old path still imports, with a
    deprecation warning); numpy 1.x has only ``numpy.core``. Either spelling in a file is
    served from the installed numpy's own path.
    """
    for prefix in _NUMPY_INTERNAL_PREFIXES:
        if module == prefix or module.startswith(prefix + "."):
            return _NUMPY_INTERNALS + module[len(prefix) :]
    return module


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``allowed_globals``.

    Args:
        fileobj: a binary file object positioned at the start of the pickle.
        allowed_globals: the ``(module, name)`` pairs that may be resolved. Python 2
            spellings in the file (``__builtin__``, ``copy_reg``) are matched after
            translation to their Python 3 names.
        encoding: how Python 2 ``str`` objects are decoded (``"bytes"`` keeps them as
            bytes, as the CIFAR-10 batch files need).
        what: how the file is named in error messages (usually its path).
    """

    def __init__(
        self,
        fileobj: IO[bytes],
        allowed_globals: Iterable[Global],
        *,
        encoding: str = "ASCII",
        what: str = "file",
    ) -> None:
        super().__init__(fileobj, fix_imports=True, encoding=encoding, errors="strict")
        self.allowed_globals = frozenset(_canonical(m, n) for m, n in allowed_globals)
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` if allowed, else raise :class:`WsnasError`."""
        key = _canonical(module, name)
        if key not in self.allowed_globals:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in self.allowed_globals)) or "none"
            raise WsnasError(
                f"refusing to load {self.what}: it references the global "
                f"{module}.{name}, which is not allowed (allowed: {allowed})"
            )
        if key == ("_codecs", "encode"):
            return _latin1_encode
        resolved_module, resolved_name = key
        target = importlib.import_module(_importable_module(resolved_module))
        try:
            return getattr(target, resolved_name)
        except AttributeError:
            raise pickle.UnpicklingError(
                f"the allowed global {module}.{name} does not exist in this environment"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: they would need an external object store."""
        raise pickle.UnpicklingError("persistent ids are not supported")


def restricted_load(
    fileobj: IO[bytes],
    allowed_globals: Iterable[Global],
    *,
    encoding: str = "ASCII",
    what: str = "file",
) -> object:
    """Unpickle one object from ``fileobj``, resolving only ``allowed_globals``.

    Args:
        fileobj: a binary file object positioned at the start of the pickle.
        allowed_globals: the ``(module, name)`` pairs the pickle may reference, e.g.
            ``NUMPY_ARRAY_GLOBALS | BASIC_GLOBALS``.
        encoding: decoding of Python 2 ``str`` objects; ``"bytes"`` keeps them as bytes.
        what: how the file is named in error messages (usually its path).

    Returns:
        The unpickled object.

    Raises:
        WsnasError: the pickle references a global that is not allowed, or it is
            truncated or corrupt (the one-line message names ``what``).
    """
    try:
        return RestrictedUnpickler(fileobj, allowed_globals, encoding=encoding, what=what).load()
    except WsnasError:
        raise
    except RecursionError as exc:
        raise WsnasError(f"cannot unpickle {what}: it is nested too deeply") from exc
    except Exception as exc:  # any failure of a corrupt pickle is the file's fault
        detail = str(exc) or "unexpected end of data"
        raise WsnasError(
            f"cannot unpickle {what}: the file is truncated or corrupt "
            f"({type(exc).__name__}: {detail})"
        ) from exc


def restricted_load_path(
    path: str | os.PathLike[str],
    allowed_globals: Iterable[Global],
    *,
    encoding: str = "ASCII",
) -> object:
    """Open ``path`` and unpickle it with :func:`restricted_load`, naming it in errors.

    Raises:
        WsnasError: the file cannot be opened, is corrupt, or references a global that
            is not allowed.
    """
    try:
        with open(path, "rb") as fileobj:
            return restricted_load(fileobj, allowed_globals, encoding=encoding, what=str(path))
    except OSError as exc:
        raise WsnasError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from exc
