"""The datasets: a registry saying what each one is, loaders of three splits (train, validation,
test) whose items are ``(x, y)`` with a float tensor ``x`` and an int label ``y``, and per-class
subsets (the sources themselves are read in :mod:`~pidkd.distill.readers`).

Every dataset comes with a training and a test split. The validation split is carved from the
training split, the same examples whatever a run's seed or training subset, so that settings can
be chosen on it without ever looking at the test split.

``digits`` (scikit-learn) and ``mnist1d`` (generated) are embedded: they need no files and no
network. CIFAR-10/100 download into ``root`` on request and are held in memory as tensors;
CUB-200-2011 must be placed there by hand (see ``data/README.md``) and is read image by image.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset

from ..errors import ConfigError, DatasetNotFoundError, check_name
from .batching import AugmentedTensors, CropFlip
from .readers import (
    CIFAR_CLASSES,
    CUB200,
    black,
    cifar,
    cifar_class,
    cub_transform,
    digits_arrays,
    mnist1d_arrays,
    tensor_dataset,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset; ``embedded`` ones need no files or network."""

    name: str
    num_classes: int
    in_channels: int
    input_shape: tuple[int, ...]
    embedded: bool


DATASETS: Mapping[str, DatasetInfo] = MappingProxyType({info.name: info for info in (
    DatasetInfo("digits", 10, 1, (1, 8, 8), embedded=True),
    DatasetInfo("mnist1d", 10, 1, (1, 40), embedded=True),
    DatasetInfo("cifar10", 10, 3, (3, 32, 32), embedded=False),
    DatasetInfo("cifar100", 100, 3, (3, 32, 32), embedded=False),
    DatasetInfo("cub200", 200, 3, (3, 224, 224), embedded=False),
)})
"""Every dataset by name. CUB's input shape is the one at the default ``image_size`` of 224."""

SPLITS = ("train", "validation", "test")
"""The splits :func:`load_dataset` gives: validation examples are carved from the training split."""

VALIDATION_SEED = 2025
"""Seeds the permutation that picks the validation examples: fixed, so they never depend on a run."""

def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; an unknown name raises a ConfigError listing the valid ones."""
    return DATASETS[check_name("dataset", name, DATASETS)]


def load_dataset(
    name: str,
    *,
    split: str,
    root: str | Path = "data",
    samples_per_class: int | None = None,
    validation_per_class: int = 0,
    augment: bool = False,
    download: bool = False,
    seed: int = 0,
    image_size: int = 224,
) -> Dataset:
    """Split ``split`` ("train", "validation" or "test") of dataset ``name``.

    ``validation_per_class`` examples of each class of the dataset's training split form the
    validation split; they are chosen by the fixed :data:`VALIDATION_SEED` and left out of the
    "train" split, so the two never share an example. ``samples_per_class`` then keeps at most
    that many examples of each class of the split, chosen by ``seed`` (see :func:`per_class_subset`).

    ``root`` is where file-backed datasets live; ``augment`` adds random crops and flips to the
    "train" split of image datasets (validation and test are never augmented); ``download``
    fetches CIFAR if it is missing; ``image_size`` is CUB's crop side. Embedded datasets and
    CIFAR come as a ``TensorDataset`` held in memory; augmented CIFAR as an
    :class:`AugmentedTensors`, whose batches the training loop augments on its device.
    """
    check_name("dataset", name, DATASETS)
    check_name("split", split, SPLITS)
    if augment and DATASETS[name].embedded:
        raise ConfigError(f"augment=True is not defined for {name!r}; only cifar10, cifar100 and cub200 augment")
    if not isinstance(validation_per_class, int) or validation_per_class < 0:
        raise ConfigError(f"validation_per_class must be an integer >= 0, not {validation_per_class!r}")
    if split == "validation" and validation_per_class == 0:
        raise ConfigError("the validation split is empty: pass validation_per_class > 0")
    augment = augment and split == "train"
    dataset = _source(name, Path(root), train=split != "test", augment=augment, download=download,
                      image_size=image_size)
    if split != "test" and validation_per_class:
        validation = validation_indices(targets(dataset), validation_per_class)
        if split == "validation":
            dataset = _take(dataset, validation)
        else:
            rest = torch.ones(len(dataset), dtype=torch.bool)
            rest[validation] = False
            dataset = _take(dataset, rest.nonzero().flatten())
    if samples_per_class is not None:
        dataset = per_class_subset(dataset, samples_per_class, seed=seed)
    if augment and name in CIFAR_CLASSES:
        dataset = AugmentedTensors(*dataset.tensors, augment=CropFlip(4, black(name)))
    return dataset


def _source(name: str, root: Path, *, train: bool, augment: bool, download: bool, image_size: int) -> Dataset:
    """The training or test split of ``name`` as the dataset defines it."""
    if name == "digits":
        return tensor_dataset(*digits_arrays(train))
    if name == "mnist1d":
        return tensor_dataset(*mnist1d_arrays(root, train))
    if name in CIFAR_CLASSES:
        return cifar(name, root, train=train, download=download)
    return CUB200(root, train=train, transform=cub_transform(augment, image_size))


def validation_indices(labels: Tensor, per_class: int) -> Tensor:
    """The sorted indices of the first ``per_class`` examples of each class after a permutation
    seeded by :data:`VALIDATION_SEED`; a larger ``per_class`` adds examples to a smaller one's."""
    counts = torch.bincount(labels)
    smallest = int(counts[counts > 0].min())
    if per_class >= smallest:
        raise ConfigError(
            f"validation_per_class={per_class} leaves no training example of a class with {smallest}; "
            f"use at most {smallest - 1}")
    return _first_per_class(labels, per_class, VALIDATION_SEED)


