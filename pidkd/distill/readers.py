"""Each dataset read or generated as its source lays it out: scikit-learn's digits, MNIST-1D
generated offline (and cached), CIFAR-10/100 from torchvision's batch files into memory, CUB-200-2011
from its official folder, image by image."""
from __future__ import annotations

import functools
import os
import pickle
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from ..errors import DatasetNotFoundError

CIFAR_STATS: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = MappingProxyType({
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
})
"""Per-channel mean and standard deviation of each CIFAR training set (pixels in [0, 1])."""

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""The ImageNet mean and standard deviation that pretrained torchvision models expect."""

CUB_URL = "https://data.caltech.edu/records/65de6-vh018"
"""Where CUB_200_2011.tgz is published (Caltech data repository)."""

MNIST1D_SAMPLES = 10_000
"""MNIST-1D examples generated; its default 80/20 split makes 8,000 training and 2,000 test ones."""

CIFAR_CLASSES = {"cifar10": "CIFAR10", "cifar100": "CIFAR100"}
"""torchvision's class for each CIFAR, by name: torchvision is imported only when CIFAR is read."""


def cifar_class(name: str) -> type:
    """torchvision's dataset class of CIFAR ``name`` (its file lists, folder and download)."""
    from torchvision import datasets

    return getattr(datasets, CIFAR_CLASSES[name])


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


def digits_arrays(train: bool) -> tuple[np.ndarray, np.ndarray]:
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


def mnist1d_arrays(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST-1D signals and labels of one split."""
    data = _mnist1d_cached(root)
    x, y = (data["x"], data["y"]) if train else (data["x_test"], data["y_test"])
    return x.astype(np.float32)[:, None], y


@functools.lru_cache(maxsize=None)
def _mnist1d_cached(root: Path) -> dict[str, np.ndarray]:
    """MNIST-1D's splits, generated once and kept in ``root/mnist1d/`` (the same arrays: generating
    them is a cost every training process paid); a folder that cannot be written is no
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


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """Fresh float32 / int64 tensors (copies, so the cached arrays cannot be changed through them)."""
    return TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64))


def cifar(name: str, root: Path, *, train: bool, download: bool) -> TensorDataset:
    """CIFAR-10/100 as in-memory tensors normalised per channel (the same numbers as ``ToTensor`` and
    ``Normalize``): 50,000 images take 600 MB and batch without loader workers. The batch files are
    read as torchvision lays them out (its file lists); their checksums are verified when
    downloaded (:func:`download`), not on every load, which also lets tests and a reader's first
    try use small files in the same format."""
    cls = cifar_class(name)
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


def black(name: str) -> tuple[float, ...]:
    """A black pixel of CIFAR dataset ``name`` in normalised units: what crop padding adds."""
    mean, std = (torch.tensor(v) for v in CIFAR_STATS[name])
    return tuple(torch.zeros(3).sub(mean).div(std).tolist())  # float32 arithmetic, as the images


def cub_transform(augment: bool, image_size: int) -> Callable[[Image.Image], Tensor]:
    """ImageNet-normalised crops: random resized crops and flips when augmenting, else a
    resize to 256/224 of the crop side and a centre crop (the standard evaluation transform)."""
    from torchvision import transforms as T

    if augment:
        steps = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(int(image_size * 256 / 224)), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(*IMAGENET_STATS)])
