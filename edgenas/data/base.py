"""Shared pieces of the dataset adapters: dataset metadata, file listing, image reading.

Every dataset yields ``(image, target)`` pairs of tensors:

* ``image``: float32 ``3 x H x W`` RGB in ``[0, 1]`` (for super-resolution: the LR image);
* ``target``: segmentation ``int64 H x W`` class ids, depth ``float32 1 x H x W`` metres
  with ``0`` meaning invalid, super-resolution ``float32 3 x sH x sW`` HR RGB in ``[0, 1]``,
  classification an ``int64`` scalar.

Reading problems (missing, unreadable, mismatched files) raise :class:`UserError` naming
the file, so the CLI reports them in one line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgenas.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".webp")


@dataclass(frozen=True)
class DatasetInfo:
    """What the task needs to know about a dataset besides its samples.

    ``format`` names the layout (``camvid``, ``cityscapes``, ``nyu``, ``kitti``,
    ``sr-folder``, ``sr-paired``, ``demo``, ...). Segmentation fills ``class_names``,
    ``palette`` and ``ignore_index``; depth fills ``min_depth``, ``max_depth`` and
    ``eval_crop``; super-resolution fills ``scale``.
    """

    task: str
    format: str
    root: str
    split: str
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    ignore_index: int = 255
    class_weights: tuple[float, ...] | None = None
    min_depth: float = 1e-3
    max_depth: float = 10.0
    eval_crop: str | None = None
    scale: int = 1
    extra: dict = field(default_factory=dict)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as ``uint8 H x W x 3`` RGB; grey and RGBA are converted."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise UserError(f"missing image file {path}") from None
    except Exception as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def read_raw(path: Path) -> np.ndarray:
    """Read an image without colour conversion (label maps, uint16 depth PNGs)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode == "P":
                # Palette PNG labels: the palette index is the class id.
                return np.asarray(img).copy()
            return np.asarray(img).copy()
    except FileNotFoundError:
        raise UserError(f"missing file {path}") from None
    except Exception as err:
        raise UserError(f"cannot read {path}: {err}") from None


def to_tensor_rgb(array: np.ndarray):
    """``uint8 H x W x 3`` -> float32 ``3 x H x W`` tensor in ``[0, 1]``."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(255.0)


def check_same_size(image: np.ndarray, target: np.ndarray, image_path: Path, target_path: Path):
    """Raise a one-line UserError when an image and its target differ in size."""
    if image.shape[:2] != target.shape[:2]:
        raise UserError(
            f"size mismatch: {image_path} is {image.shape[1]}x{image.shape[0]} but "
            f"{target_path} is {target.shape[1]}x{target.shape[0]} (WxH)"
        )


def pair_by_stem(
    images: list[Path], targets: list[Path], target_folder: Path, what: str
) -> list[tuple[Path, Path]]:
    """Pair files by name stem; an image without a target is an error naming it."""
    by_stem = {p.stem: p for p in targets}
    pairs = []
    for image in images:
        target = by_stem.get(image.stem)
        if target is None:
            raise UserError(f"no {what} for {image} in {target_folder} (expected {image.stem}.*)")
        pairs.append((image, target))
    return pairs


def resize_rgb(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``uint8 H x W x 3`` to ``size = (H, W)`` with bilinear filtering."""
    from PIL import Image

    if array.shape[:2] == tuple(size):
        return array
    img = Image.fromarray(array)
    return np.asarray(img.resize((size[1], size[0]), Image.BILINEAR))


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize for label maps and depth (keeps ids and invalid zeros)."""
    if array.shape[:2] == tuple(size):
        return array
    h, w = array.shape[:2]
    rows = np.minimum((np.arange(size[0]) + 0.5) * h / size[0], h - 1).astype(np.int64)
    cols = np.minimum((np.arange(size[1]) + 0.5) * w / size[1], w - 1).astype(np.int64)
    return array[rows][:, cols]
