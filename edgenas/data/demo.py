"""Built-in demo data: no download, deterministic, small enough for CPU minutes.

* Depth, segmentation, classification: procedurally rendered scenes. A pinhole camera
  1.5 m above a textured floor looks at a back wall; boxes, balls and poles stand on
  the floor and are painted far to near. Each scene has exact per-pixel depth (metres)
  and class labels, and the image carries real monocular cues: perspective floor
  texture, objects' floor contact row, size and atmospheric dimming with distance.
  Scene ``i`` of a split is rendered from seed ``(split, i)``, so data are identical on
  every machine.
* Super-resolution: the real photographs bundled inside the scikit-image wheel
  (``skimage/data/*.png|jpg``), read straight from the installed package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edgenas.data.base import DatasetInfo, read_rgb, to_tensor_rgb
from edgenas.errors import UserError

DEMO_CLASSES = ("floor", "wall", "box", "ball", "pole")
DEMO_PALETTE = ((140, 110, 80), (170, 170, 190), (220, 60, 40), (40, 160, 220), (240, 200, 30))
DEMO_SIZE = (128, 160)
DEMO_LENGTHS = {"train": 256, "val": 48}
DEMO_MAX_DEPTH = 10.0
CAMERA_HEIGHT = 1.5
_SPLIT_SEED = {"train": 1, "val": 2}

# Classification demo: which single object stands in the scene.
SHAPE_CLASSES = ("empty", "box", "ball", "pole")

# Photos bundled in the scikit-image wheel (not fetched: these ship in skimage/data).
SR_TRAIN_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
)
SR_VAL_PHOTOS = ("chelsea.png", "camera.png")


@dataclass(frozen=True)
class Scene:
    """One rendered scene: ``rgb`` uint8 HxWx3, ``labels`` uint8 HxW, ``depth`` float32 HxW."""

    rgb: np.ndarray
    labels: np.ndarray
    depth: np.ndarray


def render_scene(seed: int | list[int], size: tuple[int, int] = DEMO_SIZE, objects: str = "mixed"):
    """Render a deterministic scene; ``objects`` is ``mixed`` or one of SHAPE_CLASSES."""
    rng = np.random.default_rng(seed)
    h, w = size
    f = 1.1 * h  # focal length in pixels
    horizon = rng.uniform(0.3, 0.45) * h
    wall_depth = rng.uniform(6.0, 9.5)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    below = ys - horizon
    floor_depth = np.where(below > 0, CAMERA_HEIGHT * f / np.maximum(below, 1e-3), np.inf)
    is_floor = floor_depth < wall_depth
    depth = np.where(is_floor, floor_depth, wall_depth).astype(np.float32)
    labels = np.where(is_floor, 0, 1).astype(np.uint8)

    # Floor: a checkerboard on the ground plane (its frequency grows with distance).
    ground_x = (xs - w / 2) * depth / f
    checker = ((np.floor(ground_x / 0.5) + np.floor(depth / 0.5)) % 2).astype(np.float32)
    floor_rgb = np.array(rng.uniform(90, 170, 3), np.float32)
    wall_rgb = np.array(rng.uniform(130, 220, 3), np.float32)
    stripes = 0.5 + 0.5 * np.sin(xs / rng.uniform(3, 8))
    rgb = np.where(
        is_floor[..., None],
        floor_rgb * (0.75 + 0.35 * checker[..., None]),
        wall_rgb * (0.85 + 0.15 * stripes[..., None]),
    )

    kinds = list(rng.choice(["box", "ball", "pole"], size=int(rng.integers(3, 8))))
    if objects != "mixed":
        kinds = [] if objects == "empty" else [objects]
    placed = []
    for kind in kinds:
        z = rng.uniform(1.8, wall_depth - 0.5)
        x = rng.uniform(-0.45, 0.45) * w * z / f  # lateral position in metres
        placed.append((z, x, kind, rng.uniform(0, 1, 8)))
    for z, x, kind, r in sorted(placed, key=lambda p: -p[0]):  # far to near
        foot = horizon + CAMERA_HEIGHT * f / z
        cx = w / 2 + x * f / z
        colour = {"box": (200, 70, 50), "ball": (50, 140, 210), "pole": (230, 190, 40)}[kind]
        colour = np.clip(np.array(colour, np.float32) + (r[:3] - 0.5) * 60, 0, 255)
        if kind == "box":
            bw, bh = (0.5 + r[3]) * f / z, (0.4 + r[4]) * f / z
            mask = (np.abs(xs - cx) < bw / 2) & (ys < foot) & (ys > foot - bh)
            shade = 0.8 + 0.2 * ((ys - (foot - bh)) / max(bh, 1.0) < 0.2)
            obj_depth = np.full_like(depth, z)
            label = 2
        elif kind == "ball":
            radius = (0.25 + 0.3 * r[3]) * f / z
            cy = foot - radius
            dist2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / max(radius, 1.0) ** 2
            mask = dist2 < 1.0
            bulge = np.sqrt(np.clip(1.0 - dist2, 0, 1))
            shade = 0.5 + 0.5 * bulge
            obj_depth = (z - bulge * radius * z / f).astype(np.float32)
            label = 3
        else:
            pw, ph = (0.08 + 0.08 * r[3]) * f / z, (1.5 + 1.5 * r[4]) * f / z
            mask = (np.abs(xs - cx) < max(pw / 2, 0.6)) & (ys < foot) & (ys > foot - ph)
            shade = 0.8 + 0.2 * np.cos((xs - cx) / max(pw, 1.0) * np.pi)
            obj_depth = np.full_like(depth, z)
            label = 4
        mask &= obj_depth < depth
        depth = np.where(mask, obj_depth, depth).astype(np.float32)
        labels[mask] = label
        rgb = np.where(mask[..., None], colour * np.asarray(shade)[..., None], rgb)

    light = rng.uniform(0.8, 1.15)
    rgb = rgb * light * (1.0 - 0.045 * depth[..., None])  # atmospheric dimming
    rgb = rgb + rng.normal(0, 3.0, rgb.shape)
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    return Scene(rgb=rgb, labels=labels, depth=np.minimum(depth, DEMO_MAX_DEPTH))


class DemoScenes(Dataset):
    """Procedural scenes for ``depth``, ``segmentation`` or ``classification``."""

    def __init__(self, task: str, split: str, size: tuple[int, int] = DEMO_SIZE, length=None):
        if split == "all":
            split = "val"
        if split not in DEMO_LENGTHS:
            raise UserError(f"unknown split {split!r} for the demo data (train or val)")
        self.task = task
        self.split = split
        self.size = tuple(size)
        self.length = int(length or DEMO_LENGTHS[split])
        common = dict(task=task, format="demo", root="<built-in>", split=split)
        if task == "segmentation":
            self.info = DatasetInfo(
                **common,
                num_classes=len(DEMO_CLASSES),
                class_names=DEMO_CLASSES,
                palette=DEMO_PALETTE,
                ignore_index=255,
            )
        elif task == "depth":
            self.info = DatasetInfo(**common, min_depth=1e-3, max_depth=DEMO_MAX_DEPTH)
        elif task == "classification":
            self.info = DatasetInfo(
                **common, num_classes=len(SHAPE_CLASSES), class_names=SHAPE_CLASSES
            )
        else:
            raise ValueError(f"no demo scenes for task {task!r}")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        seed = [_SPLIT_SEED[self.split], index]
        if self.task == "classification":
            cls = index % len(SHAPE_CLASSES)
            scene = render_scene(seed, self.size, objects=SHAPE_CLASSES[cls])
            return to_tensor_rgb(scene.rgb), torch.tensor(cls, dtype=torch.int64)
        scene = render_scene(seed, self.size)
        image = to_tensor_rgb(scene.rgb)
        if self.task == "segmentation":
            return image, torch.from_numpy(scene.labels.astype(np.int64))
        return image, torch.from_numpy(scene.depth)[None]


def skimage_photo_dir() -> Path:
    """Folder of the photographs bundled with the installed scikit-image."""
    try:
        import skimage.data
    except ImportError:
        raise UserError(
            "the built-in SR demo data needs scikit-image: pip install scikit-image"
        ) from None
    return Path(skimage.data.__file__).parent


def demo_sr_images(split: str) -> list[np.ndarray]:
    """The bundled photographs of a split as uint8 RGB arrays."""
    names = SR_TRAIN_PHOTOS if split == "train" else SR_VAL_PHOTOS
    folder = skimage_photo_dir()
    return [read_rgb(folder / name) for name in names]


def open_demo(
    task: str,
    split: str,
    *,
    size: tuple[int, int] | None = None,
    scale: int = 2,
    train: bool | None = None,
    patch: int = 48,
    patches_per_image: int = 32,
    seed: int = 0,
):
    """The built-in dataset of ``task`` (``split`` = ``train`` or ``val``)."""
    if task == "sr":
        from edgenas.data.sr import SRDataset

        split = "val" if split == "all" else split
        info = DatasetInfo(task="sr", format="demo", root="<built-in>", split=split, scale=scale)
        return SRDataset(
            [],
            info,
            train=split == "train" if train is None else train,
            patch=patch,
            patches_per_image=patches_per_image,
            seed=seed,
            images=demo_sr_images(split),
        )
    return DemoScenes(task, split, size or DEMO_SIZE)
