"""Super-resolution datasets: HR folders (LR made on the fly) and paired LR/HR folders.

LR images are made with PIL's bicubic ``Image.resize`` after cropping HR to a multiple
of the scale; on Set5 this reproduces the published bicubic baselines (MATLAB
``imresize``) within 0.02 dB. Training draws random HR patches of ``patch * scale``
pixels and makes the LR patch from each; evaluation uses whole images.

Layouts:

* ``sr-folder``: a folder of HR images (T91, Set5, Set14, B100, Urban100, DIV2K ``*_HR``),
  optionally with ``train/`` and ``val/`` sub-folders;
* ``sr-paired``: DIV2K style ``*_HR/0001.png`` + ``*_LR_bicubic/X2/0001x2.png``, or
  ``HR/`` + ``LR/`` (optionally ``LR/X2``) with the same stems (an ``x2`` suffix is allowed).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edgenas.data.base import (
    DatasetInfo,
    check_each,
    image_size,
    list_images,
    read_rgb,
    to_tensor_rgb,
)
from edgenas.data.splits import holdout
from edgenas.errors import UserError

# Side of the Gaussian window of the SSIM the SR metrics compute (sigma 1.5, truncated
# at 3.5 sigma: scikit-image's default), the smallest image it can score.
SSIM_WINDOW = 11


def bicubic_resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL bicubic resize of ``uint8 H x W x 3`` to ``size = (H, W)``."""
    from PIL import Image

    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), Image.BICUBIC))


