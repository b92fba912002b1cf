"""Choosing the units to keep, masking them, and extracting the static network.

:func:`select_units` is the single rule used everywhere: a unit survives when its
importance ``|alpha|`` is at least ``epsilon``. A block without a residual connection
(reductions, width changes) must keep one unit, or its output would vanish: it keeps
its most important depthwise channel. :func:`apply_masks` gives the *masked supernet*
(the same weights, pruned units contributing nothing); :func:`shrink_model` removes the
same units physically; :func:`extract` returns a shrunk, mask-free, eval-mode copy whose
outputs equal the masked supernet's (tested).
"""

from __future__ import annotations

import copy

import torch

from edgenas.hrnas.supernet import HRSupernet
from edgenas.hrnas.surgery import Surgery

Keep = dict[str, torch.Tensor]


def _top(alpha: torch.Tensor, count: int) -> torch.Tensor:
    """Sorted indices of the ``count`` largest entries of ``alpha``."""
    return torch.sort(alpha.argsort(descending=True, stable=True)[:count]).values


def select_units(model: HRSupernet, epsilon: float, align: int = 1) -> dict[str, Keep]:
    """``{block name: {"k3"/"k5"/"k7"/"tokens": sorted kept indices}}``.

    ``align > 1`` rounds the number of channels kept per kernel up to a multiple of
    ``align`` (keeping the most important ones; never more than the kernel has): CPU
    runtimes use blocked layouts (onnxruntime's NCHWc: 8 or 16 channels) and a network
    with odd widths can be slower than a wider aligned one (measured: 51 M MACs with
    odd widths 16.5-23.7 ms vs 59 M MACs aligned to 8 at 8.6-11.5 ms, host CPU).
    """
    selection = {}
    for name, block in model.blocks():
        keep: Keep = {}
        best: tuple[float, int, int] | None = None  # (|alpha|, kernel, index)
        for k in block.kernels:
            if block.splits[k] == 0:
                keep[f"k{k}"] = torch.zeros(0, dtype=torch.long)
                continue
            alpha = block.channel_importance(k).detach().abs()
            keep[f"k{k}"] = torch.nonzero(alpha >= epsilon).flatten()
            n = len(keep[f"k{k}"])
            if align > 1 and n % align:
                keep[f"k{k}"] = _top(alpha, min(len(alpha), -(-n // align) * align))
            top = int(alpha.argmax())
            if best is None or float(alpha[top]) > best[0]:
                best = (float(alpha[top]), k, top)
        if block.transformer is not None:
            alpha = block.transformer.importance.detach().abs()
            keep["tokens"] = torch.nonzero(alpha >= epsilon).flatten()
        else:
            keep["tokens"] = torch.zeros(0, dtype=torch.long)
        left = sum(len(v) for v in keep.values())
        if not block.residual and left == 0 and best is not None:
            keep[f"k{best[1]}"] = torch.tensor([best[2]])
        selection[name] = keep
    return selection


def removed_units(model: HRSupernet, selection: dict[str, Keep]) -> dict[str, dict[str, int]]:
    """How many units of each kind every block would lose under ``selection``."""
    out = {}
    for name, block in model.blocks():
        units = block.units()
        out[name] = {kind: units[kind] - len(selection[name][kind]) for kind in units}
    return out


def apply_masks(model: HRSupernet, selection: dict[str, Keep] | None) -> None:
    """Mask the units ``selection`` drops (None: clear every mask)."""
    for name, block in model.blocks():
        block.set_masks(None if selection is None else selection[name])


def shrink_model(
    model: HRSupernet, selection: dict[str, Keep], surgery: Surgery | None = None
) -> Surgery:
    """Physically keep only the selected units (in place); returns the surgery record."""
    surgery = surgery or Surgery()
    for name, block in list(model.blocks()):
        block.keep_units(selection[name], surgery)
    return surgery


def extract(model: HRSupernet, epsilon: float = 0.0, align: int = 1) -> HRSupernet:
    """A static copy without the units below ``epsilon``, without masks, in eval mode."""
    static = copy.deepcopy(model)
    apply_masks(static, None)
    shrink_model(static, select_units(static, epsilon, align))
    return static.eval()
