"""Datasets (digits, CIFAR-10 files), stratified splits, batching and augmentation."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from wsnas.core.errors import WsnasError
from wsnas.data import (
    DATASETS,
    CropFlipParams,
    Dataset,
    Split,
    crop_flip,
    digits_split_sizes,
    iterate_batches,
    load_dataset,
    num_batches,
    proportional_counts,
    random_crop_flip,
    read_cifar_batch,
    sample_crop_flip,
    stratified_split,
)

# ---------------------------------------------------------------------------- helpers


def _one_line_error(excinfo, *needles: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def _raw(split: Split, data: Dataset, max_value: int) -> np.ndarray:
    """Undo the normalisation: integer images N x C x H x W."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return torch.round((split.x * std + mean) * max_value).to(torch.int64).numpy()


def _sorted_rows(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1)
    return flat[np.lexsort(flat.T[::-1])]


# ----------------------------------------------------------------- stratified split


def test_proportional_counts_is_a_controlled_rounding():
    rng = np.random.default_rng(0)
    for _ in range(200):
        class_counts = rng.integers(0, 40, size=rng.integers(1, 12))
        total = int(class_counts.sum())
        cuts = np.sort(rng.integers(0, total + 1, size=rng.integers(0, 4)))
        sizes = np.diff(np.concatenate([[0], cuts, [total]]))
        counts = proportional_counts(class_counts, sizes)
        np.testing.assert_array_equal(counts.sum(axis=1), sizes)
        np.testing.assert_array_equal(counts.sum(axis=0), class_counts)
        quota = sizes[:, None] * class_counts[None, :] / max(total, 1)
        assert (counts >= np.floor(quota) - 1e-9).all() and (counts <= np.ceil(quota) + 1e-9).all()


