"""Semantic segmentation datasets: CamVid (SegNet layout) and Cityscapes.

* ``camvid``: ``train/``, ``trainannot/``, ``val/``, ``valannot/`` (and ``test/``,
  ``testannot/``); label PNG pixel = class id 0..10, 11 = unlabelled (ignored; 255,
  the usual "void" of other copies, is read as 11).
* ``cityscapes``: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
  ``gtFine/<split>/<city>/*_gtFine_labelIds.png``; label ids are mapped to the 19
  train ids, everything else to 255 (ignored).

Images are resized to the requested input size (bilinear), labels with nearest
neighbour so ids stay ids. Label PNGs may be 8- or 16-bit (or palette) single-channel
images; a value that is no class id of the layout is a one-line error naming the file
and the value (:meth:`SegmentationDataset.check_files` checks every label before a run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edgenas.data.base import (
    DatasetInfo,
    check_each,
    check_same_size,
    image_size,
    list_images,
    pair_by_stem,
    read_raw,
    read_rgb,
    resize_nearest,
    resize_rgb,
    to_tensor_rgb,
)
from edgenas.errors import UserError

CAMVID_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)  # fmt: skip
CAMVID_PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip
# SegNet's median-frequency balancing weights for the 11 CamVid classes.
CAMVID_WEIGHTS = (
    0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614,
)  # fmt: skip

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
    "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
CITYSCAPES_PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip
# Cityscapes label id -> train id (cityscapesScripts labels.py); others are ignored.
CITYSCAPES_ID_TO_TRAIN = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
    24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip


# Label value -> class id tables cover 16-bit labels; -1 marks values that are no label.
LABEL_VALUES = 65536


def cityscapes_lookup() -> np.ndarray:
    """Cityscapes label ids (0-255; 8-bit PNGs) -> train ids, 255 = ignore, -1 above."""
    table = np.full(LABEL_VALUES, -1, dtype=np.int16)
    table[:256] = 255
    for label_id, train_id in CITYSCAPES_ID_TO_TRAIN.items():
        table[label_id] = train_id
    return table


def camvid_lookup() -> np.ndarray:
    """CamVid label values -> class ids: 0-10 classes, 11 and 255 unlabelled (-> 11)."""
    table = np.full(LABEL_VALUES, -1, dtype=np.int16)
    table[:12] = np.arange(12)
    table[255] = 11
    return table


class SegmentationDataset(Dataset):
    """``(image, label)`` pairs from files, resized to ``size = (H, W)`` when given."""

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        info: DatasetInfo,
        size: tuple[int, int] | None,
        lookup: np.ndarray,
        valid: str,
    ) -> None:
        if not pairs:
            raise UserError(f"no images for split {info.split!r} in {info.root}")
        self.pairs = pairs
        self.info = info
        self.size = size
        self.lookup = lookup  # label value -> class id, -1: not a label
        self.valid = valid  # the valid label values, in words, for error messages

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, label_path = self.pairs[index]
        image = read_rgb(image_path)
        label = self.read_label(label_path)
        check_same_size(image, label, image_path, label_path)
        if self.size is not None:
            image = resize_rgb(image, self.size)
            label = resize_nearest(label, self.size)
        return to_tensor_rgb(image), torch.from_numpy(label.astype(np.int64))

    def read_label(self, path: Path) -> np.ndarray:
        """The class ids (``int16 H x W``, ignore = ``info.ignore_index``) of a label file;
        a value that is no label of the layout is a UserError naming it and the file."""
        label = read_raw(path)
        if label.ndim == 3:
            raise UserError(
                f"label {path} has {label.shape[2]} channels; expected a single-channel "
                "PNG whose pixel value is the class id"
            )
        if label.dtype.kind not in "uib":
            raise UserError(f"label {path} holds {label.dtype} values; class ids are integers")
        values = label.astype(np.int64)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= len(self.lookup):
            bad = low if low < 0 else high
        else:
            ids = self.lookup[values]
            if int(ids.min()) >= 0:
                return ids
            bad = int(values[ids < 0][0])
        raise UserError(
            f"label {bad} in {path} is outside {self.valid}; fix the label files "
            "(pixel value = class id)"
        )

    def check_files(self) -> None:
        """Read every label and every image header once, before any work: a label value
        outside the classes, a missing, unreadable or corrupt file, an image and label
        of different sizes, or a split without one labelled pixel is a UserError."""

        def check(pair: tuple[Path, Path]) -> int:
            image_path, label_path = pair
            height, width = image_size(image_path)
            label = self.read_label(label_path)
            if label.shape != (height, width):
                raise UserError(
                    f"size mismatch: {image_path} is {width}x{height} but {label_path} is "
                    f"{label.shape[1]}x{label.shape[0]} (WxH)"
                )
            return int((label != self.info.ignore_index).sum())

        labelled = check_each(self.pairs, check, (self.valid,))
        if sum(labelled) == 0:
            raise UserError(
                f"every label pixel of the {self.info.split} split in {self.info.root} is "
                f"{self.info.ignore_index} (unlabelled): nothing to train or score on"
            )


def detect_segmentation_format(root: Path) -> str | None:
    """``camvid``, ``cityscapes`` or None."""
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        return "cityscapes"
    if (root / "train").is_dir() and (root / "trainannot").is_dir():
        return "camvid"
    return None


def _camvid_split(root: Path, split: str) -> list[tuple[Path, Path]]:
    names = {"train": ["train"], "val": ["val"], "all": ["train", "val"]}[split]
    if split == "val" and not (root / "val").is_dir() and (root / "test").is_dir():
        names = ["test"]
    pairs: list[tuple[Path, Path]] = []
    for name in names:
        image_dir, label_dir = root / name, root / f"{name}annot"
        if not image_dir.is_dir():
            raise UserError(f"CamVid layout: missing folder {image_dir}")
        if not label_dir.is_dir():
            raise UserError(f"CamVid layout: missing label folder {label_dir}")
        pairs += pair_by_stem(list_images(image_dir), list_images(label_dir), label_dir, "label")
    return pairs


def _cityscapes_split(root: Path, split: str) -> list[tuple[Path, Path]]:
    names = {"train": ["train"], "val": ["val"], "all": ["train", "val"]}[split]
    pairs: list[tuple[Path, Path]] = []
    for name in names:
        image_dir = root / "leftImg8bit" / name
        if not image_dir.is_dir():
            raise UserError(f"Cityscapes layout: missing folder {image_dir}")
        for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
            stem = image.name[: -len("_leftImg8bit.png")]
            label = root / "gtFine" / name / image.parent.name / f"{stem}_gtFine_labelIds.png"
            if not label.is_file():
                raise UserError(f"no label for {image}: missing {label}")
            pairs.append((image, label))
    return pairs


def open_segmentation(
    root: Path, split: str, fmt: str, size: tuple[int, int] | None
) -> SegmentationDataset:
    """Open a segmentation dataset of layout ``fmt`` (``camvid`` or ``cityscapes``)."""
    if fmt == "camvid":
        info = DatasetInfo(
            task="segmentation",
            format=fmt,
            root=str(root),
            split=split,
            num_classes=11,
            class_names=CAMVID_CLASSES,
            palette=CAMVID_PALETTE,
            ignore_index=11,
            class_weights=CAMVID_WEIGHTS,
        )
        return SegmentationDataset(
            _camvid_split(root, split), info, size, camvid_lookup(),
            "CamVid's class ids 0-10 (11 or 255: unlabelled)",
        )  # fmt: skip
    if fmt == "cityscapes":
        info = DatasetInfo(
            task="segmentation",
            format=fmt,
            root=str(root),
            split=split,
            num_classes=19,
            class_names=CITYSCAPES_CLASSES,
            palette=CITYSCAPES_PALETTE,
            ignore_index=255,
        )
        return SegmentationDataset(
            _cityscapes_split(root, split), info, size, cityscapes_lookup(),
            "the Cityscapes label ids 0-255 (ids without a train id are ignored)",
        )  # fmt: skip
    raise UserError(f"unknown segmentation format {fmt!r} (camvid or cityscapes)")
