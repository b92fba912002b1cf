"""Non-learned reference predictors (``edgenas eval --baseline``)."""

from __future__ import annotations

import numpy as np
import torch


class BicubicUpscaler:
    """Super-resolution by PIL bicubic upscaling of the 8-bit LR image.

    With LR made by PIL bicubic downscaling this reproduces the published Set5 bicubic
    baselines (x2 33.66 dB / 0.9299, x4 28.42 dB / 0.8104) within 0.02 dB.
    """

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        from edgenas.data.sr import bicubic_resize
        from edgenas.metrics import to_uint8

        out = []
        for lr in images:
            array = to_uint8(lr)
            h, w = array.shape[:2]
            up = bicubic_resize(array, (h * self.scale, w * self.scale))
            out.append(torch.from_numpy(np.ascontiguousarray(up.transpose(2, 0, 1))).float() / 255)
        return torch.stack(out)
