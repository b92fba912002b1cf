"""``open_dataset``: a task, a folder (or none: built-in demo data) and a split -> Dataset.

This module imports only the standard library at import time, so the command line can
offer :data:`FORMAT_NAMES` as ``--format`` choices without loading numpy or torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgenas.errors import UserError

FORMATS = {
    "depth": ("nyu", "kitti"),
    "segmentation": ("camvid", "cityscapes"),
    "sr": ("sr-folder", "sr-paired"),
    "classification": ("imagefolder",),
}
# Every layout name, for the commands' ``--format`` choices.
FORMAT_NAMES = tuple(name for names in FORMATS.values() for name in names)


def check_format(task: str, fmt: str | None) -> None:
    """A one-line UserError when ``fmt`` is not a layout of ``task`` (None: detect)."""
    if fmt is None or fmt in FORMATS[task]:
        return
    owner = next((t for t, names in FORMATS.items() if fmt in names), None)
    what = f"--format {fmt} is a {owner} layout" if owner else f"unknown --format {fmt!r}"
    raise UserError(f"{what}; {task} data takes {' or '.join(FORMATS[task])}")


def check_folder(flag: str, folder: str | Path) -> Path:
    """``folder`` as a Path once it is a folder this process can list; otherwise a
    one-line UserError that says which of those it is not."""
    path = Path(folder)
    if not path.exists():
        raise UserError(f"{flag} folder {folder} does not exist")
    if not path.is_dir():
        raise UserError(f"{flag} {folder} is a file, not a folder; give the dataset's folder")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except PermissionError:
        raise UserError(
            f"cannot read {flag} folder {folder}: permission denied; make it readable "
            f"(chmod -R u+rX {folder}) or run as its owner"
        ) from None
    return path


def detect_format(task: str, root: Path) -> str:
    """The layout of ``root`` for ``task``; a one-line UserError if none matches."""
    from edgenas.data.classification import detect_imagefolder
    from edgenas.data.depth import detect_depth_format
    from edgenas.data.segmentation import detect_segmentation_format
    from edgenas.data.sr import detect_sr_format

    detectors = {
        "depth": detect_depth_format,
        "segmentation": detect_segmentation_format,
        "sr": detect_sr_format,
        "classification": detect_imagefolder,
    }
    fmt = detectors[task](root)
    if fmt is None:
        expected = {
            "depth": "rgb/ + depth/ (NYU), image/ + groundtruth_depth/ (KITTI) or *.h5 files",
            "segmentation": "train/ + trainannot/ (CamVid) or leftImg8bit/ + gtFine/ (Cityscapes)",
            "sr": "a folder of HR images, or *_HR/ + *_LR_bicubic/X2/ (DIV2K)",
            "classification": "one sub-folder of images per class (train/ and val/ optional)",
        }[task]
        raise UserError(f"cannot recognise the {task} layout of {root}: expected {expected}")
    return fmt


def open_dataset(
    task: str,
    root: str | Path | None = None,
    split: str = "train",
    *,
    fmt: str | None = None,
    size: tuple[int, int] | None = None,
    scale: int = 2,
    train: bool | None = None,
    patch: int = 48,
    patches_per_image: int = 8,
    seed: int = 0,
):
    """Open the dataset of ``task`` in ``root`` (``None``: the built-in demo data).

    Args:
        task: canonical task name.
        root: dataset folder in one of the standard layouts (see :data:`FORMATS`).
        split: ``train``, ``val`` or ``all``.
        fmt: layout name; detected from the folder when omitted.
        size: ``(H, W)`` images (and targets) are resized to, depth/segmentation/
            classification; ``None`` keeps the native size (evaluation at full size).
        scale: super-resolution factor.
        train: super-resolution random patches (default: ``split == "train"``).
        patch: LR patch side for super-resolution training.
        patches_per_image: super-resolution patches per image per epoch.
        seed: seed of the patch draws.

    The returned dataset has an ``info`` attribute (:class:`DatasetInfo`).
    """
    from edgenas.data.demo import open_demo

    check_format(task, fmt)
    train = (split == "train") if train is None else train
    if root is None:
        return open_demo(task, split, size=size, scale=scale, train=train, patch=patch, seed=seed)
    root = check_folder("data", root)
    if fmt is None:
        fmt = detect_format(task, root)
    if task == "sr":
        from edgenas.data.sr import open_sr

        return open_sr(
            root, split, fmt, scale=scale, train=train, patch=patch,
            patches_per_image=patches_per_image, seed=seed,
        )  # fmt: skip
    if task == "segmentation":
        from edgenas.data.segmentation import open_segmentation

        return open_segmentation(root, split, fmt, size)
    if task == "depth":
        from edgenas.data.depth import open_depth

        return open_depth(root, split, fmt, size)
    from edgenas.data.classification import open_imagefolder

    return open_imagefolder(root, split, size)


_SAME = object()


def open_train_val(
    task: str,
    data: str | Path | None,
    val_data: str | Path | None = None,
    *,
    fmt: str | None = None,
    size: tuple[int, int] | None = None,
    val_size=_SAME,
    scale: int = 2,
    patch: int = 48,
    seed: int = 0,
):
    """``(train, val)`` datasets of a run: the one way train, search and shrink open data.

    ``data`` (``None``: the built-in demo data) supplies both splits, its own val split
    or every 10th file held out; with ``val_data`` all of ``data`` trains and the
    separate folder validates, whole. ``size`` resizes dense-task training images;
    ``val_size`` the validation images (default: ``size``; ``None``: their own size,
    for scoring at full resolution). A format of another task, a missing or unreadable
    folder, an empty split or any file :func:`check_files` refuses is a one-line
    UserError naming it, before any work.
    """
    check_format(task, fmt)
    for flag, folder in (("--data", data), ("--val-data", val_data)):
        if folder is not None:
            check_folder(flag, folder)
    val_size = size if val_size is _SAME else val_size
    common = dict(fmt=fmt, scale=scale, patch=patch, seed=seed)
    dense = task != "sr"

    def opened(root, split, train, resize):
        return open_dataset(task, root, split, train=train, **common,
                            **({"size": resize} if dense else {}))  # fmt: skip

    if val_data is not None:
        train_set, val_set = (
            opened(data, "all", True, size),
            opened(val_data, "all", False, val_size),
        )
    else:
        train_set, val_set = opened(data, "train", True, size), opened(data, "val", False, val_size)
    if len(train_set) == 0:
        raise UserError(f"no training images found in {data or 'the built-in data'}")
    if len(val_set) == 0:
        raise UserError(f"no validation images found in {val_data or data or 'the built-in data'}")
    check_files(train_set)
    check_files(val_set)
    return train_set, val_set


def check_files(dataset) -> None:
    """Read every target (labels, depth maps) and every image header of ``dataset`` once
    (files already checked by this process are skipped), so that bad data is a one-line
    UserError naming the file before a run starts rather than a traceback hours into it.
    The built-in demo data have nothing to check."""
    check = getattr(dataset, "check_files", None)
    if check is not None:
        check()


def check_data(
    task: str,
    data: str | Path | None,
    val_data: str | Path | None = None,
    *,
    fmt: str | None = None,
    scale: int = 2,
    patch: int = 48,
) -> None:
    """Check a search's data as :func:`open_train_val` opens it (``patch``: the SR LR
    patch side) before the run creates anything: the format, the folders, every file,
    and at least 2 training images (NASWOT compares images with each other)."""
    check_format(task, fmt)
    if data is None and val_data is None:
        return  # the built-in demo data
    train, _ = open_train_val(task, data, val_data, fmt=fmt, size=None, val_size=None,
                              scale=scale, patch=patch)  # fmt: skip
    if len(train) < 2:
        raise UserError(
            f"{data} gives {len(train)} training image(s); a search needs at least 2 "
            "(NASWOT scores a network by how it tells images apart): add images"
        )
