"""Monocular depth datasets: NYU-Depth-v2 style pairs and KITTI.

* ``nyu``: ``rgb/NAME.*`` (or ``image/``, ``images/``, ``color/``) with ``depth/NAME.png``
  (uint16 millimetres), ``depth/NAME.npy`` (float metres) or ``depth/NAME.h5`` (dataset
  ``depth``, metres); or a tree of ``*.h5`` files holding both ``rgb`` (3xHxW) and
  ``depth`` (HxW metres) as in the FastDepth NYU release. Optional ``train/`` and
  ``val/`` (or ``test/``) sub-folders; otherwise every 10th pair is held out for val.
  Depth capped to [1e-3, 10] m.
* ``kitti``: KITTI's ``image/`` + ``groundtruth_depth/`` folders
  (``*_image_*.png`` <-> ``*_groundtruth_depth_*.png``, the ``depth_selection`` layout)
  or ``rgb/`` + ``depth/`` pairs; uint16 PNG / 256 = metres, 0 = invalid. Depth capped
  to [1e-3, 80] m, evaluated inside the Garg/Eigen crop.

Depth 0 (or non-finite) is invalid everywhere and stays invalid through resizing
(nearest neighbour) and augmentation. Depth PNGs must be 16-bit: an 8-bit PNG cannot
hold millimetres (or metres x 256) and is refused, as is a depth map without a single
valid pixel (:meth:`DepthDataset.check_files` reads every depth map before a run).
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
    read_errors,
    read_raw,
    read_rgb,
    resize_nearest,
    resize_rgb,
    to_tensor_rgb,
)
from edgenas.data.splits import holdout
from edgenas.errors import UserError, first_line

RGB_DIRS = ("rgb", "image", "images", "color")
DEPTH_SUFFIXES = (".png", ".npy", ".h5")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise UserError(
            "reading .h5 depth needs h5py: run `pip install h5py` (or convert to .npy/.png)"
        ) from None
    return h5py


def png_units(png_divisor: float) -> str:
    """What a depth PNG's values mean, in words (for error messages)."""
    return "millimetres" if png_divisor == 1000.0 else f"metres x {png_divisor:g}"


def read_depth(path: Path, png_divisor: float) -> np.ndarray:
    """Depth in metres as float32 ``H x W``; 0 marks invalid pixels.

    PNGs hold ``metres * png_divisor`` as 16-bit integers (NYU millimetres: 1000,
    KITTI: 256); an 8-bit PNG (at most 255 mm) is a UserError naming the file.
    """
    suffix = path.suffix.lower()
    if suffix == ".png":
        raw = read_raw(path)
        # Pillow gives uint16 for 16-bit grey PNGs (int32 in older versions).
        if raw.ndim != 2 or raw.dtype not in (np.uint16, np.int32):
            bits = "8-bit" if raw.dtype == np.uint8 else str(raw.dtype)
            channels = f"{raw.shape[2]}-channel " if raw.ndim == 3 else ""
            raise UserError(
                f"depth PNG {path} is {channels}{bits}; depth PNGs must be single-channel "
                f"16-bit in {png_units(png_divisor)} (0 = invalid), or .npy/.h5 in metres"
            )
        return raw.astype(np.float32) / png_divisor
    with read_errors(path, "depth"):
        if suffix == ".npy":
            depth = np.load(path)
        elif suffix == ".h5":
            with _h5py().File(path, "r") as f:
                depth = np.asarray(f["depth"])
        else:
            raise UserError(f"unsupported depth file {path} (use .png, .npy or .h5)")
    depth = np.squeeze(np.asarray(depth, dtype=np.float32))
    if depth.ndim != 2:
        raise UserError(f"depth {path} must be H x W, got shape {depth.shape}")
    depth[~np.isfinite(depth)] = 0.0
    return depth


