"""NASWOT: the training-free score of Mellor et al. (ICML 2021), LDP paper Eq. 2-3.

For a batch of ``B`` inputs, every ReLU-family activation gives each input a binary code:
the sign pattern (``> 0``) of the activation's input. Over all activations the codes
``c_i`` (concatenated, length ``N_A``) define the kernel

    K_H[i, j] = N_A - d_H(c_i, c_j)

(``d_H`` the Hamming distance), and the score is ``log |det K_H|``. Networks whose
activations separate the inputs well (distinct codes) score high.

Which activations count: every module whose class name contains ``ReLU``, exactly as
in the reference implementation (``nn.ReLU``, ``nn.ReLU6``, ``nn.LeakyReLU``,
``nn.PReLU``, ``nn.RReLU``). Activations used through ``torch.nn.functional`` and
other non-linearities (sigmoid gates of squeeze-and-excitation, softplus of the depth
head) contribute nothing. In the LDP space every operator, the micro-block included,
uses ``nn.ReLU`` modules: the micro-block contributes its two ReLUs (after the
factorised depthwise pair and after the first grouped pointwise convolution), an SE
module contributes the ReLU of its bottleneck.

As in the reference, the network stays in train mode (batch norm uses batch statistics).

Implementation: ``K_H = c c^T + (1-c)(1-c)^T`` per activation, and with ``s_i = sum(c_i)``
the second term is ``N - s_i - s_j + (c c^T)_ij``; so one matrix product per activation
suffices. Codes are 0/1, so the float32 product is exact while each dot product stays
below 2^24; the kernel accumulates in float64. Codes are made in cache-sized chunks
and discarded as soon as their product is taken; nothing leaves torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Columns per chunk of codes: small enough to stay in cache, and far below 2^24, the
# limit under which float32 counts of ones are exact.
_CHUNK = 1 << 16


def is_counted_activation(module: nn.Module) -> bool:
    """True for the activations NASWOT reads (class name contains ``ReLU``)."""
    return "ReLU" in type(module).__name__


def _code_kernel(activations: torch.Tensor) -> torch.Tensor:
    """``c c^T + (1-c)(1-c)^T`` in float64, ``c = activations > 0`` (a ``B x N`` matrix).

    The codes are made chunk by chunk into one reused float32 buffer: the chunk stays
    in cache for its product, no full-size temporary is allocated, and every chunk's
    product is exact (each entry counts at most ``_CHUNK`` ones). ``s_i = sum(c_i)`` is
    the diagonal of ``c c^T``, so no separate sum is taken.
    """
    batch, length = activations.shape
    gram = torch.zeros(batch, batch, dtype=torch.float64)
    buffer = torch.empty(batch, min(length, _CHUNK), dtype=torch.float32)
    for start in range(0, length, _CHUNK):
        block = activations[:, start : start + _CHUNK]
        codes = buffer[:, : block.shape[1]]
        torch.gt(block, 0, out=codes)
        gram += (codes @ codes.T).to(torch.float64)
    ones = gram.diagonal()
    return 2.0 * gram - ones[:, None] - ones[None, :] + float(length)


def hamming_kernel(
    model: nn.Module, images: torch.Tensor, *, channels_last: bool = False
) -> torch.Tensor:
    """The ``B x B`` kernel ``K_H`` of ``model`` on ``images`` (float64).

    ``channels_last=True`` runs the forward pass in the channels-last memory format,
    which takes oneDNN's fast CPU paths (2-3x faster on LDP networks). Its convolutions
    sum in a different order, so activations within rounding error of 0 can flip and
    the score moves by ~1e-5 relative: rankings are unaffected, but the scores are not
    bit-identical to the reference implementation's, so it is off by default.
    """
    batch = images.shape[0]
    kernel = torch.zeros(batch, batch, dtype=torch.float64)

    def accumulate(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        nonlocal kernel
        kernel += _code_kernel(_rows(inputs[0].detach()).float())

    handles = [
        m.register_forward_pre_hook(accumulate) for m in model.modules() if is_counted_activation(m)
    ]
    was_training = model.training
    model.train()
    if channels_last:
        # The kernel does not depend on the order of a code's bits, so channels-last
        # activations are read as they lie in memory (see _rows).
        model.to(memory_format=torch.channels_last)
        images = images.to(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
        model.train(was_training)
    return kernel


def _rows(activation: torch.Tensor) -> torch.Tensor:
    """One row per batch item, as a view where possible (any element order will do)."""
    if activation.dim() == 4 and activation.is_contiguous(memory_format=torch.channels_last):
        return activation.permute(0, 2, 3, 1).reshape(activation.shape[0], -1)
    return activation.reshape(activation.shape[0], -1)


def naswot_score(model: nn.Module, images: torch.Tensor, *, channels_last: bool = False) -> float:
    """NASWOT score ``log |det K_H|`` of ``model`` on one batch of ``images``.

    ``channels_last``: faster, not bit-identical to the reference (see :func:`hamming_kernel`).

    Returns ``-inf`` when ``K_H`` is singular (for example when two inputs of the batch
    get identical codes at every activation); a network with no counted activation has
    ``K_H = 0`` and scores ``-inf`` too.
    """
    kernel = hamming_kernel(model, images, channels_last=channels_last)
    _sign, logabsdet = torch.linalg.slogdet(kernel)
    return float(logabsdet)


def fixed_batch(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A reproducible standard-normal batch (for scoring without a dataset)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator)


def reference_score(model: nn.Module, images: torch.Tensor) -> float:
    """Plain transcription of Mellor et al.'s reference code, for oracles and benchmarks.

    Forward hooks on every ReLU-family module, two products per activation
    (``x x^T`` and ``(1-x)(1-x)^T``) taken to numpy and summed there, autograd left on,
    and ``numpy.linalg.slogdet`` at the end. Slower than :func:`naswot_score` by design.
    """
    batch = images.shape[0]
    state = {"K": np.zeros((batch, batch))}

    def counting_forward_hook(module, inp, out):
        x = inp[0].view(inp[0].size(0), -1)
        x = (x > 0).float()
        k1 = x @ x.t()
        k2 = (1.0 - x) @ (1.0 - x.t())
        state["K"] = state["K"] + k1.cpu().detach().numpy() + k2.cpu().detach().numpy()

    handles = []
    for module in model.modules():
        if "ReLU" in str(type(module)):
            handles.append(module.register_forward_hook(counting_forward_hook))
    was_training = model.training
    model.train()
    try:
        # The reference clones the input and leaves autograd on.
        model(images.clone())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    _sign, logdet = np.linalg.slogdet(state["K"])
    return float(logdet)
