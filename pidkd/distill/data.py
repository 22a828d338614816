"""The datasets: a registry saying what each one is, loaders of three splits (train, validation,
test) whose items are ``(x, y)`` with a float tensor ``x`` and an int label ``y``, per-class
subsets, seeded batch iteration, and the batch-wise CIFAR augmentation that runs on the training
device.

Every dataset comes with a training and a test split. The validation split is carved from the
training split, the same examples whatever a run's seed or training subset, so that settings can
be chosen on it without ever looking at the test split.

``digits`` (scikit-learn) and ``mnist1d`` (generated) are embedded: they need no files and no
network. CIFAR-10/100 download into ``root`` on request and are held in memory as tensors;
CUB-200-2011 must be placed there by hand (see ``data/README.md``) and is read image by image.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import pickle
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from ..errors import ConfigError, DatasetNotFoundError, check_name

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

CIFAR_STATS: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = MappingProxyType({
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
})
"""Per-channel mean and standard deviation of each CIFAR training set (pixels in [0, 1])."""

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""The ImageNet mean and standard deviation that pretrained torchvision models expect."""

CUB_URL = "https://data.caltech.edu/records/65de6-vh018"
"""Where CUB_200_2011.tgz is published (Caltech data repository)."""

SPLITS = ("train", "validation", "test")
"""The splits :func:`load_dataset` gives: validation examples are carved from the training split."""

VALIDATION_SEED = 2025
"""Seeds the permutation that picks the validation examples: fixed, so they never depend on a run."""

MNIST1D_SAMPLES = 10_000
"""MNIST-1D examples generated; its default 80/20 split makes 8,000 training and 2,000 test ones."""

_CIFAR_CLASSES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}
"""torchvision's class for each CIFAR, by name: torchvision is imported only when CIFAR is read."""


def _cifar_class(name: str) -> type:
    """torchvision's dataset class of CIFAR ``name`` (its file lists, folder and download)."""
    from torchvision import datasets

    return getattr(datasets, _CIFAR_CLASSES[name])


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
    if augment and name in _CIFAR_CLASSES:
        dataset = AugmentedTensors(*dataset.tensors, augment=CropFlip(4, _black(name)))
    return dataset


def _source(name: str, root: Path, *, train: bool, augment: bool, download: bool, image_size: int) -> Dataset:
    """The training or test split of ``name`` as the dataset defines it."""
    if name == "digits":
        return _tensor_dataset(*_digits_arrays(train))
    if name == "mnist1d":
        return _tensor_dataset(*_mnist1d_arrays(root, train))
    if name in _CIFAR_CLASSES:
        return _cifar(name, root, train=train, download=download)
    return CUB200(root, train=train, transform=_cub_transform(augment, image_size))


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
    if name in _CIFAR_CLASSES:
        cls = _cifar_class(name)
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


def batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    drop_last: bool = False,
) -> TensorBatches | DataLoader:
    """An iterable of ``(x, y)`` batches with ``len`` equal to the number of batches.

    The order comes from one ``torch.Generator`` seeded with ``seed`` (the global generator when
    None): each pass over the result draws a new order, and the sequence of orders is fixed by
    the seed, which may be reseeded between passes through the result's ``generator``. A
    TensorDataset is batched by indexing its tensors directly (on whatever device they are);
    anything else goes through a DataLoader, with persistent ``num_workers`` processes.
    """
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, not {batch_size}")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    pin_memory = pin_memory and torch.cuda.is_available()
    if isinstance(dataset, TensorDataset):
        return TensorBatches(dataset, batch_size, shuffle=shuffle, generator=generator,
                             pin_memory=pin_memory, drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, pin_memory=pin_memory, drop_last=drop_last,
                      persistent_workers=num_workers > 0)


class TensorBatches:
    """Batches of a TensorDataset taken by indexing its tensors with a permutation, which avoids
    the per-example Python calls of a DataLoader on small in-memory datasets."""

    def __init__(self, dataset: TensorDataset, batch_size: int, *, shuffle: bool,
                 generator: torch.Generator | None, pin_memory: bool, drop_last: bool) -> None:
        self.tensors = dataset.tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.pin_memory = pin_memory
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.tensors[0].device)
        pin = self.pin_memory and not self.tensors[0].is_cuda
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            batch = tuple(t[index] for t in self.tensors)
            yield tuple(t.pin_memory() for t in batch) if pin else batch


