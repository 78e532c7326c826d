"""The restricted unpickler: what it loads, what it refuses, and how it reports it."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct

import numpy as np
import pytest

from wsnas.core.errors import WsnasError
from wsnas.core.safepickle import (
    BASIC_GLOBALS,
    BYTES_GLOBALS,
    NUMPY_ARRAY_GLOBALS,
    restricted_load,
    restricted_load_path,
)


def _load(data: bytes, allowed=NUMPY_ARRAY_GLOBALS, **kwargs):
    return restricted_load(io.BytesIO(data), allowed, **kwargs)


def _py2(obj) -> bytes:
    """Opcodes for ``obj`` the way Python 2's cPickle (protocol 2) with numpy 1.x wrote them.

    Python 2 ``str`` (here: ``bytes``) is written with the STRING opcodes, and numpy arrays
    reference ``numpy.core.multiarray._reconstruct``, as in the official CIFAR-10 files.
    """
    if obj is None:
        return b"N"
    if isinstance(obj, bool):
        return b"\x88" if obj else b"\x89"
    if isinstance(obj, int):
        return b"K" + bytes([obj]) if 0 <= obj < 256 else b"J" + struct.pack("<i", obj)
    if isinstance(obj, bytes):
        if len(obj) < 256:
            return b"U" + bytes([len(obj)]) + obj
        return b"T" + struct.pack("<i", len(obj)) + obj
    if isinstance(obj, tuple):
        return b"(" + b"".join(_py2(item) for item in obj) + b"t"
    if isinstance(obj, list):
        return b"](" + b"".join(_py2(item) for item in obj) + b"e"
    if isinstance(obj, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u"
    if isinstance(obj, np.ndarray):
        assert obj.dtype == np.uint8
        dtype = (
            b"cnumpy\ndtype\n" + _py2(b"u1") + _py2(0) + _py2(1) + b"\x87R"
            + _py2((3, b"|", None, None, None, -1, -1, 0)) + b"b"
        )  # fmt: skip
        return (
            b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n"
            + _py2((0,)) + _py2(b"b") + b"\x87R"
            + b"(" + _py2(1) + _py2(obj.shape) + dtype + _py2(False) + _py2(obj.tobytes())
            + b"tb"
        )  # fmt: skip
    raise TypeError(type(obj))


def py2_pickle(obj) -> bytes:
    """A complete Python-2-style protocol 2 pickle of ``obj``."""
    return b"\x80\x02" + _py2(obj) + b"."


class _RunsCommand:
    """Unpickling this with plain pickle would run a shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_round_trip_under_every_protocol(protocol):
    value = {
        b"data": np.arange(24, dtype=np.uint8).reshape(4, 6),
        "floats": np.linspace(0, 1, 5, dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "scalar": np.float64(2.5),
        "dtype": np.dtype("<i4"),
        "plain": [1, 2.0, "x", b"y", (None, True)],
    }
    loaded = _load(pickle.dumps(value, protocol=protocol))
    assert set(loaded) == set(value)
    for key in (b"data", "floats", "fortran"):
        assert loaded[key].dtype == value[key].dtype
        np.testing.assert_array_equal(loaded[key], value[key])
    assert loaded["scalar"] == 2.5 and isinstance(loaded["scalar"], np.float64)
    assert loaded["dtype"] == np.dtype("<i4")
    assert loaded["plain"] == value["plain"]


@pytest.mark.filterwarnings("error")
def test_python2_numpy_pickle_loads_with_bytes_encoding():
    array = np.arange(300, dtype=np.int64).astype(np.uint8).reshape(3, 100)
    data = py2_pickle({b"data": array, b"labels": [1, 2, 3], b"name": b"batch"})
    loaded = _load(data, encoding="bytes")
    assert loaded[b"labels"] == [1, 2, 3] and loaded[b"name"] == b"batch"
    assert loaded[b"data"].dtype == np.uint8
    np.testing.assert_array_equal(loaded[b"data"], array)


def test_refused_global_names_global_and_file_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps([1, _RunsCommand(f"touch {marker}")], protocol=2)
    with pytest.raises(WsnasError) as info:
        _load(data, what="evil.pkl")
    message = str(info.value)
    assert "evil.pkl" in message and "system" in message and "not allowed" in message
    assert "\n" not in message
    assert not marker.exists()


def test_basic_globals_are_opt_in():
    value = [
        {1, 2},
        frozenset({3}),
        collections.OrderedDict(a=1),
        complex(1, 2),
        slice(1, 5, 2),
        range(3),
        bytearray(b"ab"),
    ]
    data = pickle.dumps(value, protocol=2)
    assert _load(data, BASIC_GLOBALS | BYTES_GLOBALS) == value
    with pytest.raises(WsnasError, match=r"\.set, which is not allowed"):
        _load(data, NUMPY_ARRAY_GLOBALS)


def test_python2_module_names_are_matched_after_translation():
    data = b"\x80\x02c__builtin__\nset\n(]" + b"(K\x01K\x02e" + b"tR."
    assert _load(data, BASIC_GLOBALS) == {1, 2}
    with pytest.raises(WsnasError, match="__builtin__.set"):
        _load(data, set())


def test_empty_allow_list_still_loads_plain_data_and_says_none_allowed():
    assert _load(pickle.dumps({"a": [1, (2, 3.5)], b"b": None}, protocol=4), set()) == {
        "a": [1, (2, 3.5)],
        b"b": None,
    }
    with pytest.raises(WsnasError, match=r"allowed: none"):
        _load(pickle.dumps(np.zeros(2), protocol=4), set())


def test_codecs_encode_is_limited_to_latin1():
    evil = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(WsnasError, match="latin-1"):
        _load(evil, what="codec.pkl")
    good = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00\xc3\xbfaX\x06\x00\x00\x00latin1\x86R."
    assert _load(good) == b"\xffa"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a pickle at all",
        pickle.dumps({"x": np.arange(100)}, protocol=2)[:-40],
        pickle.dumps({"x": np.arange(100)}, protocol=5)[:60],
    ],
    ids=["empty", "garbage", "truncated-p2", "truncated-p5"],
)
def test_corrupt_pickles_raise_one_line_error_naming_the_file(data):
    with pytest.raises(WsnasError) as info:
        _load(data, what="broken.pkl")
    message = str(info.value)
    assert "broken.pkl" in message and "\n" not in message


