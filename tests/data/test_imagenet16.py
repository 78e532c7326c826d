"""ImageNet16-120 from the down-sampled ImageNet pickles: classes 1..120, NB201's statistics and split."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from conftest import write_imagenet16

from wsnas.core.errors import WsnasError
from wsnas.data import iterate_batches, load_dataset
from wsnas.data.imagenet16 import MEAN, STD


def _raw(split) -> np.ndarray:
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return torch.round((split.x * std + mean) * 255).to(torch.int64).numpy()


def _rows(images: np.ndarray) -> list[bytes]:
    return sorted(bytes(row) for row in images.astype(np.uint8).reshape(len(images), -1))


@pytest.fixture
def imagenet16(tmp_path):
    folder = tmp_path / "ImageNet16"
    return folder, write_imagenet16(folder)


def _kept(written, names):
    images = np.concatenate([written[n][0] for n in names])
    labels = np.concatenate([written[n][1] for n in names])
    keep = labels <= 120
    return images[keep], labels[keep] - 1


def test_keeps_classes_1_to_120_with_nb201s_split_and_statistics(imagenet16):
    folder, written = imagenet16
    data = load_dataset("ImageNet16-120", data_dir=folder.parent)
    train_x, train_y = _kept(written, [f"train_data_batch_{i}" for i in range(1, 11)])
    valid_x, valid_y = _kept(written, ["val_data"])
    assert (data.num_classes, data.in_channels, data.image_size) == (120, 3, 16)
    assert (len(data.train), len(data.valid), len(data.test)) == (len(train_y), 12, 12) == (80, 12, 12)
    # NB201's fixed normalisation, its crop (padding 2) and flip
    assert data.mean == MEAN and data.std == STD and data.augment == "crop_flip_pad2"
    assert MEAN[0] == pytest.approx(122.68 / 255) and STD[2] == pytest.approx(65.09 / 255)
    # train: every kept training image in file order, planes decoded as C x H x W, labels shifted to 0..119
    np.testing.assert_array_equal(_raw(data.train), train_x)
    assert data.train.y.tolist() == train_y.tolist()
    assert int(torch.cat([data.valid.y, data.test.y]).max()) == 119  # class 120 is kept, as label 119
    # valid and test are the two halves of the kept validation images
    got = np.concatenate([_raw(data.valid), _raw(data.test)])
    assert _rows(got) == _rows(valid_x)
    assert sorted(torch.cat([data.valid.y, data.test.y]).tolist()) == sorted(valid_y.tolist())
    x, _ = next(iter(iterate_batches(data.train, 8, shuffle=True, generator=torch.Generator().manual_seed(0),
                                     augment=data.augment)))
    assert x.shape == (8, 3, 16, 16)


def test_split_file_and_holdout(imagenet16, tmp_path):
    folder, written = imagenet16
    valid_x, valid_y = _kept(written, ["val_data"])
    path = tmp_path / "imagenet-16-120-test-split.txt"
    path.write_text(json.dumps({"xvalid": ["int", [str(i) for i in range(12)]],
                                "xtest": ["int", [str(i) for i in range(12, 24)]]}))
    data = load_dataset("ImageNet16-120", data_dir=folder, split_file=str(path))
    np.testing.assert_array_equal(_raw(data.valid), valid_x[:12])
    assert data.test.y.tolist() == valid_y[12:].tolist()
    held = load_dataset("ImageNet16-120", data_dir=folder, split="holdout", valid_size=8)
    assert (len(held.train), len(held.valid), len(held.test)) == (72, 8, 24)
    with pytest.raises(WsnasError, match="split_file applies to split=nb201"):
        load_dataset("ImageNet16-120", data_dir=folder, split="holdout", split_file=str(path))


def test_bad_files_are_one_line_errors(imagenet16):
    folder, _ = imagenet16
    (folder / "train_data_batch_7").unlink()
    with pytest.raises(WsnasError, match=r"ImageNet16-120 data directory .*ImageNet16.* lacks train_data_batch_7;"):
        load_dataset("ImageNet16-120", data_dir=folder.parent)
    with open(folder / "train_data_batch_7", "wb") as f:
        pickle.dump({"data": np.zeros((3, 3072), np.uint8), "labels": [1, 2, 3]}, f, protocol=2)
    with pytest.raises(WsnasError, match=r"ImageNet16 file .*train_data_batch_7.* has data of uint8 array of shape "
                                         r"\(3, 3072\); expected a uint8 array N x 768"):
        load_dataset("ImageNet16-120", data_dir=folder)
    with open(folder / "train_data_batch_7", "wb") as f:
        pickle.dump({"data": np.zeros((3, 768), np.uint8), "labels": [0, 2, 3]}, f, protocol=2)
    with pytest.raises(WsnasError, match=r"ImageNet16 file .*batch_7.* labels from 0 to 3; expected 1..1000"):
        load_dataset("ImageNet16-120", data_dir=folder)