@dataclass(frozen=True)
class CropFlip:
    """Random crops of an image padded by ``padding`` pixels of colour ``fill``, then horizontal
    flips with probability 1/2 (the CIFAR augmentation), drawn per image for a whole batch at
    once on the batch's device: per-image PIL transforms in loader processes cannot keep a GPU busy
    on 32x32 images."""

    padding: int
    fill: tuple[float, ...]

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, c, h, w = x.shape
        p, device = self.padding, x.device
        fill = torch.tensor(self.fill, dtype=x.dtype, device=device).view(1, c, 1, 1)
        padded = fill.expand(n, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p:p + h, p:p + w] = x
        top, left = torch.randint(0, 2 * p + 1, (2, n, 1), generator=generator, device=device)
        rows = (top + torch.arange(h, device=device))[:, None, :, None]
        cols = (left + torch.arange(w, device=device))[:, None, None, :]
        crops = padded[torch.arange(n, device=device)[:, None, None, None],
                       torch.arange(c, device=device)[None, :, None, None], rows, cols]
        flip = torch.rand(n, generator=generator, device=device) < 0.5
        return torch.where(flip[:, None, None, None], crops.flip(3), crops)


class AugmentedTensors(TensorDataset):
    """A TensorDataset whose training batches the training loop passes through
    ``augment(x, generator)`` on its device; indexing it gives the plain tensors."""

    def __init__(self, *tensors: Tensor, augment: Callable[[Tensor, torch.Generator], Tensor]) -> None:
        super().__init__(*tensors)
        self.augment = augment


def on_device(dataset: TensorDataset, device: torch.device) -> TensorDataset:
    """``dataset`` with its tensors moved to ``device`` (an augmented one keeps its augmentation)."""
    tensors = [t.to(device) for t in dataset.tensors]
    if isinstance(dataset, AugmentedTensors):
        return AugmentedTensors(*tensors, augment=dataset.augment)
    return TensorDataset(*tensors)


class CUB200(Dataset):
    """CUB-200-2011 read from its official layout under ``root/CUB_200_2011`` (torchvision has
    no class for it): the split from ``train_test_split.txt``, labels 0-based, images as RGB."""

    base_folder = "CUB_200_2011"

    def __init__(self, root: str | Path, *, train: bool,
                 transform: Callable[[Image.Image], Tensor] | None = None) -> None:
        self.folder = Path(root) / self.base_folder
        self.transform = transform
        paths, labels, is_train = (
            self._read_table(file)
            for file in ("images.txt", "image_class_labels.txt", "train_test_split.txt"))
        ids = sorted(i for i, flag in is_train.items() if (flag == "1") == train)
        self.samples = [(self.folder / "images" / paths[i], int(labels[i]) - 1) for i in ids]
        self.targets = [label for _, label in self.samples]

    def _read_table(self, file: str) -> dict[int, str]:
        """One of CUB's ``<image id> <value>`` text files as a dict."""
        path = self.folder / file
        if not path.is_file():
            raise DatasetNotFoundError(
                f"CUB-200-2011 not found: {path} is missing. It cannot be downloaded automatically: "
                f"get CUB_200_2011.tgz from {CUB_URL} and extract it into {self.folder.parent} "
                f"(tar -xzf CUB_200_2011.tgz -C {self.folder.parent}) so that {self.folder} holds "
                "images.txt, image_class_labels.txt, train_test_split.txt and images/")
        rows = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
        return {int(key): value.strip() for key, value in rows}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        return (self.transform(image) if self.transform else image), label


def _digits_arrays(train: bool) -> tuple[np.ndarray, np.ndarray]:
    """The digits images and labels of one split."""
    x_train, x_test, y_train, y_test = _digits_splits()
    return (x_train, y_train) if train else (x_test, y_test)


@functools.lru_cache(maxsize=None)
def _digits_splits() -> tuple[np.ndarray, ...]:
    """scikit-learn's 1797 8x8 digits scaled to [0, 1], split 70/30 stratified with a fixed
    seed, so every run sees the same split whatever its own seed."""
    from sklearn.datasets import load_digits  # imported here: it takes most of a second

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    return tuple(train_test_split(x, digits.target, test_size=0.3, stratify=digits.target, random_state=0))


