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

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgenas.errors import UserError, first_line

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
    """Read an image as ``uint8 H x W x 3`` RGB; grey and RGBA are converted.

    16-bit images are scaled to 8 bits (``round(v / 257)``, so ``v / 65535`` in [0, 1]
    becomes the nearest 8-bit value): Pillow's own conversion clips 16-bit grey to
    white and keeps only the high byte of 16-bit RGB. Everything downstream (training
    banks, resizing, the SR metrics) works on 8-bit images.
    """
    from PIL import Image

    with read_errors(path, "image"), Image.open(path) as img:
        bits16 = _sixteen_bit(img, path)
        if bits16 is not None:
            return bits16
        return np.asarray(img.convert("RGB"))


@contextlib.contextmanager
def read_errors(path: Path, what: str = "") -> Iterator[None]:
    """Turn a failure to read ``path`` into a one-line UserError naming the file
    (``what``: e.g. ``image`` or ``depth``, for "missing image file ..."); UserErrors
    raised inside pass unchanged."""
    kind = f"{what} " if what else ""
    try:
        yield
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"missing {kind}file {path}") from None
    except Exception as err:
        raise UserError(f"cannot read {kind}{path}: {first_line(err)}") from None


def _rawmode(img) -> str:
    """The sample layout Pillow decodes ``img`` from, e.g. ``RGB;16B`` ("" if unknown)."""
    tile = getattr(img, "tile", None) or []
    if not tile:
        return ""
    args = tile[0][3]
    return args if isinstance(args, str) else (args[0] if args and isinstance(args[0], str) else "")


def _sixteen_bit(img, path: Path) -> np.ndarray | None:
    """``uint8 H x W x 3`` of a 16-bit image, None for 8-bit ones; a 32-bit float or
    integer image (no agreed scale) is a UserError.

    Pillow decodes a 16-bit RGB(A) PNG to its high bytes only; decoding the same file
    again as little-endian gives the low bytes (the samples are big-endian), so the
    full 16-bit values need no second PNG reader. (16-bit grey+alpha PNGs, which Pillow
    has no little-endian decoder for, keep its high bytes: within one 8-bit step.)
    """
    rawmode = _rawmode(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and ";16" in rawmode):
        return _to_8bit(np.asarray(img).astype(np.uint16)[:, :, None].repeat(3, axis=2))
    if img.mode in ("I", "F"):
        kind = "32-bit float" if img.mode == "F" else "32-bit integer"
        raise UserError(
            f"image {path} is {kind} ({img.mode} mode); save images as 8- or 16-bit RGB PNG"
        )
    if img.format == "PNG" and rawmode in ("RGB;16B", "RGBA;16B"):
        from PIL import Image

        high = np.asarray(img)[:, :, :3].astype(np.uint16)
        with Image.open(path) as again:
            tile = again.tile[0]
            low_mode = rawmode[:-1] + "L"
            again.tile = [
                tile._replace(args=low_mode)
                if hasattr(tile, "_replace")
                else (*tuple(tile)[:3], low_mode)
            ]
            low = np.asarray(again)[:, :, :3].astype(np.uint16)
        return _to_8bit(high * 256 + low)
    return None


def _to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit samples -> the nearest 8-bit values (``round(v * 255 / 65535)``)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def read_raw(path: Path) -> np.ndarray:
    """Read an image without colour conversion (label maps, 16-bit depth PNGs).

    Palette PNG labels give their palette indices (the class ids); 16-bit grey PNGs
    give ``uint16`` in native byte order.
    """
    from PIL import Image

    with read_errors(path), Image.open(path) as img:
        array = np.asarray(img)
        if array.dtype.byteorder not in ("=", "|"):
            array = array.astype(array.dtype.newbyteorder("="))
        return array.copy()


def image_size(path: Path, *, verify: bool = True) -> tuple[int, int]:
    """``(H, W)`` of an image file from its header, after the checks reading it needs.

    With ``verify`` a PNG's chunks are read and their checksums checked (no pixel
    decoding), so truncated or corrupt files are found before a run starts rather than
    hours into it; an image :func:`read_rgb` would refuse (32-bit float or integer) is
    refused here too.
    """
    from PIL import Image

    with read_errors(path, "image"), Image.open(path) as img:
        size = img.size[1], img.size[0]
        if img.mode in ("I", "F") and ";16" not in _rawmode(img):
            _sixteen_bit(img, path)  # raises the 32-bit message
        if verify and img.format == "PNG":
            img.verify()
    if min(size) < 1:
        raise UserError(f"image {path} is empty ({size[1]}x{size[0]} pixels)")
    return size


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


# Files already checked by this process: (check, parameters, file stats) -> result. A
# search opens its data up to three times (the up-front check, the proxy and the final
# size); each file is read for checking once.
_CHECKED: dict[tuple, object] = {}


def _stats(item) -> tuple | None:
    """``(path, mtime, size)`` of every file of ``item`` (None when one is missing)."""
    paths = item if isinstance(item, tuple) else (item,)
    out = []
    for path in paths:
        if isinstance(path, Path):
            try:
                stat = path.stat()
            except OSError:
                return None
            out.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def check_each(items: list, check, params: tuple = ()) -> list:
    """``check(item)`` of every item, in threads (PNG decoding releases the GIL), results
    in order; the first item (in order) that raises stops the rest and its error is
    raised. Results are cached by the files' size and modification time."""
    from concurrent.futures import ThreadPoolExecutor

    name = getattr(check, "__qualname__", repr(check))
    keys = [(name, params, stats) if (stats := _stats(item)) else None for item in items]
    todo = [i for i, key in enumerate(keys) if key is None or key not in _CHECKED]
    results = {i: _CHECKED[key] for i, key in enumerate(keys) if key is not None and i not in todo}
    if todo:
        workers = max(1, min(8, os.cpu_count() or 1, len(todo)))
        executor = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [(i, executor.submit(check, items[i])) for i in todo]
            for i, future in futures:
                results[i] = future.result()
                if keys[i] is not None:
                    _CHECKED[keys[i]] = results[i]
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in range(len(items))]
