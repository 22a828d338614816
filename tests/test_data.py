"""Tests of pidkd.distill.data, readers and batching: embedded datasets, CIFAR and CUB on tiny files in their real on-disk
formats, per-class subsets, missing-data errors, and seeded batching."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from formats import write_cifar, write_cub
from torch.utils.data import Dataset, Subset, TensorDataset

from pidkd.distill import batching, data, readers
from pidkd.errors import ConfigError, DatasetNotFoundError


def _counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    return torch.bincount(labels, minlength=num_classes).tolist()


# --- registry -----------------------------------------------------------------------------


def test_registry_names_and_info():
    assert set(data.DATASETS) == {"digits", "mnist1d", "cifar10", "cifar100", "cub200"}
    assert data.dataset_info("cifar100").num_classes == 100
    assert data.dataset_info("digits").embedded and not data.dataset_info("cub200").embedded
    assert all(info.in_channels == info.input_shape[0] for info in data.DATASETS.values())


@pytest.mark.parametrize("call", [
    lambda: data.dataset_info("imagenet"),
    lambda: data.load_dataset("imagenet", split="train"),
    lambda: data.download("imagenet"),
])
def test_unknown_name_lists_valid_names(call):
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'; valid names: .*cifar10.*digits"):
        call()


# --- embedded datasets --------------------------------------------------------------------


def test_digits_split_shapes_and_values():
    train, test = data.load_dataset("digits", split="train"), data.load_dataset("digits", split="test")
    assert isinstance(train, TensorDataset) and isinstance(test, TensorDataset)
    assert (len(train), len(test)) == (1257, 540)
    x, y = train.tensors
    assert x.shape == (1257, *data.dataset_info("digits").input_shape)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    assert min(_counts(y, 10)) >= 120 and min(_counts(test.tensors[1], 10)) >= 50  # stratified


def test_digits_split_is_fixed_whatever_the_seed():
    a = data.load_dataset("digits", split="test", seed=0)
    b = data.load_dataset("digits", split="test", seed=7)
    assert all(torch.equal(s, t) for s, t in zip(a.tensors, b.tensors))
    a.tensors[0].zero_()  # a caller's in-place change does not reach the cache
    assert data.load_dataset("digits", split="test").tensors[0].max() == 1


def test_mnist1d_leaves_global_rngs_untouched(tmp_path):
    readers._mnist1d_cached.cache_clear()
    random.seed(123)
    np.random.seed(123)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    data.load_dataset("mnist1d", split="train", root=tmp_path)
    assert random.getstate() == python_state
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))


def test_mnist1d_split_shapes_and_determinism():
    train, test = data.load_dataset("mnist1d", split="train"), data.load_dataset("mnist1d", split="test")
    assert (len(train), len(test)) == (8000, 2000)
    x, y = train.tensors
    assert x.shape == (8000, 1, 40) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert min(_counts(test.tensors[1], 10)) >= 180
    assert set(y.tolist()) == set(range(10))
    readers._mnist1d_cached.cache_clear()
    again = data.load_dataset("mnist1d", split="test")
    assert all(torch.equal(s, t) for s, t in zip(test.tensors, again.tensors))


def test_mnist1d_kept_on_disk_is_the_generated_data_and_an_unwritable_folder_is_no_obstacle(tmp_path):
    """Each training process used to generate MNIST-1D anew (about 3 s); the kept copy must be the
    very same arrays, and a data folder that cannot be written must only cost the generation."""
    readers._mnist1d_cached.cache_clear()
    first = data.load_dataset("mnist1d", split="test", root=tmp_path)
    assert (tmp_path / "mnist1d" / "mnist1d-10000.npz").is_file()
    generated = readers._mnist1d_generated()
    assert np.array_equal(first.tensors[0].numpy()[:, 0], generated["x_test"].astype(np.float32))
    assert np.array_equal(first.tensors[1].numpy(), generated["y_test"])
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be")
    readers._mnist1d_cached.cache_clear()
    again = data.load_dataset("mnist1d", split="test", root=blocked)
    assert all(torch.equal(s, t) for s, t in zip(first.tensors, again.tensors))


def test_augment_is_refused_for_embedded_datasets():
    with pytest.raises(ConfigError, match="augment"):
        data.load_dataset("digits", split="train", augment=True)


# --- per-class subsets --------------------------------------------------------------------


def test_samples_per_class_is_balanced_and_seeded():
    full = data.load_dataset("digits", split="train")
    sub = data.load_dataset("digits", split="train", samples_per_class=5, seed=1)
    assert isinstance(sub, TensorDataset) and len(sub) == 50
    assert _counts(sub.tensors[1], 10) == [5] * 10
    same = data.load_dataset("digits", split="train", samples_per_class=5, seed=1)
    other = data.load_dataset("digits", split="train", samples_per_class=5, seed=2)
    assert torch.equal(sub.tensors[0], same.tensors[0])
    assert not torch.equal(sub.tensors[0], other.tensors[0])
    rows = {tuple(r.flatten().tolist()) for r in full.tensors[0]}
    assert all(tuple(r.flatten().tolist()) in rows for r in sub.tensors[0])


def test_samples_per_class_larger_than_a_class_keeps_it_all():
    full = data.load_dataset("digits", split="test")
    sub = data.load_dataset("digits", split="test", samples_per_class=10_000)
    assert torch.equal(sub.tensors[1], full.tensors[1])


@pytest.mark.parametrize("k", [0, -3])
def test_samples_per_class_must_be_positive(k):
    with pytest.raises(ConfigError, match="samples_per_class"):
        data.load_dataset("digits", split="train", samples_per_class=k)


# --- the validation split -------------------------------------------------------------------


def _rows(dataset: TensorDataset) -> set[tuple[float, ...]]:
    return {tuple(r.flatten().tolist()) for r in dataset.tensors[0]}


@pytest.mark.parametrize("samples_per_class,seed", [(None, 0), (30, 0), (30, 5), (500, 1)])
def test_validation_is_disjoint_from_train_whatever_the_subset_and_seed(samples_per_class, seed):
    validation = data.load_dataset("mnist1d", split="validation", validation_per_class=50, seed=seed)
    train = data.load_dataset("mnist1d", split="train", validation_per_class=50,
                              samples_per_class=samples_per_class, seed=seed)
    reference = data.load_dataset("mnist1d", split="validation", validation_per_class=50)
    assert all(torch.equal(a, b) for a, b in zip(validation.tensors, reference.tensors))
    assert _counts(validation.tensors[1], 10) == [50] * 10
    assert not _rows(validation) & _rows(train)  # MNIST-1D signals are all distinct
    if samples_per_class is not None:
        assert max(_counts(train.tensors[1], 10)) == samples_per_class


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_validation_and_train_partition_the_training_split(name):
    pool = data.load_dataset(name, split="train")
    train = data.load_dataset(name, split="train", validation_per_class=20)
    validation = data.load_dataset(name, split="validation", validation_per_class=20)
    assert isinstance(train, TensorDataset) and isinstance(validation, TensorDataset)
    assert _counts(data.targets(train), 10) == [c - 20 for c in _counts(data.targets(pool), 10)]
    together = torch.cat([train.tensors[0], validation.tensors[0]]).flatten(1)
    assert sorted(map(tuple, together.tolist())) == sorted(map(tuple, pool.tensors[0].flatten(1).tolist()))
    test = data.load_dataset(name, split="test", validation_per_class=20)
    assert torch.equal(test.tensors[0], data.load_dataset(name, split="test").tensors[0])


def test_a_larger_validation_split_extends_a_smaller_one():
    small = data.load_dataset("mnist1d", split="validation", validation_per_class=10)
    large = data.load_dataset("mnist1d", split="validation", validation_per_class=40)
    assert _rows(small) <= _rows(large) and len(large) == 400


def test_validation_split_is_fixed_across_processes():
    before = data.load_dataset("mnist1d", split="validation", validation_per_class=5)
    readers._mnist1d_cached.cache_clear()
    after = data.load_dataset("mnist1d", split="validation", validation_per_class=5)
    assert all(torch.equal(a, b) for a, b in zip(before.tensors, after.tensors))
    expected = data.validation_indices(data.targets(data.load_dataset("mnist1d", split="train")), 5)
    assert torch.equal(after.tensors[0], data.load_dataset("mnist1d", split="train").tensors[0][expected])


@pytest.mark.parametrize(("options", "message"), [
    (dict(split="val"), "unknown split 'val'; valid names: test, train, validation"),
    (dict(split="validation"), "validation split is empty: pass validation_per_class > 0"),
    (dict(split="train", validation_per_class=-1), "validation_per_class must be an integer >= 0"),
    (dict(split="train", validation_per_class=2.5), "validation_per_class must be an integer >= 0"),
    (dict(split="validation", validation_per_class=200), "leaves no training example of a class with 1[0-9][0-9]; use at most"),
])
def test_bad_splits_say_what_to_pass(options, message):
    with pytest.raises(ConfigError, match=message):
        data.load_dataset("digits", **options)


# --- CIFAR on tiny files in the real format -------------------------------------------------


@pytest.mark.parametrize("name,train_size", [("cifar10", 20), ("cifar100", 4)])
def test_cifar_shapes_labels_and_normalisation(tmp_path, name, train_size):
    """Loading reads the batch files without their checksums (verified at download), so files of
    the real format load in any process: a notebook's kernel, a training process."""
    written = write_cifar(tmp_path, name)
    train = data.load_dataset(name, split="train", root=tmp_path)
    test = data.load_dataset(name, split="test", root=tmp_path)
    assert (len(train), len(test)) == (train_size, 4)
    assert data.targets(train).tolist() == written["train_y"].tolist()
    mean, std = (torch.tensor(v)[:, None, None] for v in readers.CIFAR_STATS[name])
    for i in range(len(test)):
        x, y = test[i]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32
        assert y == written["test_y"][i]
        pixels = torch.from_numpy(written["test_x"][i].reshape(3, 32, 32)).float() / 255
        torch.testing.assert_close(x, (pixels - mean) / std)