def test_restricted_load_path(tmp_path):
    path = tmp_path / "arr.pkl"
    path.write_bytes(pickle.dumps(np.arange(3), protocol=2))
    np.testing.assert_array_equal(restricted_load_path(path, NUMPY_ARRAY_GLOBALS), np.arange(3))
    with pytest.raises(WsnasError, match="missing.pkl"):
        restricted_load_path(tmp_path / "missing.pkl", NUMPY_ARRAY_GLOBALS)
    path.write_bytes(pickle.dumps(_RunsCommand("true"), protocol=4))
    with pytest.raises(WsnasError, match="arr.pkl"):
        restricted_load_path(path, NUMPY_ARRAY_GLOBALS)


def test_persistent_ids_are_refused():
    buffer = io.BytesIO()

    class _Persisting(pickle.Pickler):
        def persistent_id(self, obj):
            return "ext" if obj == "external" else None

    _Persisting(buffer, protocol=2).dump(["external"])
    with pytest.raises(WsnasError, match="persistent"):
        _load(buffer.getvalue())


@pytest.mark.filterwarnings("error")
def test_cifar_batch_written_by_python2_reads(tmp_path):
    """The official CIFAR-10 files come from Python 2 with numpy 1.x; read one like it."""
    from wsnas.data import read_cifar_batch

    data = np.random.default_rng(0).integers(0, 256, size=(4, 3072), dtype=np.uint8)
    record = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [6, 9, 9, 4],
        b"data": data,
        b"filenames": [b"a.png", b"b.png", b"c.png", b"d.png"],
    }
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_pickle(record))
    images, labels = read_cifar_batch(path)
    assert labels.tolist() == [6, 9, 9, 4]
    assert images.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(images[2, 1, 5, 7], data[2, 1024 + 5 * 32 + 7])
