"""The lightweight transformer of HR-NAS (Ding et al., CVPR 2021, Sec. 3.1, Fig. 2).

A feature map (C x H x W) becomes ``n`` tokens of dimension ``s * s``:

- projector (the official code's order): bilinear resize of the map to ``s x s``, then
  the 2-channel positional map of the ``s x s`` grid (i/s, j/s) concatenated, then a
  1x1 conv + BN down to ``n`` channels; channel ``t`` is token ``t`` (its ``s * s``
  pixels are its features). Resizing first makes the projector cost ``(C+2) s^2`` MACs
  per token whatever the feature map's size (convolving at full resolution first, as
  this module once did, cost ``(C+2) H W``: about 7x more at Cityscapes' 1/4 scale);
- encoder: multi-head self-attention and a feed-forward network (two linear layers,
  ReLU, 4x hidden), each with a residual and LayerNorm (post-norm);
- decoder: ``n`` learnable queries attend to the encoder output (no self-attention
  first), then a feed-forward network, again with residuals and LayerNorm;
- inverse projector: the ``n`` decoded tokens as an ``n x s x s`` map, 1x1 conv + BN to
  the output channels, bilinear resize to the output size (half size in reduction blocks).

Tokens are the transformer's search units; their importance is the projector BN's scale.
A *token mask* (for the masked supernet) zeroes a token, hides it from every attention
as a key and drops its decoded output, which is exactly what removing it does; so a
masked transformer and its physically shrunk copy give the same outputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from edgenas.hrnas.surgery import Surgery

_NEG = -1e9  # softmax weight exp(-1e9) is exactly 0 in float32


class Attention(nn.Module):
    """Multi-head attention written with matmul + softmax (plain ONNX, countable MACs)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"token dimension {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        # Only constant shapes (unflatten/flatten, broadcasting): the exported graph
        # then has no shape arithmetic. A 2-D query (the decoder's learnable queries)
        # broadcasts over the batch.
        h = self.heads
        q = self.q(query).unflatten(-1, (h, -1)).transpose(-2, -3)
        k = self.k(memory).unflatten(-1, (h, -1)).transpose(-2, -3)
        v = self.v(memory).unflatten(-1, (h, -1)).transpose(-2, -3)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask.view(1, 1, 1, -1), _NEG)
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.o(out.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """Linear (d -> 4d), ReLU, linear (4d -> d)."""

    def __init__(self, dim: int, hidden_ratio: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_ratio * dim)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden_ratio * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def feature_hw(x: torch.Tensor) -> tuple:
    """Height and width of ``x``: Python ints when run eagerly, traced sizes when
    exported, so that an exported network computes every size from its input and takes
    images of any size (the ONNX files of ``edgenas shrink`` have dynamic height and
    width)."""
    return x.shape[-2], x.shape[-1]


def positional_map(x: torch.Tensor) -> torch.Tensor:
    """N x 2 x H x W map of normalised row and column coordinates (i/h, j/w) of ``x``."""
    h, w = feature_hw(x)
    zero = torch.zeros_like(x[:, :1])  # broadcast over the batch, on x's device
    rows = (torch.arange(h, dtype=x.dtype, device=x.device) / h).view(1, 1, -1, 1)
    cols = (torch.arange(w, dtype=x.dtype, device=x.device) / w).view(1, 1, 1, -1)
    return torch.cat([zero + rows, zero + cols], dim=1)


class LightTransformer(nn.Module):
    """``forward(x, out_size) -> N x out_channels x out_size``; see the module docstring."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        tokens: int,
        *,
        size: int = 8,
        heads: int = 1,
        ffn_ratio: int = 4,
    ) -> None:
        super().__init__()
        if tokens < 1:
            raise ValueError("a transformer needs at least one token")
        self.size = size
        # False: the order of networks stored before the switch to the official one
        # (1x1 conv at full resolution, then resize); the supernet sets it from its
        # config so that an old checkpoint computes what it was trained as.
        self.resize_first = True
        dim = size * size
        self.proj_conv = nn.Conv2d(in_channels + 2, tokens, 1, bias=False)
        self.proj_bn = nn.BatchNorm2d(tokens)
        self.enc_attn = Attention(dim, heads)
        self.enc_norm1 = nn.LayerNorm(dim)
        self.enc_ffn = FeedForward(dim, ffn_ratio)
        self.enc_norm2 = nn.LayerNorm(dim)
        self.queries = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.dec_attn = Attention(dim, heads)
        self.dec_norm1 = nn.LayerNorm(dim)
        self.dec_ffn = FeedForward(dim, ffn_ratio)
        self.dec_norm2 = nn.LayerNorm(dim)
        self.inv_conv = nn.Conv2d(tokens, out_channels, 1, bias=False)
        self.inv_bn = nn.BatchNorm2d(out_channels)
        # Masked-supernet view (not a buffer: never saved, never exported).
        self.token_mask: torch.Tensor | None = None

    @property
    def tokens(self) -> int:
        return self.proj_conv.out_channels

    @property
    def importance(self) -> torch.Tensor:
        """Per-token importance alpha: the projector BN's scale."""
        return self.proj_bn.weight

    def forward(self, x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        s = self.size
        if self.resize_first:
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        t = self.proj_bn(self.proj_conv(torch.cat([x, positional_map(x)], dim=1)))
        mask = self.token_mask
        if mask is not None:
            t = t * mask.to(t.dtype).view(1, -1, 1, 1)
        if not self.resize_first:
            t = F.interpolate(t, size=(s, s), mode="bilinear", align_corners=False)
        tokens = t.flatten(2)  # N x n x s*s
        enc = self.enc_norm1(tokens + self.enc_attn(tokens, tokens, mask))
        enc = self.enc_norm2(enc + self.enc_ffn(enc))
        # The queries go in as the 2-D parameter itself (broadcast inside): a view of a
        # parameter made under no_grad trips torch's FLOP counter.
        dec = self.dec_norm1(self.queries + self.dec_attn(self.queries, enc, mask))
        dec = self.dec_norm2(dec + self.dec_ffn(dec))
        if mask is not None:
            dec = dec * mask.to(dec.dtype).view(1, -1, 1)
        y = self.inv_bn(self.inv_conv(dec.unflatten(-1, (s, s))))
        return F.interpolate(y, size=tuple(out_size), mode="bilinear", align_corners=False)

    def keep_tokens(self, index: torch.Tensor, surgery: Surgery) -> None:
        """Physically keep only tokens ``index`` (sorted, non-empty)."""
        surgery.conv_out(self.proj_conv, index)
        surgery.batchnorm(self.proj_bn, index)
        self.queries = surgery.param(self.queries, 0, index)
        surgery.conv_in(self.inv_conv, index)
        self.token_mask = None


def transformer_macs(
    in_channels: int,
    out_channels: int,
    tokens: int,
    in_hw: tuple[int, int],
    *,
    size: int = 8,
    ffn_ratio: int = 4,
) -> int:
    """MACs of one forward pass (batch 1): convolutions, linear layers and the attention
    matrix products (as :func:`edgenas.hrnas.costs.count_hrnas_macs` counts them; torch's
    FLOP counter gives twice this, tested). Bilinear resizing, normalisation and softmax
    are not counted (no multiply-accumulates of a layer).

    With d = s^2: projector (C+2)s^2 per token (it runs after the resize to s x s, so
    ``in_hw`` does not change the count; it stays an argument for the callers); encoder q/k/v/o 4d^2 and FFN 2*r*d^2 per
    token plus 2 n^2 d for scores and weighted sum; decoder the same; inverse projector
    C' s^2 per token. The marginal cost of one token therefore grows with n (the n^2
    attention terms) and is recomputed as tokens disappear.
    """
    del in_hw  # the projector works on the s x s resized map (see the docstring)
    n, d = tokens, size * size
    per_token = (in_channels + 2) * d + 2 * (4 * d * d + 2 * ffn_ratio * d * d)
    per_token += out_channels * d
    return n * per_token + 4 * n * n * d


def marginal_token_macs(in_channels, out_channels, tokens, in_hw, *, size=8, ffn_ratio=4) -> int:
    """MACs saved by removing one of ``tokens`` tokens (Eq. 6's Delta for a token)."""
    full = transformer_macs(
        in_channels, out_channels, tokens, in_hw, size=size, ffn_ratio=ffn_ratio
    )
    less = transformer_macs(
        in_channels, out_channels, tokens - 1, in_hw, size=size, ffn_ratio=ffn_ratio
    )
    return full - less