def read_h5_pair(path: Path, rgb: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """RGB (uint8 HxWx3) and depth (metres) from one FastDepth-style NYU .h5 file.

    ``rgb=False`` reads the depth only and gives an empty ``H x W x 0`` array of the
    RGB image's size (for checking a whole set without decoding its images).
    """
    try:
        with _h5py().File(path, "r") as f:
            image = np.asarray(f["rgb"]) if rgb else np.empty((*f["rgb"].shape, 0))
            depth = np.asarray(f["depth"], dtype=np.float32)
    except UserError:
        raise
    except Exception as err:
        raise UserError(
            f"cannot read {path}: {first_line(err)} (expected datasets 'rgb' and 'depth')"
        ) from None
    if image.ndim >= 3 and image.shape[0] == 3:
        image = np.moveaxis(image, 0, 2)
    if image.ndim < 3 or image.shape[2] != 3:
        raise UserError(
            f"'rgb' in {path} must be 3 x H x W or H x W x 3, got shape {image.shape[:3]}"
        )
    if not rgb:
        image = image[:, :, :0]
    elif image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
    elif image.dtype != np.uint8:
        raise UserError(f"'rgb' in {path} holds {image.dtype}; expected 8- or 16-bit integers")
    depth = np.squeeze(depth)
    if depth.ndim != 2:
        raise UserError(f"'depth' in {path} must be H x W, got shape {depth.shape}")
    depth[~np.isfinite(depth)] = 0.0
    return np.ascontiguousarray(image.astype(np.uint8)), depth


class DepthDataset(Dataset):
    """``(image, depth)`` pairs; ``depth`` is ``1 x H x W`` metres, 0 = invalid."""

    def __init__(
        self,
        pairs: list[tuple[Path, Path | None]],
        info: DatasetInfo,
        size: tuple[int, int] | None,
        png_divisor: float,
    ) -> None:
        if not pairs:
            raise UserError(f"no depth pairs for split {info.split!r} in {info.root}")
        self.pairs = pairs
        self.info = info
        self.size = size
        self.png_divisor = png_divisor

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, depth_path = self.pairs[index]
        if depth_path is None:
            image, depth = read_h5_pair(image_path)
            depth_path = image_path
        else:
            image = read_rgb(image_path)
            depth = read_depth(depth_path, self.png_divisor)
        check_same_size(image, depth, image_path, depth_path)
        depth = np.where(depth > 0, np.minimum(depth, self.info.max_depth), 0.0)
        if self.size is not None:
            image = resize_rgb(image, self.size)
            depth = resize_nearest(depth, self.size)
        target = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
        return to_tensor_rgb(image), target

    def check_files(self) -> None:
        """Read every depth map and image header once, before any work: an 8-bit depth
        PNG, a missing, unreadable or corrupt file, an image and depth map of different
        sizes, or depth maps without one valid pixel (inside the layout's depth range)
        are a UserError naming the file."""
        low, high = self.info.min_depth, self.info.max_depth

        def check(pair: tuple[Path, Path | None]) -> bool:
            image_path, depth_path = pair
            if depth_path is None:
                image, depth = read_h5_pair(image_path, rgb=False)
                size, depth_path = image.shape[:2], image_path
            else:
                size, depth = image_size(image_path), read_depth(depth_path, self.png_divisor)
            if depth.shape != tuple(size):
                raise UserError(
                    f"size mismatch: {image_path} is {size[1]}x{size[0]} but {depth_path} is "
                    f"{depth.shape[1]}x{depth.shape[0]} (WxH)"
                )
            return bool(((depth > low) & (depth < high)).any())

        has_valid = check_each(self.pairs, check, (self.png_divisor, low, high))
        empty = [
            pair[1] or pair[0] for pair, ok in zip(self.pairs, has_valid, strict=True) if not ok
        ]
        if empty:
            units = png_units(self.png_divisor)
            raise UserError(
                f"{len(empty)} of the {len(self.pairs)} depth maps of the {self.info.split} "
                f"split {'has' if len(empty) == 1 else 'have'} no valid pixel (all 0 or "
                f"outside {low:g}-{high:g} m), first "
                f"{empty[0]}; {self.info.format} depth is 16-bit PNG in {units} or .npy/.h5 "
                "in metres: fix or remove them"
            )


def _rgb_dir(folder: Path) -> Path | None:
    return next((folder / n for n in RGB_DIRS if (folder / n).is_dir()), None)


def detect_depth_format(root: Path) -> str | None:
    """``kitti``, ``nyu`` or None."""
    for folder in (root, root / "train", root / "val"):
        if (folder / "groundtruth_depth").is_dir():
            return "kitti"
        if _rgb_dir(folder) is not None and (folder / "depth").is_dir():
            return "nyu"
    if next(root.rglob("*.h5"), None) is not None:
        return "nyu"
    return None


def _pairs_in(folder: Path) -> list[tuple[Path, Path | None]]:
    """Pairs of one folder holding an RGB folder and a depth folder (or .h5 files)."""
    if (folder / "groundtruth_depth").is_dir():
        image_dir, depth_dir = folder / "image", folder / "groundtruth_depth"
        pairs: list[tuple[Path, Path | None]] = []
        for image in list_images(image_dir):
            depth = depth_dir / image.name.replace("_image_", "_groundtruth_depth_", 1)
            if not depth.is_file():
                raise UserError(f"no depth for {image}: missing {depth}")
            pairs.append((image, depth))
        return pairs
    rgb_dir = _rgb_dir(folder)
    if rgb_dir is not None and (folder / "depth").is_dir():
        depth_dir = folder / "depth"
        by_stem: dict[str, Path] = {}
        for p in sorted(depth_dir.iterdir()):
            if p.suffix.lower() in DEPTH_SUFFIXES:
                by_stem.setdefault(p.stem, p)
        pairs = []
        for image in list_images(rgb_dir):
            depth = by_stem.get(image.stem)
            if depth is None:
                raise UserError(
                    f"no depth for {image} in {depth_dir} (expected {image.stem}.png/.npy/.h5)"
                )
            pairs.append((image, depth))
        return pairs
    h5 = sorted(folder.rglob("*.h5"))
    return [(p, None) for p in h5]


def open_depth(root: Path, split: str, fmt: str, size: tuple[int, int] | None) -> DepthDataset:
    """Open a depth dataset of layout ``fmt`` (``nyu`` or ``kitti``)."""
    if fmt not in ("nyu", "kitti"):
        raise UserError(f"unknown depth format {fmt!r} (nyu or kitti)")
    split_names = {"train": ("train",), "val": ("val", "test"), "all": ()}[split]
    split_dir = next((root / n for n in split_names if (root / n).is_dir()), None)
    if split_dir is not None:
        pairs = _pairs_in(split_dir)
    elif split == "all" and (root / "train").is_dir():
        pairs = [
            p for n in ("train", "val", "test") if (root / n).is_dir() for p in _pairs_in(root / n)
        ]
    else:
        pairs = holdout(_pairs_in(root), split)
    kitti = fmt == "kitti"
    info = DatasetInfo(
        task="depth",
        format=fmt,
        root=str(root),
        split=split,
        min_depth=1e-3,
        max_depth=80.0 if kitti else 10.0,
        eval_crop="garg" if kitti else None,
    )
    return DepthDataset(pairs, info, size, png_divisor=256.0 if kitti else 1000.0)
