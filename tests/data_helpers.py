"""Tiny datasets in the standard layouts, written file by file for the data tests.

Pillow cannot write 16-bit RGB PNGs, so :func:`write_png` encodes PNGs itself (any
bit depth, grey / grey+alpha / RGB / RGBA): the tests need exactly the files a camera
pipeline or a depth sensor writes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type


def write_png(path: Path, array: np.ndarray, bit_depth: int = 16) -> Path:
    """Write ``array`` (``H x W`` or ``H x W x C``, C = 1..4) as a PNG of ``bit_depth``."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    dtype = ">u2" if bit_depth == 16 else "u1"
    rows = b"".join(b"\x00" + array[y].astype(dtype).tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, COLOUR_TYPES[channels], 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def rgb(path: Path, h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    """A random 8-bit RGB PNG; returns its pixels."""
    array = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def grey(path: Path, array: np.ndarray) -> Path:
    """An 8-bit (uint8) or 16-bit (uint16) single-channel PNG of ``array``."""
    if array.dtype == np.uint16:
        return write_png(path, array)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


def striped_labels(h: int = 32, w: int = 32, classes: int = 12) -> np.ndarray:
    """Every class id 0..classes-1 in turn."""
    return (np.arange(h * w).reshape(h, w) % classes).astype(np.uint8)


def camvid(root: Path, n: int = 3, labels=None) -> Path:
    """A CamVid folder of ``n`` train and ``n`` val pairs; ``labels(split, i)`` gives
    each label map (default: every class id)."""
    for split in ("train", "val"):
        for i in range(n):
            rgb(root / split / f"f{i}.png", seed=i)
            label = striped_labels() if labels is None else labels(split, i)
            grey(root / f"{split}annot" / f"f{i}.png", label)
    return root


def nyu(root: Path, n: int = 4, depth_mm=None) -> Path:
    """An NYU-style folder (rgb/ + depth/ uint16 millimetres) of ``n`` pairs;
    ``depth_mm(i)`` gives each depth map (None, or no function: 2.5 m everywhere)."""
    for i in range(n):
        rgb(root / "rgb" / f"d{i}.png", seed=i)
        depth = depth_mm(i) if depth_mm is not None else None
        if depth is None:
            depth = np.full((32, 32), 2500, np.uint16)
        grey(root / "depth" / f"d{i}.png", depth)
    return root


def sr_folder(root: Path, n: int = 3, size: int = 64) -> Path:
    """A folder of ``n`` HR images."""
    for i in range(n):
        rgb(root / f"i{i}.png", size, size, seed=i)
    return root
