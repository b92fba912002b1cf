"""Physically shrinking layers: slice weights, BatchNorm buffers and Adam's state.

A :class:`Surgery` records, for every new (smaller) parameter, the parameter it was cut
from and the index lists it was cut with, so that :meth:`Surgery.transfer` can build a
fresh optimiser over the shrunk model whose Adam moments (``exp_avg``,
``exp_avg_sq``) are the old moments sliced the same way: training continues as if the
removed units had never existed, instead of restarting Adam's running averages.
"""

from __future__ import annotations

import torch
from torch import nn


class Surgery:
    """Slices layers and remembers where each new parameter came from."""

    def __init__(self) -> None:
        # id(new parameter) -> (new parameter, original parameter, [(dim, index), ...])
        self._origin: dict[int, tuple[nn.Parameter, nn.Parameter, list]] = {}

    # ----- parameters ---------------------------------------------------------------
    def param(self, old: nn.Parameter, dim: int, index: torch.Tensor) -> nn.Parameter:
        """A new parameter holding ``old`` restricted to ``index`` along ``dim``."""
        new = nn.Parameter(old.data.index_select(dim, index).clone(), old.requires_grad)
        prev = self._origin.pop(id(old), None)
        if prev is not None:  # cut twice (e.g. a conv's in and out channels)
            source, cuts = prev[1], [*prev[2], (dim, index)]
        else:
            source, cuts = old, [(dim, index)]
        self._origin[id(new)] = (new, source, cuts)
        return new

    # ----- layers -------------------------------------------------------------------
    def conv_out(self, conv: nn.Conv2d, index: torch.Tensor) -> None:
        """Keep output channels ``index`` (depthwise convs: also their groups/inputs)."""
        depthwise = conv.groups > 1 and conv.groups == conv.out_channels
        conv.weight = self.param(conv.weight, 0, index)
        if conv.bias is not None:
            conv.bias = self.param(conv.bias, 0, index)
        conv.out_channels = len(index)
        if depthwise:
            conv.in_channels = conv.groups = len(index)

    def conv_in(self, conv: nn.Conv2d, index: torch.Tensor) -> None:
        """Keep input channels ``index`` of a dense (groups = 1) convolution."""
        assert conv.groups == 1, "only dense convolutions lose input channels"
        conv.weight = self.param(conv.weight, 1, index)
        conv.in_channels = len(index)

    def batchnorm(self, bn: nn.BatchNorm2d, index: torch.Tensor) -> None:
        """Keep channels ``index`` of a BatchNorm (affine parameters and running stats)."""
        bn.weight = self.param(bn.weight, 0, index)
        bn.bias = self.param(bn.bias, 0, index)
        bn.running_mean = bn.running_mean.index_select(0, index).clone()
        bn.running_var = bn.running_var.index_select(0, index).clone()
        bn.num_features = len(index)

    # ----- optimiser ----------------------------------------------------------------
    def origin_of(self, p: nn.Parameter) -> tuple[nn.Parameter, list]:
        """The parameter ``p`` was cut from (itself if untouched) and the cuts."""
        origin = self._origin.get(id(p))
        return (origin[1], origin[2]) if origin is not None else (p, [])

    @staticmethod
    def slice_state(state: dict, source: nn.Parameter, cuts: list) -> dict:
        """Optimiser state of ``source`` with its per-element tensors (Adam's
        ``exp_avg``, ``exp_avg_sq``) cut like the parameter; scalars copied."""
        moved = {}
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == source.shape:
                for dim, index in cuts:
                    value = value.index_select(dim, index)
            moved[key] = value.clone() if torch.is_tensor(value) else value
        return moved

    def transfer(
        self, optimizer: torch.optim.Optimizer, model: nn.Module, make=None
    ) -> torch.optim.Optimizer:
        """A new optimiser over ``model``'s parameters (``make(model)``, or the old
        one's class and defaults) with every parameter's state carried over, sliced
        for the parameters that were cut."""
        new = (
            make(model)
            if make is not None
            else type(optimizer)(model.parameters(), **optimizer.defaults)
        )
        for p in model.parameters():
            source, cuts = self.origin_of(p)
            state = optimizer.state.get(source)
            if state:
                new.state[p] = self.slice_state(state, source, cuts)
        return new
