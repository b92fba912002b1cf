"""Image classification in the ImageFolder layout: ``ROOT/[train|val]/<class>/*.png``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from edgenas.data.base import (
    DatasetInfo,
    check_each,
    image_size,
    list_images,
    read_rgb,
    resize_rgb,
    to_tensor_rgb,
)
from edgenas.data.splits import holdout
from edgenas.errors import UserError


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and list_images(d))


def detect_imagefolder(root: Path) -> str | None:
    """``imagefolder`` when ``root`` (or ``root/train``) has class sub-folders of images."""
    base = root / "train" if (root / "train").is_dir() else root
    return "imagefolder" if len(_class_dirs(base)) >= 2 else None


class ImageFolderDataset(Dataset):
    """``(image, class_id)`` pairs, images resized to ``size``."""

    def __init__(self, items: list[tuple[Path, int]], info: DatasetInfo, size) -> None:
        if not items:
            raise UserError(f"no images for split {info.split!r} in {info.root}")
        self.items, self.info, self.size = items, info, size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, cls = self.items[index]
        image = read_rgb(path)
        if self.size is not None:
            image = resize_rgb(image, self.size)
        return to_tensor_rgb(image), torch.tensor(cls, dtype=torch.int64)

    def check_files(self) -> None:
        """Read every image header once (PNG checksums too), before any work: a missing,
        unreadable or corrupt image is a UserError naming it."""
        check_each([path for path, _ in self.items], image_size)


def open_imagefolder(root: Path, split: str, size) -> ImageFolderDataset:
    """Open an ImageFolder tree; class ids follow the sorted class folder names."""
    split_dir = {"train": root / "train", "val": root / "val"}.get(split)
    has_split = split_dir is not None and split_dir.is_dir()
    base = split_dir if has_split else (root / "train" if (root / "train").is_dir() else root)
    classes = [d.name for d in _class_dirs(base)]
    items = [(p, i) for i, c in enumerate(classes) for p in list_images(base / c)]
    if not has_split:
        items = holdout(items, split)
    info = DatasetInfo(
        task="classification", format="imagefolder", root=str(root), split=split,
        num_classes=len(classes), class_names=tuple(classes),
    )  # fmt: skip
    return ImageFolderDataset(items, info, size)
