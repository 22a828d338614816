"""Tiny datasets written in their real on-disk formats, for tests of the real loading code."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from pidkd.distill import data


def _write_pickle(obj: dict, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def write_cifar(root: Path, name: str, per_batch: int = 4, classes: int | None = None) -> dict[str, np.ndarray]:
    """CIFAR files as torchvision reads them (five train batches for CIFAR-10, one for CIFAR-100),
    ``per_batch`` random images in each, labelled from the first ``classes`` classes (default all)."""
    rng = np.random.default_rng(0)
    num_classes = classes or data.dataset_info(name).num_classes
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    if name == "cifar100":
        names = ["train", "test"]
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    written: dict[str, list] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    for file in names:
        x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, num_classes, size=per_batch).tolist()
        split = "test" if "test" in file else "train"
        written[f"{split}_x"].append(x)
        written[f"{split}_y"].extend(y)
        if name == "cifar10":
            _write_pickle({"data": x, "labels": y}, folder / file)
        else:
            _write_pickle({"data": x, "fine_labels": y, "coarse_labels": [c // 5 for c in y]}, folder / file)
    if name == "cifar10":
        _write_pickle({"label_names": [f"c{i}" for i in range(10)]}, folder / "batches.meta")
    else:
        _write_pickle({"fine_label_names": [f"f{i}" for i in range(100)],
                       "coarse_label_names": [f"c{i}" for i in range(20)]}, folder / "meta")
    return {k: np.concatenate(v) if k.endswith("_x") else np.array(v) for k, v in written.items()}


def write_cub(root: Path, train: int = 2, test: int = 1) -> Path:
    """Three classes, ``train`` training and ``test`` test images each, the first one greyscale."""
    folder = root / "CUB_200_2011"
    images, labels, split = [], [], []
    image_id = 0
    for label in (1, 2, 3):
        class_dir = f"{label:03d}.Bird_{label}"
        (folder / "images" / class_dir).mkdir(parents=True)
        for k in range(train + test):
            image_id += 1
            file = f"{class_dir}/Bird_{label}_{k}.jpg"
            mode = "L" if image_id == 1 else "RGB"
            Image.new(mode, (40 + 7 * k, 30 + 5 * label), color=10 * image_id % 256).save(folder / "images" / file)
            images.append(f"{image_id} {file}")
            labels.append(f"{image_id} {label}")
            split.append(f"{image_id} {int(k < train)}")
    for name, lines in (("images.txt", images), ("image_class_labels.txt", labels), ("train_test_split.txt", split)):
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def write_imagenet_weights(torch_home: Path, name: str) -> Path:
    """Random weights of torchvision's ResNet ``name``, saved where torch caches its ImageNet weights."""
    import torch
    import torchvision

    from pidkd.distill.models import resnet_weights

    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(resnet_weights(name).url).name
    torch.manual_seed(0)
    torch.save(getattr(torchvision.models, name)(weights=None).state_dict(), path)  # the real format
    return path


def write_stand_ins(root: Path) -> None:
    """Every file-backed input of the paper profiles, small and in its real format, under ``root``:
    ``root/data`` (CIFAR-10 and CIFAR-100, 40 images a batch file, labels of 10 classes; CUB, three
    classes of 4 training and 6 test images) and ``root/torch`` (ResNet-18 and ResNet-34 ImageNet
    weights). Point $PIDKD_DATA and $TORCH_HOME there to run the paper profiles' notebooks on them."""
    for name in ("cifar10", "cifar100"):
        write_cifar(root / "data", name, per_batch=40, classes=10)
    write_cub(root / "data", train=4, test=6)
    for name in ("resnet18", "resnet34"):
        write_imagenet_weights(root / "torch", name)


if __name__ == "__main__":
    import sys

    write_stand_ins(Path(sys.argv[1]))
