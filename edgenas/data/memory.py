"""Training data decoded once and held in memory; batches drawn with tensor indexing.

Decoding a PNG and resizing it costs more than a training step of a small network on a
CPU, and a DataLoader pays it again every epoch. A *bank* decodes the training set
once and keeps it as ``uint8`` (a quarter of float32), on the training device when it
fits there, so that a batch is one index operation:

* :class:`DenseBank` (depth, segmentation, classification): images ``N x 3 x H x W``
  uint8 at the training size and targets (class ids as uint8 where they fit, depth in
  metres as float32);
* :class:`PatchBank` (super-resolution): whole HR and LR images of different sizes
  packed into two flat pixel buffers; a batch of aligned random LR/HR patches is one
  gather with computed indices, no Python per sample. LR comes from the whole image
  (bicubic, as at evaluation) or from the paired LR files.

Both draw samples by position in a per-epoch permutation (:func:`epoch_order`), so
batch ``k`` of a run depends only on the seed and ``k``: a run resumed at any step sees
the same batches as an uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from edgenas.errors import UserError

# Keep a bank in host memory only while it takes at most this share of the RAM.
HOST_MEMORY_SHARE = 0.25
# ... and on a GPU only while it takes at most this share of the free GPU memory.
DEVICE_MEMORY_SHARE = 0.25


def epoch_order(length: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(length, generator=generator)


def host_memory_bytes() -> int:
    """Physical memory of this machine (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def fits_in_memory(nbytes: int) -> bool:
    """Whether a bank of ``nbytes`` may be held in host memory."""
    total = host_memory_bytes()
    return total == 0 or nbytes <= HOST_MEMORY_SHARE * total


def _fits_on(device: torch.device, nbytes: int) -> bool:
    if device.type != "cuda":
        return True
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


@dataclass
class DenseBank:
    """Images and targets of a dense-prediction (or classification) training set.

    ``images``: uint8 ``N x 3 x H x W``; ``targets``: uint8/int64 class ids
    (``N x H x W`` or ``N``) or float32 depth ``N x 1 x H x W``.
    """

    images: torch.Tensor
    targets: torch.Tensor
    info: object

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int):
        """Sample ``index`` as the dataset gives it (float image, target)."""
        images, targets = self.batch(torch.tensor([index]))
        return images[0], targets[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.images, self.targets))

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device) -> DenseBank:
        """The bank on ``device`` if it fits there (else pinned host memory for CUDA)."""
        if device.type == "cuda" and not _fits_on(device, self.nbytes):
            return DenseBank(self.images.pin_memory(), self.targets.pin_memory(), self.info)
        return DenseBank(self.images.to(device), self.targets.to(device), self.info)

    def batch(self, indices: torch.Tensor, generator: torch.Generator | None = None):
        """Images as float in [0, 1] and targets (class ids as int64) of ``indices``."""
        indices = indices.to(self.images.device)
        images = self.images.index_select(0, indices).float().div_(255.0)
        targets = self.targets.index_select(0, indices)
        if not targets.is_floating_point():
            targets = targets.long()
        return images, targets

    @classmethod
    def from_dataset(cls, data: Dataset, workers: int = 0) -> DenseBank | None:
        """Decode every sample of ``data``; None when the samples differ in size or the
        bank would not fit in memory (training then streams from ``data``)."""
        from edgenas.data.loading import iterate_loader

        if len(data) == 0:
            raise UserError("the training data is empty")
        image, target = data[0]
        per_sample = image.numel() + target.numel() * (4 if target.is_floating_point() else 1)
        if not fits_in_memory(per_sample * len(data)):
            return None
        loader = torch.utils.data.DataLoader(data, batch_size=16, num_workers=workers)
        images: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        for batch_images, batch_targets in iterate_loader(loader):
            images.append(batch_images.mul(255.0).round_().to(torch.uint8))
            targets.append(batch_targets)
        if len({tuple(t.shape[1:]) for t in images}) > 1:
            return None
        stacked = torch.cat(targets)
        if not stacked.is_floating_point() and stacked.numel():
            low, high = int(stacked.min()), int(stacked.max())
            if low >= 0 and high <= 255:
                stacked = stacked.to(torch.uint8)
        return cls(torch.cat(images), stacked, getattr(data, "info", None))

    def class_counts(self, num_classes: int) -> torch.Tensor:
        """Pixels per class id in ``[0, num_classes)`` (others, e.g. ignore, dropped)."""
        labels = self.targets.reshape(-1).long().cpu()
        labels = labels[(labels >= 0) & (labels < num_classes)]
        return torch.bincount(labels, minlength=num_classes)


