"""Search spaces. ``get_space(name, **options)`` builds one by name.

A name is one of

* a built-in space (:data:`SPACES`: ``tiny64``, ``darts``, ``nb201``, ``mobile``);
* ``package.module:factory`` — a space defined outside wsnas: the module is imported (it must be
  importable: installed, on ``PYTHONPATH``, or under the current directory) and
  ``factory(**options)`` must return a :class:`Space` (a function or the ``Space`` class itself);
* the name of an entry point of group ``wsnas.spaces`` (:data:`ENTRY_POINT_GROUP`), which an
  installed distribution declares (``[project.entry-points."wsnas.spaces"] my_space =
  "mypkg.spaces:make_space"``), so that ``pip install`` adds a named space.

A built-in name wins over an entry point of the same name. Errors are one line that lists the
accepted names and forms. The contract a space fulfils is in ``docs/spaces.md``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from importlib import metadata

from wsnas.core.errors import WsnasError
from wsnas.spaces.base import Arch, Choice, Space, resolve_path
from wsnas.spaces.darts import DartsSpace
from wsnas.spaces.mobile import MobileSpace
from wsnas.spaces.nb201 import NB201Space
from wsnas.spaces.tiny64 import Tiny64Space

SPACES: dict[str, type[Space]] = {
    "tiny64": Tiny64Space,
    "darts": DartsSpace,
    "nb201": NB201Space,
    "mobile": MobileSpace,
}

#: the entry-point group through which installed distributions add named spaces
ENTRY_POINT_GROUP = "wsnas.spaces"

FORMS = "or MODULE:FACTORY (a function or Space class in an importable module, e.g. mypkg.spaces:make_space)"


def plugin_spaces() -> dict[str, metadata.EntryPoint]:
    """The spaces installed distributions declare (entry points of :data:`ENTRY_POINT_GROUP`), by name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def space_names() -> list[str]:
    """Every space name ``get_space`` accepts: the built-in ones, then the installed plug-ins."""
    return [*SPACES, *(n for n in sorted(plugin_spaces()) if n not in SPACES)]


def get_space(name: str, **options) -> Space:
    """The space called ``name`` with its network options; errors list the accepted names and forms."""
    name = str(name).strip()
    if name in SPACES:
        return _build(name, SPACES[name], options)
    if ":" in name:
        return _build(name, _load_factory(name), options, plugin=True)
    plugins = plugin_spaces()
    if name in plugins:
        entry = plugins[name]
        try:
            factory = entry.load()
        except Exception as exc:
            raise WsnasError(f"cannot load space {name!r} from entry point {entry.value!r}: "
                             f"{type(exc).__name__}: {exc}") from None
        return _build(name, factory, options, plugin=True)
    raise WsnasError(f"unknown space {name!r}; accepted: {', '.join(space_names())}, {FORMS}")


def space_from_description(described: Mapping) -> Space:
    """The space a run recorded with :meth:`Space.describe` (its name or ``source``, and its options)."""
    options = dict(described)
    name = options.pop("space")
    source = options.pop("source", None)
    return get_space(source or name, **options)


def _build(name: str, factory: Callable[..., Space], options: dict, *, plugin: bool = False) -> Space:
    try:
        space = factory(**options)
    except TypeError as exc:
        raise WsnasError(f"bad option for space {name!r}: {exc}") from None
    if not plugin:
        return space
    if not isinstance(space, Space):
        raise WsnasError(f"space {name!r} returned {type(space).__name__}, not a wsnas.spaces.Space")
    if space.name in SPACES:
        raise WsnasError(f"space {name!r} is called {space.name!r}, the name of a built-in space; give its class "
                         "another name")
    if space.name != name:
        space.source = name
        described = space.describe()
        if described.get("source") != name:
            raise WsnasError(f"space {name!r}: its describe() gives {described!r} without 'source': {name!r}; "
                             "start it from super().describe() so that a run can rebuild the space")
    return space


def _load_factory(spec: str) -> Callable[..., Space]:
    """The callable ``module:attribute`` names (the attribute may be dotted: ``Class.method``)."""
    module_name, _, attr = spec.partition(":")
    if not module_name.strip() or not attr.strip() or ":" in attr:
        raise WsnasError(f"bad space {spec!r}; accepted: a space name ({', '.join(space_names())}) {FORMS}")
    module = _import(module_name.strip(), spec)
    obj = module
    for part in attr.strip().split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise WsnasError(f"space {spec!r}: module {module_name!r} has no {attr!r}") from None
    if not callable(obj):
        raise WsnasError(f"space {spec!r}: {attr!r} is a {type(obj).__name__}, not a function or class")
    return obj


def _import(module_name: str, spec: str):
    """Import ``module_name``; when its top-level package is missing, try once more with the current
    directory on the path (a console script does not put it there; ``python -m`` does)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        top = module_name.split(".")[0]
        if exc.name != top or here in sys.path or "" in sys.path:
            raise WsnasError(f"space {spec!r}: cannot import module {module_name!r}: {exc} (it must be "
                             "installed, on PYTHONPATH or under the current directory)") from None
    except Exception as exc:
        raise WsnasError(f"space {spec!r}: importing module {module_name!r} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    sys.path.append(here)
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        sys.path.remove(here)
        raise WsnasError(f"space {spec!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc} "
                         "(it must be installed, on PYTHONPATH or under the current directory)") from None


__all__ = ["ENTRY_POINT_GROUP", "SPACES", "Arch", "Choice", "Space", "get_space", "plugin_spaces",
           "resolve_path", "space_from_description", "space_names"]