def test_stratified_split_partitions_and_is_seeded():
    labels = np.repeat(np.arange(5), [7, 11, 3, 20, 9])
    parts = stratified_split(labels, [30, 10, 10], seed=3)
    assert [len(p) for p in parts] == [30, 10, 10]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))
    again = stratified_split(labels, [30, 10, 10], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = stratified_split(labels, [30, 10, 10], seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


# -------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", split_seed=0)


def test_digits_shapes_and_sizes(digits):
    assert digits_split_sizes(1797) == (1079, 359, 359)
    assert (len(digits.train), len(digits.valid), len(digits.test)) == (1079, 359, 359)
    assert digits.train.x.shape == (1079, 1, 8, 8) and digits.train.x.dtype == torch.float32
    assert digits.train.y.dtype == torch.int64
    assert (digits.num_classes, digits.in_channels, digits.image_size) == (10, 1, 8)
    assert digits.augment is None and digits.device == torch.device("cpu")
    info = digits.describe()
    assert info["sizes"] == {"train": 1079, "valid": 359, "test": 359}
    assert info["split_seed"] == 0 and info["augment"] is None and info["name"] == "digits"
    assert digits.split("valid") is digits.valid


def test_digits_split_is_stratified(digits):
    all_counts = np.bincount(load_digits().target, minlength=10)
    for split in (digits.train, digits.valid, digits.test):
        counts = np.bincount(split.y.numpy(), minlength=10)
        expected = all_counts * len(split) / all_counts.sum()
        assert np.abs(counts - expected).max() < 1


def test_digits_splits_cover_every_image_once(digits):
    raw = np.concatenate([_raw(s, digits, 16) for s in (digits.train, digits.valid, digits.test)])
    original = load_digits().images.astype(np.int64)[:, None]
    np.testing.assert_array_equal(_sorted_rows(raw), _sorted_rows(original))
    labels = np.concatenate([s.y.numpy() for s in (digits.train, digits.valid, digits.test)])
    np.testing.assert_array_equal(np.sort(labels), np.sort(load_digits().target))


def test_digits_split_is_pinned_for_seed_0():
    """Catches any change of the split for a given seed (e.g. a numpy RNG change)."""
    parts = stratified_split(load_digits().target, digits_split_sizes(1797), 0)
    assert [p[:8].tolist() for p in parts] == [
        [0, 3, 4, 5, 9, 10, 12, 13],
        [7, 11, 17, 32, 33, 36, 43, 55],
        [1, 2, 6, 8, 15, 19, 21, 23],
    ]
    assert [int(p.sum()) for p in parts] == [954942, 313585, 345179]


def test_digits_deterministic_and_seed_dependent(digits):
    again = load_dataset("digits", split_seed=0)
    other = load_dataset("digits", split_seed=1)
    for name in ("train", "valid", "test"):
        assert torch.equal(digits.split(name).x, again.split(name).x)
        assert torch.equal(digits.split(name).y, again.split(name).y)
    assert not torch.equal(digits.valid.x, other.valid.x)


def test_digits_normalised_with_train_statistics(digits):
    x = digits.train.x
    assert abs(float(x.mean())) < 1e-5
    assert abs(float(x.std(unbiased=False)) - 1) < 1e-5
    original = load_digits().images
    assert 0.2 < digits.mean[0] < 0.4  # on the [0, 1] scale, near the whole set's mean
    assert abs(digits.mean[0] - original.mean() / 16) < 0.02


def test_digits_augment_option():
    data = load_dataset("digits", augment="crop_flip")
    assert data.augment == "crop_flip" and data.describe()["augment"] == "crop_flip"


def test_load_dataset_errors():
    with pytest.raises(WsnasError) as info:
        load_dataset("mnist")
    _one_line_error(info, "'mnist'", "digits", "cifar10")
    assert set(DATASETS) >= {"digits", "cifar10"}
    with pytest.raises(WsnasError) as info:
        load_dataset("digits", colour=True)
    _one_line_error(info, "'colour'", "augment")
    with pytest.raises(WsnasError) as info:
        load_dataset("digits", augment="mixup")
    _one_line_error(info, "'mixup'", "crop_flip")
    with pytest.raises(WsnasError) as info:
        load_dataset("digits", device="tpu9")
    _one_line_error(info, "'tpu9'")
    with pytest.raises(WsnasError) as info:
        load_dataset("digits", split_seed=-1)
    _one_line_error(info, "split_seed", "-1")


def test_unknown_split_name(digits):
    with pytest.raises(WsnasError) as info:
        digits.split("val")
    _one_line_error(info, "'val'", "train", "valid", "test")


# ------------------------------------------------------------------------ CIFAR-10

PER_BATCH = 20
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer"] + [
    "dog", "frog", "horse", "ship", "truck"
]  # fmt: skip


def _known_pixel(c: int, h: int, w: int) -> int:
    return (c * 100 + h * 5 + w * 3) % 256


def _known_row() -> np.ndarray:
    """One image as a 3072 row, laid out by the official description (not by reshape)."""
    row = np.zeros(3072, dtype=np.uint8)
    for c in range(3):  # the red plane, then the green, then the blue
        for h in range(32):  # each plane row by row
            for w in range(32):
                row[c * 1024 + h * 32 + w] = _known_pixel(c, h, w)
    return row


def _batch_dict(data: np.ndarray, labels: list[int], label: bytes) -> dict:
    return {
        b"batch_label": label,
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }


def write_cifar(folder: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Write tiny files in the official python format; return name -> (data, labels)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate([*TRAIN_FILES, "test_batch"]):
        data = rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(PER_BATCH) % 10)]
        if name == "test_batch":
            data[0] = _known_row()
        title = f"training batch {i + 1} of 5" if i < 5 else "testing batch 1 of 1"
        with open(folder / name, "wb") as f:
            pickle.dump(_batch_dict(data, labels, title.encode()), f, protocol=2)
        written[name] = (data, labels)
    meta = {
        b"num_cases_per_batch": PER_BATCH,
        b"label_names": [n.encode() for n in LABEL_NAMES],
        b"num_vis": 3072,
    }
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