class PatchBank:
    """Whole HR/LR image pairs in flat buffers; random aligned patches by gather.

    ``pairs``: ``(hr, lr)`` uint8 ``H x W x 3`` arrays with ``hr`` exactly ``scale``
    times ``lr``. Images whose LR side is below ``patch`` are skipped. One epoch is
    ``patches_per_image`` patches of every usable image.
    """

    def __init__(
        self,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        info,
        *,
        scale: int,
        patch: int,
        patches_per_image: int,
    ) -> None:
        usable = [(hr, lr) for hr, lr in pairs if min(lr.shape[:2]) >= patch]
        if not usable:
            raise UserError(
                f"every training image in {getattr(info, 'root', 'the data')} is smaller than "
                f"the LR patch {patch}x{patch}; use a smaller --input"
            )
        self.info = info
        self.scale = scale
        self.patch = patch
        self.patches_per_image = patches_per_image
        self.skipped = len(pairs) - len(usable)
        self.images = len(usable)
        lr_sizes = torch.tensor([lr.shape[:2] for _, lr in usable], dtype=torch.int64)
        self.lr_h, self.lr_w = lr_sizes[:, 0], lr_sizes[:, 1]
        self.hr_w = self.lr_w * scale
        areas = self.lr_h * self.lr_w
        self.lr_offset = torch.cumsum(areas, 0) - areas
        self.hr_offset = self.lr_offset * scale * scale
        self.lr_pixels = torch.from_numpy(np.concatenate([lr.reshape(-1, 3) for _, lr in usable]))
        self.hr_pixels = torch.from_numpy(np.concatenate([hr.reshape(-1, 3) for hr, _ in usable]))

    def __len__(self) -> int:
        return self.images * self.patches_per_image

    @property
    def nbytes(self) -> int:
        return self.lr_pixels.numel() + self.hr_pixels.numel()

    @property
    def device(self) -> torch.device:
        return self.lr_pixels.device

    def to(self, device: torch.device) -> PatchBank:
        """The bank's pixel buffers on ``device`` when they fit there."""
        if device.type == "cuda" and not _fits_on(device, self.nbytes):
            self.lr_pixels, self.hr_pixels = (
                self.lr_pixels.pin_memory(),
                self.hr_pixels.pin_memory(),
            )
            return self
        for name in ("lr_pixels", "hr_pixels", "lr_h", "lr_w", "hr_w", "lr_offset", "hr_offset"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def batch(self, indices: torch.Tensor, generator: torch.Generator):
        """LR and HR patches (float in [0, 1], NCHW) for sample ``indices``; the patch
        positions are drawn from ``generator`` (a CPU generator)."""
        device = self.lr_pixels.device
        image = (indices // self.patches_per_image).to(device)
        u = torch.rand(2, indices.numel(), generator=generator).to(device)
        p, s = self.patch, self.scale
        y = (u[0] * (self.lr_h[image] - p + 1)).long()
        x = (u[1] * (self.lr_w[image] - p + 1)).long()
        lr = self._gather(self.lr_pixels, self.lr_offset[image], y, x, self.lr_w[image], p)
        hr = self._gather(
            self.hr_pixels, self.hr_offset[image], y * s, x * s, self.hr_w[image], p * s
        )
        return lr, hr

    @staticmethod
    def _gather(pixels, offset, y, x, width, size: int) -> torch.Tensor:
        steps = torch.arange(size, device=pixels.device)
        rows = (y[:, None] + steps[None, :]) * width[:, None]  # B x size
        index = offset[:, None, None] + rows[:, :, None] + (x[:, None, None] + steps[None, None, :])
        patches = pixels[index.reshape(-1)].reshape(-1, size, size, 3)
        return patches.permute(0, 3, 1, 2).float().div_(255.0).contiguous()

    @classmethod
    def from_dataset(cls, data) -> PatchBank | None:
        """The bank of an :class:`~edgenas.data.sr.SRDataset` in training mode; None
        when its images would not fit in memory."""
        pairs = data.whole_pairs(limit_bytes=_host_limit())
        if pairs is None:
            return None
        return cls(
            pairs,
            data.info,
            scale=data.scale,
            patch=data.patch,
            patches_per_image=data.patches_per_image,
        )


def _host_limit() -> int | None:
    total = host_memory_bytes()
    return int(HOST_MEMORY_SHARE * total) if total else None


def build_bank(data: Dataset, workers: int = 0) -> DenseBank | PatchBank | None:
    """A bank of ``data`` when it can be held in memory, else None (stream instead)."""
    from edgenas.data.sr import SRDataset

    if isinstance(data, DenseBank | PatchBank):
        return data
    if isinstance(data, SRDataset):
        return PatchBank.from_dataset(data) if data.train else None
    if getattr(data, "info", None) is None or getattr(data.info, "task", "") == "sr":
        return None
    return DenseBank.from_dataset(data, workers)