MNIST1D_ARRAYS = ("x", "y", "x_test", "y_test")


def _mnist1d_arrays(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST-1D signals and labels of one split."""
    data = _mnist1d_cached(root)
    x, y = (data["x"], data["y"]) if train else (data["x_test"], data["y_test"])
    return x.astype(np.float32)[:, None], y


@functools.lru_cache(maxsize=None)
def _mnist1d_cached(root: Path) -> dict[str, np.ndarray]:
    """MNIST-1D's splits, generated once and kept in ``root/mnist1d/`` (the same arrays: generating
    takes about 3 s, a cost every training process paid); a folder that cannot be written is no
    obstacle, the data are generated again."""
    path = root / "mnist1d" / f"mnist1d-{MNIST1D_SAMPLES}.npz"
    try:
        with np.load(path) as cached:
            return {name: cached[name] for name in MNIST1D_ARRAYS}
    except (OSError, KeyError, ValueError):  # missing, or truncated by a crash
        pass
    generated = _mnist1d_generated()
    data = {name: generated[name] for name in MNIST1D_ARRAYS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **data)
        os.replace(tmp, path)
    except OSError:
        pass
    return data


def _mnist1d_generated() -> dict[str, np.ndarray]:
    """MNIST-1D generated offline, once per process, with its default arguments (seed 42) but
    :data:`MNIST1D_SAMPLES` examples instead of 5,000: 2,000 test examples instead of 1,000 make
    accuracies and PID measures less noisy, and the training split has room for a validation split.

    ``make_dataset`` reseeds Python's and NumPy's global generators; their states are restored
    so loading has no effect on anything else a run draws.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # imports matplotlib: only when used

    args = get_dataset_args()
    args.num_samples = MNIST1D_SAMPLES
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        return make_dataset(args)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _tensor_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """Fresh float32 / int64 tensors (copies, so the cached arrays cannot be changed through them)."""
    return TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64))


def _cifar(name: str, root: Path, *, train: bool, download: bool) -> TensorDataset:
    """CIFAR-10/100 as in-memory tensors normalised per channel (the same numbers as ``ToTensor`` and
    ``Normalize``): 50,000 images take 600 MB and batch without loader workers. The batch files are
    read as torchvision lays them out (its file lists); their checksums are verified when
    downloaded (:func:`download`), not on every load, which also lets tests and a reader's first
    try use small files in the same format."""
    cls = _cifar_class(name)
    if download:
        cls(root, train=train, download=True)
    folder = root / cls.base_folder
    images, labels = [], []
    for file, _ in cls.train_list if train else cls.test_list:
        try:
            with open(folder / file, "rb") as handle:
                batch = pickle.load(handle, encoding="latin1")
            images.append(batch["data"])
            labels.extend(batch["labels"] if "labels" in batch else batch["fine_labels"])
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError) as error:
            raise DatasetNotFoundError(
                f"{name} not found (or damaged: {type(error).__name__}) in {folder}: run `python -m pidkd download "
                f"{name}` (or pass download=True), or put {cls.filename} there by hand and unpack it") from None
    x = torch.from_numpy(np.vstack(images).reshape(-1, 3, 32, 32)).float().div(255)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in CIFAR_STATS[name])
    return TensorDataset(x.sub(mean).div(std).contiguous(), torch.tensor(labels, dtype=torch.int64))


def _black(name: str) -> tuple[float, ...]:
    """A black pixel of CIFAR dataset ``name`` in normalised units: what crop padding adds."""
    mean, std = (torch.tensor(v) for v in CIFAR_STATS[name])
    return tuple(torch.zeros(3).sub(mean).div(std).tolist())  # float32 arithmetic, as the images


def _cub_transform(augment: bool, image_size: int) -> Callable[[Image.Image], Tensor]:
    """ImageNet-normalised crops: random resized crops and flips when augmenting, else a
    resize to 256/224 of the crop side and a centre crop (the standard evaluation transform)."""
    from torchvision import transforms as T

    if augment:
        steps = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(int(image_size * 256 / 224)), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(*IMAGENET_STATS)])
