"""``folder:DIR``: images decoded with Pillow, resized, split, and cached beside the folder."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

import wsnas.data.folder as folder_module
from wsnas.core.errors import WsnasError
from wsnas.data import load_dataset

Image = pytest.importorskip("PIL.Image")

COLOURS = {"apple": (255, 0, 0), "grass": (0, 255, 0), "sky": (0, 0, 255)}


def _write_images(root, per_class=6):
    """Solid-colour images of odd sizes and modes; every class also has one noisy image."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class - 1):
            Image.new("RGB", (10 + i, 6), colour).save(folder / f"{i}.png")
        noise = Image.fromarray(rng.integers(0, 256, size=(9, 9), dtype=np.uint8), mode="L")
        noise.save(folder / "noise.JPG")
    (root / "apple" / "notes.txt").write_text("not an image")
    Image.new("RGBA", (4, 4), (255, 0, 0, 10)).save(root / "apple" / ".hidden.png")


def _raw(split, data):
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return torch.round((split.x * std + mean) * 255).to(torch.int64)


@pytest.fixture
def counted(monkeypatch):
    """Counts calls of the decoder the loader uses."""
    calls = []
    original = folder_module.decode_image

    def counting(path, size):
        calls.append(path)
        return original(path, size)

    monkeypatch.setattr(folder_module, "decode_image", counting)
    return calls


def test_class_folders_are_decoded_resized_split_and_cached(tmp_path, counted):
    root = tmp_path / "pics"
    _write_images(root)
    data = load_dataset(f"folder:{root}", size=8, split_seed=1)
    assert len(counted) == 18  # the text file and the hidden image are not images of the dataset
    assert data.class_names == ("apple", "grass", "sky") and data.num_classes == 3
    assert (data.in_channels, data.image_size, data.augment) == (3, 8, None)
    assert (len(data.train), len(data.valid), len(data.test)) == (12, 2, 4)  # a tenth valid, a fifth test
    assert data.name == f"folder:{root.resolve()}"
    for split in (data.train, data.valid, data.test):  # solid images keep their colour, RGB, at 8 x 8
        raw = _raw(split, data)
        for img, label in zip(raw, split.y.tolist()):
            colour = torch.tensor(COLOURS[data.class_names[label]]).view(3, 1, 1).expand(3, 8, 8)
            grey = bool((img[0] == img[1]).all() and (img[1] == img[2]).all())
            assert torch.equal(img, colour) or grey
    caches = sorted(p.name for p in root.glob(".wsnas-cache-8-*.pt"))
    assert len(caches) == 1 and not list(root.glob("*tmp*"))

    again = load_dataset(f"folder:{root}", size=8, split_seed=1)
    assert len(counted) == 18  # read from the cache: nothing decoded
    for split in ("train", "valid", "test"):
        assert torch.equal(again.split(split).x, data.split(split).x)
        assert torch.equal(again.split(split).y, data.split(split).y)

    Image.new("RGB", (5, 5), (0, 0, 255)).save(root / "sky" / "new.png")  # a new image: a new cache
    newer = load_dataset(f"folder:{root}", size=8, split_seed=1)
    assert len(counted) == 18 + 19 and len(newer.train) + len(newer.valid) + len(newer.test) == 19
    assert [p.name for p in root.glob(".wsnas-cache-8-*.pt")] != caches
    assert len(list(root.glob(".wsnas-cache-8-*.pt"))) == 1  # the stale one is gone


def test_train_and_test_folders(tmp_path, counted):
    root = tmp_path / "split"
    _write_images(root / "train")
    _write_images(root / "test", per_class=2)
    data = load_dataset(f"folder:{root}", size=4, valid_size=3)
    assert (len(data.train), len(data.valid), len(data.test)) == (15, 3, 6)
    assert sorted(data.test.y.tolist()) == [0, 0, 1, 1, 2, 2] and data.image_size == 4
    assert data.describe()["settings"] == {"layout": "train/test"}
    with pytest.raises(WsnasError, match="has train/ and test/ folders, so test_size does not apply"):
        load_dataset(f"folder:{root}", test_size=2)
    (root / "test" / "moon").mkdir()
    Image.new("RGB", (3, 3)).save(root / "test" / "moon" / "a.png")
    with pytest.raises(WsnasError, match=r"image folder .*moon.* is a class that .*train.* lacks"):
        load_dataset(f"folder:{root}")


def test_bad_folders_and_images_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(WsnasError, match=r"image folder .*nowhere.* does not exist"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")
    root = tmp_path / "pics"
    _write_images(root, per_class=2)
    (root / "grass" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(WsnasError) as info:
        load_dataset(f"folder:{root}")
    assert "cannot decode image" in str(info.value) and "broken.png" in str(info.value)
    assert "\n" not in str(info.value)
    os.remove(root / "grass" / "broken.png")
    (root / "empty").mkdir()
    with pytest.raises(WsnasError, match=r"class folder .*empty.* holds no images"):
        load_dataset(f"folder:{root}")
    (root / "empty").rmdir()
    with pytest.raises(WsnasError, match="folder size must be a positive number of pixels, got 0"):
        load_dataset(f"folder:{root}", size=0)
    monkeypatch.setitem(sys.modules, "PIL", None)  # Pillow missing: named with its install command
    with pytest.raises(WsnasError, match=r"needs Pillow: pip install 'wsnas\[images\]'"):
        load_dataset(f"folder:{root}")