def crop_to_scale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of ``scale`` (top-left anchored, as in the literature)."""
    h, w = hr.shape[:2]
    return hr[: h - h % scale, : w - w % scale]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic LR image of an HR image whose sides are multiples of ``scale``."""
    h, w = hr.shape[:2]
    return bicubic_resize(hr, (h // scale, w // scale))


class SRDataset(Dataset):
    """HR/LR pairs. ``train=True``: random patches; otherwise whole images.

    ``items`` holds ``(hr_path, lr_path_or_None)``; without an LR path the LR image is
    made by bicubic downscaling. ``patches_per_image`` sets the epoch length in training.
    """

    def __init__(
        self,
        items: list[tuple[Path, Path | None]],
        info: DatasetInfo,
        *,
        train: bool,
        patch: int = 48,
        patches_per_image: int = 8,
        seed: int = 0,
        images: list[np.ndarray] | None = None,
    ) -> None:
        if not items and not images:
            raise UserError(f"no images for split {info.split!r} in {info.root}")
        self.items = items
        self.images = images  # in-memory HR images (built-in demo data)
        self.info = info
        self.scale = info.scale
        self.train = train
        self.patch = patch
        self.patches_per_image = patches_per_image
        self.seed = seed
        self.epoch = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        # Training skips images smaller than the HR patch (T91 has one 78x78 image).
        self.usable = list(range(self._count()))
        if train:
            hp = patch * self.scale
            self.usable = [i for i in self.usable if min(self._size(i)) >= hp]
            if not self.usable:
                raise UserError(
                    f"every image in {info.root} is smaller than the HR patch {hp}x{hp}; "
                    "use a smaller --input patch"
                )
        self.skipped = self._count() - len(self.usable)

    def _size(self, i: int) -> tuple[int, int]:
        """(H, W) of image ``i`` (header only for files)."""
        if self.images is not None:
            return self.images[i].shape[:2]
        return image_size(self.items[i][0], verify=False)

    def check_files(self) -> None:
        """Read every image header once (PNG checksums too), before any work: a missing,
        unreadable or corrupt file, an LR image that is not 1/scale of its HR image, or
        (for scoring) an image too small for PSNR/SSIM after shaving ``scale`` pixels
        is a UserError naming the file."""
        if self.images is not None:
            return
        s = self.scale
        smallest = 2 * s + SSIM_WINDOW

        def check(item: tuple[Path, Path | None]) -> None:
            hr_path, lr_path = item
            height, width = image_size(hr_path)
            if lr_path is not None:
                lr_h, lr_w = image_size(lr_path)
                if lr_h * s > height or lr_w * s > width:
                    raise UserError(
                        f"size mismatch: LR {lr_path} ({lr_w}x{lr_h}) x{s} is larger than HR "
                        f"{hr_path} ({width}x{height})"
                    )
                height, width = lr_h * s, lr_w * s
            if not self.train and min(height - height % s, width - width % s) < smallest:
                raise UserError(
                    f"image {hr_path} ({width}x{height}) is too small to score at x{s}: "
                    f"PSNR/SSIM need at least {smallest}x{smallest} pixels (SSIM's "
                    f"{SSIM_WINDOW}-pixel window after shaving {s} at each border)"
                )

        check_each(self.items, check, (s, self.train))

    def whole_pairs(self, limit_bytes: int | None = None):
        """``(hr, lr)`` uint8 arrays of every usable image, HR cropped to a multiple of the
        scale and LR from the paired file or by bicubic downscaling of the whole image
        (as at evaluation). None when they would take more than ``limit_bytes``."""
        pairs = []
        total = 0
        for i in self.usable:
            hr, lr = self._load(i)
            hr = crop_to_scale(hr, self.scale)
            if lr is None:
                lr = make_lr(hr, self.scale)
            total += hr.nbytes + lr.nbytes
            if limit_bytes is not None and total > limit_bytes:
                return None
            pairs.append((np.ascontiguousarray(hr), np.ascontiguousarray(lr)))
        return pairs

    def set_epoch(self, epoch: int) -> None:
        """Draw a new set of patches (call before each training epoch)."""
        self.epoch = epoch

    def _count(self) -> int:
        return len(self.images) if self.images is not None else len(self.items)

    def __len__(self) -> int:
        return len(self.usable) * self.patches_per_image if self.train else self._count()

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if i in self._cache:
            return self._cache[i]
        if self.images is not None:
            pair = (self.images[i], None)
        else:
            hr_path, lr_path = self.items[i]
            hr = read_rgb(hr_path)
            lr = read_rgb(lr_path) if lr_path is not None else None
            if lr is not None:
                want = (lr.shape[0] * self.scale, lr.shape[1] * self.scale)
                if hr.shape[0] < want[0] or hr.shape[1] < want[1]:
                    raise UserError(
                        f"size mismatch: LR {lr_path} x{self.scale} is larger than HR {hr_path}"
                    )
                hr = hr[: want[0], : want[1]]
            pair = (hr, lr)
        if self._count() <= 256:  # small sets (T91, Set5, demo) stay in memory
            self._cache[i] = pair
        return pair

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.scale
        if not self.train:
            hr, lr = self._load(index)
            hr = crop_to_scale(hr, s)
            if lr is None:
                lr = make_lr(hr, s)
            return to_tensor_rgb(lr), to_tensor_rgb(hr)
        image_index = self.usable[index // self.patches_per_image]
        hr, lr = self._load(image_index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        hp = self.patch * s
        h, w = hr.shape[:2]
        if h < hp or w < hp:
            name = self.items[image_index][0] if self.items else "image"
            raise UserError(
                f"image {name} ({w}x{h}) is smaller than the HR patch {hp}x{hp}; use a smaller --patch"
            )
        # Draw the patch on the LR grid so that paired LR files stay aligned.
        y = int(rng.integers(0, h // s - self.patch + 1))
        x = int(rng.integers(0, w // s - self.patch + 1))
        hr_patch = hr[y * s : y * s + hp, x * s : x * s + hp]
        lr_patch = (
            make_lr(hr_patch, s) if lr is None else lr[y : y + self.patch, x : x + self.patch]
        )
        return to_tensor_rgb(lr_patch), to_tensor_rgb(hr_patch)


_SPLIT_WORDS = {"train": ("train",), "val": ("val", "valid", "test")}


def _split_dir(root: Path, split: str) -> Path | None:
    """``root/train`` or ``root/val`` (``valid``/``test``) when the layout has split folders."""
    if split == "all":
        return None
    for word in _SPLIT_WORDS[split]:
        if (root / word).is_dir():
            return root / word
    return None


def _find_paired(root: Path, scale: int, split: str) -> list[tuple[Path, Path]] | None:
    """Paired LR/HR items of a DIV2K-style or HR/LR layout, or None if not paired."""
    hr_dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and re.search(r"(^|_)HR$", d.name)]
    if not hr_dirs:
        return None
    if split in _SPLIT_WORDS and len(hr_dirs) > 1:
        chosen = [d for d in hr_dirs if any(w in d.name.lower() for w in _SPLIT_WORDS[split])]
        hr_dirs = chosen or hr_dirs
    pairs: list[tuple[Path, Path]] = []
    for hr_dir in hr_dirs:
        prefix = hr_dir.name[: -len("HR")]
        candidates = [
            root / f"{prefix}LR_bicubic" / f"X{scale}",
            root / f"{prefix}LR" / f"X{scale}",
            root / f"{prefix}LR_bicubic",
            root / f"{prefix}LR",
        ]
        lr_dir = next((c for c in candidates if c.is_dir() and list_images(c)), None)
        if lr_dir is None:
            raise UserError(
                f"found HR folder {hr_dir} but no LR folder for x{scale} "
                f"(looked for {candidates[0].name}/X{scale} and {prefix}LR)"
            )
        lr_by_stem = {re.sub(rf"x{scale}$", "", p.stem, flags=re.I): p for p in list_images(lr_dir)}
        for hr in list_images(hr_dir):
            lr = lr_by_stem.get(hr.stem)
            if lr is None:
                raise UserError(f"no LR image for {hr} in {lr_dir} (expected {hr.stem}x{scale}.*)")
            pairs.append((hr, lr))
    return pairs


def detect_sr_format(root: Path) -> str | None:
    """``sr-paired``, ``sr-folder`` or None when ``root`` looks like neither."""
    if any(d.is_dir() and re.search(r"(^|_)HR$", d.name) for d in root.iterdir()):
        return "sr-paired"
    if list_images(root) or any(
        (root / w).is_dir() and list_images(root / w) for w in ("train", "val", "valid", "test")
    ):
        return "sr-folder"
    return None


def open_sr(
    root: Path,
    split: str,
    fmt: str,
    *,
    scale: int,
    train: bool,
    patch: int = 48,
    patches_per_image: int = 8,
    seed: int = 0,
) -> SRDataset:
    """Open an SR dataset of layout ``fmt`` (``sr-folder`` or ``sr-paired``)."""
    info_split = split
    if fmt == "sr-paired":
        pairs = _find_paired(root, scale, split) or []
        has_split = len({p[0].parent for p in pairs}) > 1 or any(
            w in (pairs[0][0].parent.name.lower() if pairs else "")
            for w in ("train", "valid", "val")
        )
        items: list[tuple[Path, Path | None]] = list(pairs if has_split else holdout(pairs, split))
    elif fmt == "sr-folder":
        folder = _split_dir(root, split)
        if folder is not None:
            items = [(p, None) for p in list_images(folder)]
        else:
            flat = list_images(root)
            if not flat:
                raise UserError(f"no images in {root} (nor in train/ and val/ sub-folders)")
            items = [(p, None) for p in holdout(flat, split)]
    else:
        raise UserError(f"unknown super-resolution format {fmt!r} (sr-folder or sr-paired)")
    info = DatasetInfo(task="sr", format=fmt, root=str(root), split=info_split, scale=scale)
    return SRDataset(
        items, info, train=train, patch=patch, patches_per_image=patches_per_image, seed=seed
    )
