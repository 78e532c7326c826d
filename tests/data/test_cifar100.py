"""CIFAR-100 from files in the official python format: NB201's split, the held-out split, bad files."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from conftest import write_cifar100

from wsnas.core.errors import WsnasError
from wsnas.data import load_dataset


def _raw(split, data) -> np.ndarray:
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return torch.round((split.x * std + mean) * 255).to(torch.int64).numpy()


def _rows(images: np.ndarray) -> list[bytes]:
    return sorted(bytes(row) for row in images.astype(np.uint8).reshape(len(images), -1))


@pytest.fixture
def cifar100_dir(tmp_path):
    folder = tmp_path / "cifar-100-python"
    return folder, write_cifar100(folder)


def test_nb201_split_trains_on_every_training_image_and_halves_the_test_set(cifar100_dir):
    folder, written = cifar100_dir
    data = load_dataset("cifar100", data_dir=folder.parent, split_seed=0)
    assert (data.num_classes, data.in_channels, data.image_size, data.augment) == (100, 3, 32, "crop_flip")
    assert (len(data.train), len(data.valid), len(data.test)) == (60, 20, 20)
    assert data.class_names[:2] == ("fine0", "fine1") and data.describe()["settings"] == {"split": "nb201"}
    train_x, train_y = written["train"]
    test_x, test_y = written["test"]
    # train is the training file in order; its fine labels are the labels
    np.testing.assert_array_equal(_raw(data.train, data), train_x)
    assert data.train.y.tolist() == train_y
    # valid and test together are the test file, each half stratified (20 classes of two images each)
    both = np.concatenate([_raw(data.valid, data), _raw(data.test, data)])
    assert _rows(both) == _rows(test_x)
    assert sorted(data.valid.y.tolist() + data.test.y.tolist()) == sorted(test_y)
    assert sorted(data.valid.y.tolist()) == list(range(20))
    # the known planar pattern of test images 0 and 1 comes back as C x H x W
    pattern = (np.arange(3 * 32 * 32).reshape(3, 32, 32) * 7 % 251).astype(np.int64)
    found = [img for img in both if np.array_equal(img, pattern)]
    assert len(found) == 2
    # normalised with the train split's statistics
    assert torch.allclose(data.train.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    other = load_dataset("cifar100", data_dir=folder, split_seed=1)
    assert not torch.equal(other.valid.x, data.valid.x) and torch.equal(other.train.x, data.train.x)


def test_nb201_split_file_gives_the_authors_halves(cifar100_dir, tmp_path):
    folder, written = cifar100_dir
    valid = list(range(0, 40, 2))
    split_file = tmp_path / "cifar100-test-split.txt"
    split_file.write_text(json.dumps({"xvalid": ["int", [str(i) for i in valid]],
                                      "xtest": ["int", [str(i) for i in range(1, 40, 2)]]}))
    data = load_dataset("cifar100", data_dir=folder, split_file=str(split_file))
    test_x, test_y = written["test"]
    np.testing.assert_array_equal(_raw(data.valid, data), test_x[valid])
    assert data.test.y.tolist() == [test_y[i] for i in range(1, 40, 2)]
    assert data.describe()["settings"] == {"split": "nb201", "split_file": str(split_file.resolve())}
    split_file.write_text(json.dumps({"xvalid": ["int", ["1", "40"]], "xtest": ["int", ["2"]]}))
    with pytest.raises(WsnasError, match=r"NB201 split file .*cifar100-test-split.txt.* up to 40; the test set has 40"):
        load_dataset("cifar100", data_dir=folder, split_file=str(split_file))
    split_file.write_text("{not json")
    with pytest.raises(WsnasError, match="is not a JSON object with xvalid and xtest"):
        load_dataset("cifar100", data_dir=folder, split_file=str(split_file))


def test_holdout_split_is_cifar10s(cifar100_dir):
    folder, written = cifar100_dir
    data = load_dataset("cifar100", data_dir=folder, split="holdout", valid_size=12, augment="none")
    assert (len(data.train), len(data.valid), len(data.test), data.augment) == (48, 12, 40, None)
    np.testing.assert_array_equal(_raw(data.test, data), written["test"][0])
    assert _rows(np.concatenate([_raw(data.train, data), _raw(data.valid, data)])) == _rows(written["train"][0])
    with pytest.raises(WsnasError, match="valid_size applies to split=holdout"):
        load_dataset("cifar100", data_dir=folder, valid_size=12)
    with pytest.raises(WsnasError, match="split must be one of nb201, holdout, got 'random'"):
        load_dataset("cifar100", data_dir=folder, split="random")


class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_bad_files_are_one_line_errors(cifar100_dir, tmp_path):
    folder, _ = cifar100_dir
    with pytest.raises(WsnasError, match=r"cifar100 data directory .* lacks test; expected train, test") as info:
        (folder / "test").rename(folder / "test.bak")
        load_dataset("cifar100", data_dir=folder)
    assert "\n" not in str(info.value)
    (folder / "test.bak").rename(folder / "test")
    # a CIFAR-10-style batch (labels, not fine_labels)
    with open(folder / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3]}, f, protocol=2)
    with pytest.raises(WsnasError, match=r"CIFAR-100 file .*test.* has no 'fine_labels' entry"):
        load_dataset("cifar100", data_dir=folder)
    with open(folder / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"fine_labels": [0, 1, 2, 100]}, f, protocol=2)
    with pytest.raises(WsnasError, match=r"CIFAR-100 file .*test.* has fine_labels from 0 to 100; expected 0..99"):
        load_dataset("cifar100", data_dir=folder)
    marker = tmp_path / "pwned"
    with open(folder / "train", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"fine_labels": _RunsCommand(f"touch {marker}")}, f,
                    protocol=2)
    with pytest.raises(WsnasError, match=r"refusing to load CIFAR-100 file .*train.*posix.system"):
        load_dataset("cifar100", data_dir=folder)
    assert not marker.exists()
    (folder / "train").write_bytes(b"\x80\x02}q\x00")
    with pytest.raises(WsnasError, match=r"cannot unpickle CIFAR-100 file .*train.*truncated or corrupt"):
        load_dataset("cifar100", data_dir=folder)
