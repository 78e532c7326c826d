"""``npz:PATH``: arrays in NHWC or NCHW, uint8 or float, with or without a validation split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsnas.core.errors import WsnasError
from wsnas.data import dataset_from_arrays, load_dataset


def _arrays(seed=0, n_train=40, n_test=12, classes=4, shape=(3, 8, 8), dtype=np.uint8):
    rng = np.random.default_rng(seed)
    x = {s: rng.integers(0, 256, size=(n, *shape)).astype(dtype) for s, n in (("train", n_train), ("test", n_test))}
    y = {s: rng.permutation(np.arange(len(x[s])) % classes) for s in x}
    return {"x_train": x["train"], "y_train": y["train"], "x_test": x["test"], "y_test": y["test"]}


def test_nhwc_and_nchw_give_the_same_dataset(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "nchw.npz", **arrays)
    nhwc = {k: (v.transpose(0, 2, 3, 1) if k.startswith("x_") else v) for k, v in arrays.items()}
    np.savez_compressed(tmp_path / "nhwc.npz", **nhwc)
    a = load_dataset(f"npz:{tmp_path / 'nchw.npz'}", split_seed=3)
    b = load_dataset(f"npz:{tmp_path / 'nhwc.npz'}", split_seed=3)
    assert a.describe()["settings"] == {"layout": "nchw"} and b.describe()["settings"] == {"layout": "nhwc"}
    for split in ("train", "valid", "test"):
        assert torch.equal(a.split(split).x, b.split(split).x) and torch.equal(a.split(split).y, b.split(split).y)
    assert (a.num_classes, a.in_channels, a.image_size) == (4, 3, 8)
    assert (len(a.train), len(a.valid), len(a.test)) == (36, 4, 12)  # valid: a tenth, stratified
    assert sorted(a.valid.y.tolist()) == [0, 1, 2, 3]
    assert a.name == f"npz:{(tmp_path / 'nchw.npz').resolve()}" and a.augment is None
    # uint8 scaled to [0, 1], normalised with the train split's statistics
    raw = a.test.x * torch.tensor(a.std).view(1, -1, 1, 1) + torch.tensor(a.mean).view(1, -1, 1, 1)
    np.testing.assert_allclose(raw.numpy(), arrays["x_test"] / 255.0, atol=1e-6)
    assert torch.allclose(a.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_given_valid_split_float_grey_images_and_class_names(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "grey.npz"
    np.savez(path, x_train=rng.normal(size=(20, 5, 5)).astype(np.float32), y_train=np.arange(20) % 2,
             x_valid=rng.normal(size=(6, 5, 5)).astype(np.float32), y_valid=np.arange(6) % 2,
             x_test=rng.normal(size=(4, 5, 5)).astype(np.float32), y_test=np.array([0, 1, 2, 1]),
             class_names=np.array(["cat", "dog", "eel"]))
    data = load_dataset(f"npz:{path}")
    assert (len(data.train), len(data.valid), len(data.test)) == (20, 6, 4)
    assert (data.num_classes, data.in_channels, data.image_size) == (3, 1, 5)
    assert data.class_names == ("cat", "dog", "eel")
    assert torch.allclose(data.train.x.mean(), torch.zeros(()), atol=1e-5)
    assert abs(float(data.train.x.std(unbiased=False)) - 1) < 1e-4
    with pytest.raises(WsnasError, match="has x_valid, so valid_size does not apply"):
        load_dataset(f"npz:{path}", valid_size=3)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"x_val": np.zeros((2, 3, 8, 8), np.uint8)}, "unknown array(s) x_val; accepted arrays: x_train"),
        ({"y_test": None}, "lacks y_test"),
        ({"x_test": np.zeros((12, 3, 8, 8), np.int32)}, "x_test has dtype int32; expected uint8"),
        ({"x_test": np.zeros((12, 3, 8, 7), np.uint8)}, "x_test has images of 8 x 7 pixels"),
        ({"x_test": np.zeros((12, 1, 8, 8), np.uint8)}, "x_test images are (1, 8, 8) (C, H, W) but x_train's are"),
        ({"y_train": np.arange(40) - 1}, "y_train has a negative label (-1)"),
        ({"y_train": np.zeros(39, np.int64)}, "y_train has shape (39,) and dtype int64; expected 40 integer labels"),
        ({"x_train": np.zeros((40, 6, 8, 8), np.uint8)}, "has no channel axis"),
    ],
    ids=["unknown-key", "missing-key", "dtype", "not-square", "channels", "label", "label-count", "no-channels"],
)
def test_bad_arrays_are_one_line_errors(tmp_path, change, needle):
    arrays = {**_arrays(), **change}
    np.savez(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(WsnasError) as info:
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    message = str(info.value)
    assert needle in message and "bad.npz" in message and "\n" not in message


def test_pickles_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, **{**_arrays(), "y_test": np.array([object()] * 12, dtype=object)})
    with pytest.raises(WsnasError, match=r"objects.npz.* has an unreadable y_test: .*allow_pickle"):
        load_dataset(f"npz:{path}")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WsnasError, match=r"cannot read npz file .*junk.npz.*numpy.savez"):
        load_dataset(f"npz:{tmp_path / 'junk.npz'}")
    with pytest.raises(WsnasError, match=r"npz file .*nowhere.npz.* does not exist"):
        load_dataset(f"npz:{tmp_path / 'nowhere.npz'}")
    np.savez(tmp_path / "ok.npz", **_arrays())
    with pytest.raises(WsnasError, match=r"ok.npz': layout must be one of nchw, nhwc, got 'hwc'"):
        load_dataset(f"npz:{tmp_path / 'ok.npz'}", layout="hwc")


def test_arrays_in_memory_make_the_same_dataset_as_their_file(tmp_path):
    """dataset_from_arrays reads tensors (or arrays) as load_npz reads the same arrays from a file."""
    arrays = _arrays(n_train=60)
    np.savez(tmp_path / "same.npz", **arrays)
    from_file = load_dataset(f"npz:{tmp_path / 'same.npz'}", split_seed=2, valid_size=12)
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    data = dataset_from_arrays(**tensors, split_seed=2, valid_size=12, name="mine", class_names="abcd")
    for split in ("train", "valid", "test"):
        assert torch.equal(data.split(split).x, from_file.split(split).x)
        assert torch.equal(data.split(split).y, from_file.split(split).y)
    assert (data.name, data.class_names, data.source) == ("mine", ("a", "b", "c", "d"), "")
    assert data.describe()["sizes"] == {"train": 48, "valid": 12, "test": 12}
    # a given valid split is kept as it is; floats are used as they are
    x = torch.linspace(0, 1, 10 * 6 * 6).reshape(10, 6, 6)
    data = dataset_from_arrays(x, torch.arange(10) % 2, x[:4], torch.tensor([0, 1, 0, 1]),
                               x_valid=x[:2], y_valid=torch.tensor([1, 0]), augment="crop_flip")
    assert (len(data.train), len(data.valid), len(data.test), data.in_channels, data.augment) == (10, 2, 4, 1,
                                                                                                  "crop_flip")


@pytest.mark.parametrize(("change", "needle"), [
    ({"y_train": torch.arange(40) % 4 - 1}, "dataset 'mine': y_train has a negative label (-1)"),
    ({"x_valid": torch.zeros(2, 3, 8, 8, dtype=torch.uint8)}, "dataset 'mine' has only one of x_valid and y_valid"),
    ({"x_test": torch.zeros(12, 3, 8, 8, dtype=torch.int32)}, "dataset 'mine': x_test has dtype int32"),
    ({"layout": "hwc"}, "dataset 'mine': layout must be one of nchw, nhwc, got 'hwc'"),
    ({"augment": "rotate"}, "unknown augmentation 'rotate'"),
    ({"split_seed": -1}, "split_seed must be a non-negative integer"),
])
def test_bad_arrays_in_memory_are_one_line_errors(change, needle):
    arrays = {k: torch.from_numpy(v) for k, v in _arrays().items()}
    with pytest.raises(WsnasError) as info:
        dataset_from_arrays(**{**arrays, **change}, name="mine")
    assert needle in str(info.value) and "\n" not in str(info.value)