def test_a_damaged_cifar_file_is_one_actionable_error(tmp_path):
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"truncated")
    with pytest.raises(DatasetNotFoundError, match=r"cifar10 not found \(or damaged: UnpicklingError\) in .*: run "
                                                   r"`python -m pidkd download cifar10`"):
        data.load_dataset("cifar10", split="train", root=tmp_path)


def _crops_and_flips(image: torch.Tensor, fill: torch.Tensor, padding: int = 4) -> list[torch.Tensor]:
    """Every crop of ``image`` padded with ``fill`` and every flip of one: what CropFlip may return."""
    c, h, w = image.shape
    padded = fill.view(c, 1, 1).expand(c, h + 2 * padding, w + 2 * padding).clone()
    padded[:, padding:padding + h, padding:padding + w] = image
    crops = [padded[:, i:i + h, j:j + w] for i in range(2 * padding + 1) for j in range(2 * padding + 1)]
    return crops + [crop.flip(2) for crop in crops]


def test_cifar_augmentation_crops_black_padded_images_and_flips(tmp_path):
    write_cifar(tmp_path, "cifar10")
    plain = data.load_dataset("cifar10", split="train", root=tmp_path)
    augmented = data.load_dataset("cifar10", split="train", root=tmp_path, augment=True)
    assert isinstance(augmented, batching.AugmentedTensors)
    assert torch.equal(augmented.tensors[0], plain.tensors[0])  # indexing gives the plain images
    x = plain.tensors[0]
    black = (torch.zeros(3) - torch.tensor(readers.CIFAR_STATS["cifar10"][0])) / torch.tensor(readers.CIFAR_STATS["cifar10"][1])
    draws = [augmented.augment(x, torch.Generator().manual_seed(seed)) for seed in range(4)]
    for draw in draws:
        assert draw.shape == x.shape
        for i in range(len(x)):
            assert any(torch.equal(draw[i], option) for option in _crops_and_flips(x[i], black))
    assert torch.equal(draws[0], augmented.augment(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(draws[0], draws[1])
    assert any(not torch.equal(draw, x) for draw in draws)
    test = data.load_dataset("cifar10", split="test", root=tmp_path, augment=True)
    assert type(test) is TensorDataset


def test_crop_flip_draws_every_offset_and_both_flips():
    x = torch.arange(4.0).view(1, 1, 2, 2).expand(4000, 1, 2, 2)
    out = batching.CropFlip(1, (-1.0,))(x, torch.Generator().manual_seed(0))
    seen = {tuple(image.flatten().tolist()) for image in out}
    assert len(seen) == 18  # 3 x 3 offsets, each flipped or not, all distinct here


def test_cifar_subset_is_a_subset(tmp_path):
    write_cifar(tmp_path, "cifar10")
    full = data.load_dataset("cifar10", split="train", root=tmp_path)
    sub = data.load_dataset("cifar10", split="train", root=tmp_path, samples_per_class=1)
    assert isinstance(sub, TensorDataset)
    labels = data.targets(sub)
    assert len(labels) == len(set(labels.tolist())) == len(set(data.targets(full).tolist()))
    rows = [next(i for i in range(len(full)) if torch.equal(full[i][0], sub[k][0])) for k in range(len(sub))]
    assert data.targets(full)[rows].tolist() == labels.tolist()
    augmented = data.load_dataset("cifar10", split="train", root=tmp_path, samples_per_class=1, augment=True)
    assert isinstance(augmented, batching.AugmentedTensors) and torch.equal(augmented.tensors[0], sub.tensors[0])


def test_cifar_validation_is_unaugmented_and_disjoint(tmp_path):
    write_cifar(tmp_path, "cifar10", per_batch=20)  # 100 training images, at least 6 of each class
    pool = data.load_dataset("cifar10", split="train", root=tmp_path)
    validation = data.load_dataset("cifar10", split="validation", root=tmp_path, validation_per_class=2)
    train = data.load_dataset("cifar10", split="train", root=tmp_path, validation_per_class=2, augment=True)
    assert type(validation) is TensorDataset and isinstance(train, batching.AugmentedTensors)
    assert _counts(validation.tensors[1], 10) == [2] * 10 and len(train) == len(pool) - 20
    assert not _rows(validation) & _rows(train)


def test_download_of_present_cifar_returns_its_folder(tmp_path):
    write_cifar(tmp_path, "cifar100")
    assert data.download("cifar100", tmp_path) == tmp_path / "cifar-100-python"
    assert data.download("digits", tmp_path) is None


@pytest.mark.parametrize("name,folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_missing_cifar_names_folder_and_fix(tmp_path, name, folder):
    with pytest.raises(DatasetNotFoundError) as info:
        data.load_dataset(name, split="train", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / folder) in message
    assert "download=True" in message and f"python -m pidkd download {name}" in message
    assert isinstance(info.value, FileNotFoundError)


# --- CUB on a tiny fake CUB_200_2011 folder -------------------------------------------------


@pytest.mark.parametrize("augment", [False, True])
def test_cub_split_labels_and_image_size(tmp_path, augment):
    write_cub(tmp_path)
    train = data.load_dataset("cub200", split="train", root=tmp_path, image_size=32, augment=augment)
    test = data.load_dataset("cub200", split="test", root=tmp_path, image_size=32, augment=augment)
    assert (len(train), len(test)) == (6, 3)
    assert data.targets(train).tolist() == [0, 0, 1, 1, 2, 2]
    assert data.targets(test).tolist() == [0, 1, 2]
    for dataset in (train, test):
        for i in range(len(dataset)):
            x, y = dataset[i]
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == data.targets(dataset)[i]


def test_cub_subset_and_download(tmp_path):
    folder = write_cub(tmp_path)
    sub = data.load_dataset("cub200", split="train", root=tmp_path, samples_per_class=1, image_size=16)
    assert isinstance(sub, Subset) and data.targets(sub).tolist() == [0, 1, 2]
    assert data.download("cub200", tmp_path) == folder


def test_cub_validation_takes_training_images_without_augmentation(tmp_path):
    write_cub(tmp_path)
    options = dict(root=tmp_path, image_size=16, validation_per_class=1, augment=True)
    validation = data.load_dataset("cub200", split="validation", **options)
    train = data.load_dataset("cub200", split="train", **options)
    assert data.targets(validation).tolist() == [0, 1, 2] and data.targets(train).tolist() == [0, 1, 2]
    assert not set(validation.indices) & set(train.indices)
    assert torch.equal(validation[0][0], validation[0][0])  # the evaluation transform, not random crops


@pytest.mark.parametrize("remove", [None, "train_test_split.txt"])
def test_missing_cub_names_folder_and_source(tmp_path, remove):
    if remove:
        (write_cub(tmp_path) / remove).unlink()
    for call in (lambda: data.load_dataset("cub200", split="train", root=tmp_path),
                 lambda: data.download("cub200", tmp_path)):
        with pytest.raises(DatasetNotFoundError) as info:
            call()
        message = str(info.value)
        assert str(tmp_path / "CUB_200_2011") in message
        assert readers.CUB_URL in message and "CUB_200_2011.tgz" in message


# --- targets and batches ------------------------------------------------------------------


class _Numbered(Dataset):
    """A dataset that is not a TensorDataset: item i is (tensor([i]), i % 3)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.tensor([float(i)]), i % 3


def _tensor_numbered(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n) % 3)


def test_targets_without_a_targets_attribute():
    assert data.targets(_Numbered(5)).tolist() == [0, 1, 2, 0, 1]
    assert data.targets(Subset(_tensor_numbered(5), [4, 0])).tolist() == [1, 0]


def _order(batches) -> list[int]:
    return [int(v) for x, _ in batches for v in x.flatten()]


@pytest.mark.parametrize("make", [_tensor_numbered, _Numbered])
def test_batches_are_seeded_and_cover_every_example_once(make):
    dataset = make(23)
    first = _order(batching.batches(dataset, 5, shuffle=True, seed=3))
    assert sorted(first) == list(range(23))
    assert first == _order(batching.batches(dataset, 5, shuffle=True, seed=3))
    assert first != _order(batching.batches(dataset, 5, shuffle=True, seed=4))
    assert _order(batching.batches(dataset, 5, shuffle=False)) == list(range(23))
    passes = batching.batches(dataset, 5, shuffle=True, seed=3)
    assert _order(passes) == first and _order(passes) != first  # a new order each pass
    for x, y in batching.batches(dataset, 5, shuffle=True, seed=0):
        assert y.dtype == torch.int64 and torch.equal(y, x[:, 0].long() % 3)


@pytest.mark.parametrize("make", [_tensor_numbered, _Numbered])
@pytest.mark.parametrize("drop_last,expected", [(False, [5, 5, 5, 5, 3]), (True, [5, 5, 5, 5])])
def test_batches_len_and_sizes(make, drop_last, expected):
    batches = batching.batches(make(23), 5, shuffle=True, seed=0, drop_last=drop_last)
    assert len(batches) == len(expected)
    assert [len(y) for _, y in batches] == expected


def test_batches_reject_a_bad_batch_size():
    with pytest.raises(ConfigError, match="batch_size"):
        batching.batches(_tensor_numbered(3), 0, shuffle=False)