def _first_per_class(labels: Tensor, k: int, seed: int) -> Tensor:
    """The sorted indices of the first ``k`` examples of each class after a permutation seeded by ``seed``."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return torch.cat([order[labels[order] == c][:k] for c in labels.unique()]).sort().values


def _take(dataset: Dataset, indices: Tensor) -> Dataset:
    """The examples at ``indices``: a TensorDataset stays one (so the fast batching path still
    applies), anything else becomes a Subset."""
    if isinstance(dataset, TensorDataset):
        return TensorDataset(*(t[indices] for t in dataset.tensors))
    return Subset(dataset, indices.tolist())


def download(name: str, root: str | Path = "data") -> Path | None:
    """Make sure dataset ``name`` is on disk under ``root`` and return its folder.

    CIFAR is downloaded (and its checksums verified) by torchvision unless its batch files are
    there already; CUB cannot be fetched
    automatically, so a missing CUB raises a DatasetNotFoundError saying where to get it.
    Embedded datasets need nothing: returns None.
    """
    check_name("dataset", name, DATASETS)
    root = Path(root)
    if DATASETS[name].embedded:
        return None
    if name in CIFAR_CLASSES:
        cls = cifar_class(name)
        folder = root / cls.base_folder
        if all((folder / file).is_file() for file, _ in cls.train_list + cls.test_list):
            return folder  # there already (a damaged file is reported when it is read)
        try:
            cls(root, train=True, download=True)
        except OSError as error:  # no network (URLError is an OSError), or a folder that cannot be written
            raise DatasetNotFoundError(
                f"could not download {name} into {root} ({getattr(error, 'reason', None) or error}): fetch {cls.url} "
                f"by hand and put {cls.filename} in {root} (pidkd unpacks it there), or give another folder with "
                f"--root / $PIDKD_DATA") from None
        log.info("%s is ready in %s", name, root / cls.base_folder)
        return root / cls.base_folder
    CUB200(root, train=True)  # raises with instructions when the files are missing
    return root / CUB200.base_folder


def per_class_subset(dataset: Dataset, samples_per_class: int, *, seed: int = 0) -> Dataset:
    """The first ``samples_per_class`` examples of each class after a permutation seeded by ``seed``.

    A class with fewer examples keeps them all. Indices stay in dataset order. A TensorDataset
    gives a TensorDataset (so the fast batching path still applies), anything else a Subset.
    """
    if samples_per_class <= 0:
        raise ConfigError(f"samples_per_class must be positive, not {samples_per_class}")
    return _take(dataset, _first_per_class(targets(dataset), samples_per_class, seed))


def targets(dataset: Dataset) -> Tensor:
    """The int64 labels of every example, read without loading images where the dataset allows."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].to(torch.int64)
    if isinstance(dataset, Subset):
        return targets(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.int64)]
    if hasattr(dataset, "targets"):
        return torch.as_tensor(dataset.targets, dtype=torch.int64)
    return torch.tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.int64)


