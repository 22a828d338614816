"""Seeded batch iteration, and the batch-wise CIFAR augmentation that runs on the training device."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..errors import ConfigError


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