@pytest.fixture
def cifar_dir(tmp_path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    return folder


def test_cifar_loads_with_official_layout(cifar_dir):
    written = write_cifar(cifar_dir)  # same seed: rewrites the same files, returns contents
    data = load_dataset("cifar10", data_dir=cifar_dir, split_seed=0, valid_size=10)
    assert (len(data.train), len(data.valid), len(data.test)) == (90, 10, 20)
    assert data.train.x.shape == (90, 3, 32, 32) and data.train.x.dtype == torch.float32
    assert (data.num_classes, data.in_channels, data.image_size) == (10, 3, 32)
    assert data.augment == "crop_flip"
    assert data.class_names == tuple(LABEL_NAMES)
    # The known image is test image 0; it must come back as C x H x W after un-normalising.
    test_raw = _raw(data.test, data, 255)
    expected = np.array(
        [[[_known_pixel(c, h, w) for w in range(32)] for h in range(32)] for c in range(3)]
    )
    np.testing.assert_array_equal(test_raw[0], expected)
    assert data.test.y.tolist() == written["test_batch"][1]
    np.testing.assert_array_equal(
        test_raw.reshape(20, 3072), written["test_batch"][0].astype(np.int64)
    )
    # train + valid are exactly the 100 training images, with their labels.
    all_train = np.concatenate([written[n][0] for n in TRAIN_FILES]).astype(np.int64)
    all_labels = sum((written[n][1] for n in TRAIN_FILES), [])
    got = np.concatenate([_raw(data.train, data, 255), _raw(data.valid, data, 255)])
    np.testing.assert_array_equal(_sorted_rows(got.reshape(100, 3072)), _sorted_rows(all_train))
    got_pairs = sorted(
        zip(
            map(bytes, got.reshape(100, 3072).astype(np.uint8)),
            data.train.y.tolist() + data.valid.y.tolist(),
            strict=True,
        )
    )
    want_pairs = sorted(zip(map(bytes, all_train.astype(np.uint8)), all_labels, strict=True))
    assert got_pairs == want_pairs
    # Stratified validation: 10 images per class in training, so one of each in valid.
    assert np.bincount(data.valid.y.numpy(), minlength=10).tolist() == [1] * 10


def test_cifar_normalisation_uses_train_statistics(cifar_dir):
    data = load_dataset("cifar10", data_dir=cifar_dir, valid_size=10)
    x = data.train.x
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5)
    raw = _raw(data.train, data, 255) / 255.0
    np.testing.assert_allclose(raw.mean(axis=(0, 2, 3)), data.mean, rtol=1e-6)
    np.testing.assert_allclose(raw.std(axis=(0, 2, 3)), data.std, rtol=1e-6)


def test_cifar_parent_directory_and_options(cifar_dir):
    from_parent = load_dataset(
        "cifar10", data_dir=cifar_dir.parent, split_seed=2, valid_size=20, augment=None
    )
    direct = load_dataset("cifar10", data_dir=str(cifar_dir), split_seed=2, valid_size=20)
    assert torch.equal(from_parent.train.x, direct.train.x)
    assert torch.equal(from_parent.valid.y, direct.valid.y)
    assert from_parent.augment is None and direct.augment == "crop_flip"
    assert from_parent.describe()["sizes"] == {"train": 80, "valid": 20, "test": 20}
    assert from_parent.describe()["source"] == str(cifar_dir)
    other_seed = load_dataset("cifar10", data_dir=cifar_dir, split_seed=3, valid_size=20)
    assert not torch.equal(other_seed.valid.x, direct.valid.x)


def test_cifar_without_meta_uses_official_names(cifar_dir):
    (cifar_dir / "batches.meta").unlink()
    data = load_dataset("cifar10", data_dir=cifar_dir, valid_size=10)
    assert data.class_names == tuple(LABEL_NAMES)


def test_cifar_missing_directory(tmp_path):
    with pytest.raises(WsnasError) as info:
        load_dataset("cifar10", data_dir=tmp_path / "nowhere")
    _one_line_error(info, "nowhere", "data_batch_1", "test_batch")
    with pytest.raises(WsnasError) as info:
        load_dataset("cifar10")
    _one_line_error(info, "cifar-10-batches-py")


def test_cifar_missing_batch_file(cifar_dir):
    (cifar_dir / "data_batch_3").unlink()
    for where in (cifar_dir, cifar_dir.parent):
        with pytest.raises(WsnasError) as info:
            load_dataset("cifar10", data_dir=where)
        message = _one_line_error(info, "data_batch_3", str(cifar_dir))
        assert "lacks data_batch_3;" in message


def test_cifar_corrupt_file(cifar_dir):
    path = cifar_dir / "data_batch_2"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WsnasError) as info:
        load_dataset("cifar10", data_dir=cifar_dir, valid_size=10)
    _one_line_error(info, "data_batch_2", "corrupt")


class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_cifar_disallowed_global(cifar_dir, tmp_path):
    marker = tmp_path / "pwned"
    evil = _batch_dict(np.zeros((PER_BATCH, 3072), np.uint8), [0] * PER_BATCH, b"x")
    evil[b"filenames"] = _RunsCommand(f"touch {marker}")
    with open(cifar_dir / "data_batch_4", "wb") as f:
        pickle.dump(evil, f, protocol=2)
    with pytest.raises(WsnasError) as info:
        load_dataset("cifar10", data_dir=cifar_dir, valid_size=10)
    _one_line_error(info, "data_batch_4", "system", "not allowed")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("data", "labels", "needle"),
    [
        (np.zeros((PER_BATCH, 3000), np.uint8), [0] * PER_BATCH, "N x 3072"),
        (np.zeros((PER_BATCH, 3072), np.float32), [0] * PER_BATCH, "uint8"),
        (np.zeros((PER_BATCH, 3072), np.uint8), [0] * (PER_BATCH - 1), "labels"),
        (np.zeros((PER_BATCH, 3072), np.uint8), [10] * PER_BATCH, "0..9"),
    ],
    ids=["shape", "dtype", "label-count", "label-range"],
)
def test_cifar_bad_contents(cifar_dir, data, labels, needle):
    with open(cifar_dir / "test_batch", "wb") as f:
        pickle.dump(_batch_dict(data, labels, b"t"), f, protocol=2)
    with pytest.raises(WsnasError) as info:
        load_dataset("cifar10", data_dir=cifar_dir, valid_size=10)
    _one_line_error(info, "test_batch", needle)


def test_cifar_accepts_str_keys(cifar_dir):
    data = np.arange(3 * 3072).astype(np.uint8).reshape(3, 3072)
    with open(cifar_dir / "x", "wb") as f:
        pickle.dump({"data": data, "labels": [1, 2, 3]}, f, protocol=4)
    images, labels = read_cifar_batch(cifar_dir / "x")
    assert images.shape == (3, 3, 32, 32) and labels.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(images.reshape(3, 3072), data)


@pytest.mark.parametrize("valid_size", [-1, 100, 2.5, True])
def test_cifar_bad_valid_size(cifar_dir, valid_size):
    with pytest.raises(WsnasError) as info:
        load_dataset("cifar10", data_dir=cifar_dir, valid_size=valid_size)
    _one_line_error(info, "valid_size", "0 to 99")


def test_cifar_unknown_option(cifar_dir):
    with pytest.raises(WsnasError) as info:
        load_dataset("cifar10", data_dir=cifar_dir, validsize=10)
    _one_line_error(info, "'validsize'", "valid_size", "augment")


# ------------------------------------------------------------------------ batching


def _toy_split(n: int = 10) -> Split:
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, 3, 3).contiguous()
    return Split(x=x, y=torch.arange(n))


def test_shuffled_epoch_visits_every_index_once():
    split = _toy_split(23)
    gen = torch.Generator().manual_seed(0)
    batches = list(iterate_batches(split, 5, shuffle=True, generator=gen))
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(23))
    assert seen.tolist() != list(range(23))
    for x, y in batches:  # images travel with their labels
        assert torch.equal(x[:, 0, 0, 0], y.float())


def test_drop_last_and_num_batches():
    split = _toy_split(10)
    gen = torch.Generator().manual_seed(0)
    kept = list(iterate_batches(split, 3, shuffle=True, generator=gen, drop_last=True))
    assert [len(y) for _, y in kept] == [3, 3, 3]
    assert num_batches(10, 3, drop_last=True) == 3
    assert num_batches(10, 3, drop_last=False) == 4
    assert num_batches(9, 3, drop_last=False) == 3
    assert len(list(iterate_batches(split, 3, shuffle=False))) == 4
    assert list(iterate_batches(split, 20, shuffle=False, drop_last=True)) == []


def test_sequential_batches_are_views_in_order():
    split = _toy_split(7)
    batches = list(iterate_batches(split, 4, shuffle=False))
    assert torch.cat([y for _, y in batches]).tolist() == list(range(7))
    assert batches[0][0].untyped_storage().data_ptr() == split.x.untyped_storage().data_ptr()


def test_batches_reproducible_from_generator_seed():
    split = _toy_split(50)

    def epoch(seed: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return [
            x
            for x, _ in iterate_batches(split, 8, shuffle=True, generator=gen, augment="crop_flip")
        ]

    first, second, other = epoch(7), epoch(7), epoch(8)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_augmented_batches_match_random_crop_flip():
    split = Split(
        x=torch.randn(9, 3, 6, 6, generator=torch.Generator().manual_seed(1)),
        y=torch.zeros(9, dtype=torch.int64),
    )
    gen_a = torch.Generator().manual_seed(4)
    gen_b = torch.Generator().manual_seed(4)
    got = [
        x for x, _ in iterate_batches(split, 4, shuffle=False, generator=gen_a, augment="crop_flip")
    ]
    want = [random_crop_flip(split.x[i : i + 4], gen_b) for i in range(0, 9, 4)]
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_supplied_indices_define_the_order():
    split = _toy_split(6)
    indices = torch.tensor([5, 5, 0, 3, 1, 5, 2])
    batches = list(iterate_batches(split, 3, shuffle=False, indices=indices))
    assert [y.tolist() for _, y in batches] == [[5, 5, 0], [3, 1, 5], [2]]
    assert torch.equal(batches[0][0][:, 0, 0, 0], torch.tensor([5.0, 5.0, 0.0]))
    with pytest.raises(ValueError):
        iterate_batches(split, 3, shuffle=True, indices=indices)
    with pytest.raises(IndexError):
        iterate_batches(split, 3, shuffle=False, indices=torch.tensor([0, 6]))


def test_batching_argument_errors_are_raised_at_call_time():
    split = _toy_split(4)
    with pytest.raises(WsnasError) as info:
        iterate_batches(split, 0, shuffle=False)
    _one_line_error(info, "batch size", "0")
    with pytest.raises(WsnasError) as info:
        iterate_batches(split, 2, shuffle=False, augment="cutout")
    _one_line_error(info, "'cutout'", "crop_flip")


# ---------------------------------------------------------------------- augmentation


def _reference_crop_flip(x: torch.Tensor, params: CropFlipParams, padding: int) -> torch.Tensor:
    """Per-sample crop and flip with plain slicing."""
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        padded = torch.zeros(c, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
        padded[:, padding : padding + h, padding : padding + w] = x[i]
        top, left = int(params.top[i]), int(params.left[i])
        window = padded[:, top : top + h, left : left + w]
        if bool(params.flip[i]):
            window = window[:, :, torch.arange(w - 1, -1, -1)]
        out[i] = window
    return out


@pytest.mark.parametrize("padding", [0, 1, 4])
def test_random_crop_flip_matches_per_sample_loop(padding):
    x = torch.randn(32, 3, 5, 7, generator=torch.Generator().manual_seed(0))  # H != W
    out = random_crop_flip(x, torch.Generator().manual_seed(11), padding=padding)
    params = sample_crop_flip(32, padding, torch.Generator().manual_seed(11), "cpu")
    assert torch.equal(out, _reference_crop_flip(x, params, padding))
    assert out.shape == x.shape and out.is_contiguous()
    assert params.flip.any() and not params.flip.all()
    if padding:
        assert len(set(params.top.tolist())) > 1 and len(set(params.left.tolist())) > 1
        assert int(params.top.max()) <= 2 * padding and int(params.left.min()) >= 0


def test_random_crop_flip_output_is_some_crop_of_each_input():
    """Independent of the parameter sampling: every output is one of the allowed views."""
    padding = 2
    x = torch.randn(12, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    out = random_crop_flip(x, torch.Generator().manual_seed(5), padding=padding)
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    for i in range(len(x)):
        candidates = [
            view
            for top in range(2 * padding + 1)
            for left in range(2 * padding + 1)
            for view in [padded[i, :, top : top + 4, left : left + 4]]
            for view in (view, view.flip(-1))
        ]
        assert any(torch.equal(out[i], cand) for cand in candidates)


def test_crop_flip_identity_without_padding_or_flip():
    x = torch.randn(5, 3, 4, 6)
    params = CropFlipParams(
        top=torch.zeros(5, dtype=torch.long),
        left=torch.zeros(5, dtype=torch.long),
        flip=torch.zeros(5, dtype=torch.bool),
    )
    assert torch.equal(crop_flip(x, params, padding=0), x)
    flipped = crop_flip(x, CropFlipParams(params.top, params.left, ~params.flip), padding=0)
    assert torch.equal(flipped, x.flip(-1))


def test_crop_flip_rejects_bad_padding():
    with pytest.raises(WsnasError) as info:
        random_crop_flip(torch.zeros(1, 1, 2, 2), None, padding=-1)
    _one_line_error(info, "padding", "-1")


def test_limit_keeps_a_class_balanced_subset_of_every_split_in_order():
    full = load_dataset("digits")
    cut = load_dataset("digits", limit="200")
    for name in ("train", "valid", "test"):
        a, b = full.split(name), cut.split(name)
        assert len(b.y) == 200
        counts = torch.bincount(b.y, minlength=10)
        share = torch.bincount(a.y, minlength=10) * 200 / len(a.y)
        assert ((counts - share).abs() <= 1).all()  # each class within one image of its share
        # the images are the full split's, in its order (rows matched exactly)
        match = (b.x.flatten(1)[:, None, :] == a.x.flatten(1)[None, :, :]).all(-1)
        rows = match.float().argmax(1)
        assert match.any(1).all() and bool((rows[1:] > rows[:-1]).all())
    assert cut.mean == full.mean and cut.describe()["limit"] == 200 and "limit" not in full.describe()
    assert load_dataset("digits", limit=5000).train.x.shape == full.train.x.shape  # a split smaller than N stays


@pytest.mark.parametrize("limit", [0, -3, "many"])
def test_bad_limit_is_a_one_line_error(limit):
    with pytest.raises(WsnasError, match=f"limit must be a positive number of images per split, got {limit!r}"):
        load_dataset("digits", limit=limit)


def test_a_limited_dataset_reloads_identically_from_its_spec():
    from wsnas.execution.jobs import DataSpec

    data = load_dataset("digits", limit=150)
    again = DataSpec.of(data).load()
    for name in ("train", "valid", "test"):
        assert torch.equal(data.split(name).x, again.split(name).x)


def test_a_limited_cifar_split_reloads_identically_from_its_spec(cifar_dir):
    """The spec keeps the valid split's size before the limit: reloaded with ``valid_size`` equal
    to the limited size, the train/valid split itself would differ."""
    from wsnas.execution.jobs import DataSpec

    data = load_dataset("cifar10", data_dir=cifar_dir, valid_size=20, limit=8)
    assert len(data.valid) == 8 and dict(DataSpec.of(data).options)["valid_size"] == 20
    again = DataSpec.of(data).load()
    for name in ("train", "valid", "test"):
        assert torch.equal(data.split(name).x, again.split(name).x)
