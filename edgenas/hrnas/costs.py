"""Resource cost Delta_i of every search unit (HR-NAS Eq. 6-7), in FLOPs or latency.

Costs are per unit kind and block: ``{block: {"k3": c, "k5": c, "k7": c, "tokens": c}}``
where ``c`` is the cost of *one* unit of that kind (all channels of one depthwise kernel
in one block cost the same).

FLOPs (MACs, counted like :func:`count_hrnas_macs`: layers plus attention products): one depthwise channel of
kernel k in a block with input C x H x W and output C' x H' x W' costs
``C*H*W + k*k*H'*W' + C'*H'*W'``: its expand conv output channel, its depthwise channel
and its project conv input channel. The paper's Eq. 6 counts only the depthwise part
``k*k*H'*W'``; the pointwise parts are removed with the channel too, so counting them
makes Delta the exact MAC saving (tested against ``count_hrnas_macs``). One token costs
``T(n) - T(n-1)`` (:func:`~edgenas.hrnas.transformer.marginal_token_macs`), which grows
with n and is recomputed after every shrink step as tokens disappear.

Latency: the per-unit slope of latency on the target device, measured or (``model=
"kernels"``) predicted by the device's fused-kernel model. For a kernel
branch of a block, a stand-alone "expand -> depthwise k x k -> project" module is
exported and measured through :class:`edgenas.latency_table.Measurer` at two widths,
``m_hi`` (the branch's current width rounded up to a multiple of ``grid``) and
``m_lo = m_hi // 2``; Delta = (t(m_hi) - t(m_lo)) / (m_hi - m_lo). Tokens likewise with
the transformer at n and n // 2 tokens. Measurements live in the device's lookup table
(``hrnas-branch|...`` and ``hrnas-tf|...`` keys), so they are measured once per machine
and shape. Noise can make a slope negative; it is floored at 5% of the average
per-unit latency t(m_hi) / m_hi. The rounding to ``grid`` trades precision for far
fewer measurements as widths shrink.

:func:`blocks_latency` sums whole-block measurements (``hrnas-block|...`` keys) for
the predicted latency of the network after each shrink step.
"""

from __future__ import annotations

import torch
from torch import nn

from edgenas.hrnas.block import SearchingBlock, reduced_size
from edgenas.hrnas.config import LATENCY_MODELS
from edgenas.hrnas.supernet import HRSupernet, block_input_sizes
from edgenas.hrnas.transformer import LightTransformer, marginal_token_macs
from edgenas.models.ops import conv_bn

UnitCosts = dict[str, dict[str, float]]


def attention_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of the attention matrix products (scores and weighted sum: 2 nq nk d per
    attention), which :func:`edgenas.models.count_macs` leaves out (it counts layers)."""
    from edgenas.hrnas.transformer import Attention

    total = 0

    def count(module, inputs, output):
        nonlocal total
        query, memory = inputs[0], inputs[1]
        total += 2 * memory.shape[0] * query.shape[-2] * memory.shape[1] * memory.shape[2]

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, Attention)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def count_hrnas_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """All MACs of an HR-NAS network: layers (``count_macs``) plus attention products."""
    from edgenas.models.complexity import count_macs

    return count_macs(model, input_shape) + attention_macs(model, input_shape)


def flops_costs(model: HRSupernet, input_shape: tuple[int, ...]) -> UnitCosts:
    """MACs saved by removing one unit of each kind in each block."""
    sizes = block_input_sizes(model, input_shape)
    costs: UnitCosts = {}
    for name, block in model.blocks():
        c, h, w = sizes[name]
        oh, ow = reduced_size((h, w), block.stride)
        entry = {}
        for k in block.kernels:
            entry[f"k{k}"] = float(c * h * w + k * k * oh * ow + block.out_channels * oh * ow)
        tf = block.transformer
        entry["tokens"] = (
            float(marginal_token_macs(c, block.out_channels, tf.tokens, (h, w), size=tf.size))
            if tf is not None
            else 0.0
        )
        costs[name] = entry
    return costs


class _Branch(nn.Sequential):
    """Expand -> depthwise k x k -> project: one kernel branch of a searching block."""

    def __init__(self, cin: int, width: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__(
            conv_bn(cin, width, 1),
            conv_bn(width, width, kernel, stride, groups=width),
            conv_bn(width, cout, 1, relu=False),
        )


class _Transformer(nn.Module):
    """A transformer with its output size fixed, so that it exports with one input."""

    def __init__(self, tf: LightTransformer, size: tuple[int, int]) -> None:
        super().__init__()
        self.tf, self.size = tf, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tf(x, self.size)


class LatencyCoster:
    """Latency slopes (ms per unit) on a device: measured lazily into its table, or
    predicted by its kernel model (``model="kernels"``)."""

    def __init__(
        self, measurer, input_shape: tuple[int, ...], grid: int = 8, model: str = "measured"
    ) -> None:
        if model not in LATENCY_MODELS:
            raise ValueError(
                f"latency model must be one of {', '.join(LATENCY_MODELS)}, got {model!r}"
            )
        if model == "kernels" and not measurer.uses_kernels:
            raise ValueError(
                f"latency model kernels needs a kernel-calibrated table of {measurer.entry.name} "
                "on a host runtime (edgenas devices calibrate)"
            )
        self.measurer = measurer
        self.input_shape = tuple(input_shape)
        self.grid = grid
        self.model = model
        self._predicted: dict[str, float] = {}  # kernel-model times, per part key

    def _ms(self, key: str, build, shape: tuple[int, ...]) -> float:
        from edgenas.latency_table import NetworkParts, Part, predict_kernels

        if self.model == "kernels":
            if key not in self._predicted:
                torch.manual_seed(0)
                # The part's kernels; the overhead law's per-network offset is not the
                # part's (a network pays it once), so it is left out of slopes and sums.
                offset = self.measurer.table.kernel_overhead.offset_ms
                predicted = predict_kernels(self.measurer, build().eval(), shape)
                self._predicted[key] = max(predicted - offset, 0.0)
            return self._predicted[key]
        table = self.measurer.table
        if key not in table.entries:
            torch.manual_seed(0)  # latency does not depend on the values; keep it repeatable
            self.measurer.fill(NetworkParts([Part(key, build().eval(), (shape,))], 0.0))
        return table.entries[key]

    def _slope(self, n: int, measure) -> float:
        hi = n if n <= self.grid else -(-n // self.grid) * self.grid
        lo = hi // 2
        t_hi = measure(hi)
        t_lo = measure(lo) if lo > 0 else 0.0
        slope = (t_hi - t_lo) / (hi - lo)
        return max(slope, 0.05 * t_hi / hi)

    def costs(self, model: HRSupernet) -> UnitCosts:
        sizes = block_input_sizes(model, self.input_shape)
        costs: UnitCosts = {}
        for name, block in model.blocks():
            costs[name] = self.block_costs(block, sizes[name])
        return costs

    def block_costs(self, block: SearchingBlock, in_chw: tuple[int, int, int]) -> dict[str, float]:
        c, h, w = in_chw
        oh, ow = reduced_size((h, w), block.stride)
        cout, s = block.out_channels, block.stride
        shape = (1, c, h, w)
        entry = {}
        for k in block.kernels:
            n = block.splits[k]
            if n == 0:
                entry[f"k{k}"] = 0.0
                continue

            def branch_ms(m, k=k):
                key = f"hrnas-branch|k{k}|{c}>{m}>{cout}|s{s}|{c}x{h}x{w}"
                return self._ms(key, lambda: _Branch(c, m, cout, k, s), shape)

            entry[f"k{k}"] = self._slope(n, branch_ms)
        tf = block.transformer
        if tf is None:
            entry["tokens"] = 0.0
        else:
            heads = tf.enc_attn.heads

            def tf_ms(n):
                key = f"hrnas-tf|{c}>{n}>{cout}|s{tf.size}h{heads}|{c}x{h}x{w}>{oh}x{ow}"
                return self._ms(
                    key,
                    lambda: _Transformer(
                        LightTransformer(c, cout, n, size=tf.size, heads=heads), (oh, ow)
                    ),
                    shape,
                )

            entry["tokens"] = self._slope(tf.tokens, tf_ms)
        return entry


def _block_key(block: SearchingBlock, in_chw: tuple[int, int, int]) -> str:
    u = block.units()
    tf = block.transformer
    tokens = f"t{u['tokens']}s{tf.size}h{tf.enc_attn.heads}" if tf is not None else "t0"
    return (
        f"hrnas-block|{block.in_channels}>{block.out_channels}|s{block.stride}|"
        f"k{u['k3']}.{u['k5']}.{u['k7']}|{tokens}|{'res' if block.residual else 'nores'}|"
        + "x".join(map(str, in_chw))
    )


def blocks_latency(coster: LatencyCoster, model: HRSupernet) -> float:
    """Summed lookup-table latency (ms) of every searching block as it is now: each
    block exported whole at its real input shape (an emptied block, now the identity,
    costs 0). Catches what per-unit slopes miss: removing a kernel's last channel or a
    transformer's last token removes whole operators and their overheads."""
    import copy

    sizes = block_input_sizes(model, coster.input_shape)
    total = 0.0
    for name, block in model.blocks():
        if block.empty:
            continue
        shape = (1, *sizes[name])

        def build(block=block):
            clone = copy.deepcopy(block)
            clone.set_masks(None)
            return clone

        total += coster._ms(_block_key(block, sizes[name]), build, shape)
    return total


def penalty(model: HRSupernet, costs: UnitCosts, scale: float) -> torch.Tensor:
    """sum_i Delta_i |alpha_i| / scale over every unit (the loss's resource term)."""
    total = torch.zeros(())
    for name, block in model.blocks():
        entry = costs[name]
        for k in block.present_kernels():
            total = total + entry[f"k{k}"] * block.channel_importance(k).abs().sum()
        if block.transformer is not None:
            total = total + entry["tokens"] * block.transformer.importance.abs().sum()
    return total / scale


def mean_unit_cost(model: HRSupernet, costs: UnitCosts) -> float:
    """Average Delta over all units (the normaliser that makes lambda scale-free)."""
    total, count = 0.0, 0
    for name, block in model.blocks():
        for kind, n in block.units().items():
            total += costs[name][kind] * n
            count += n
    return total / count if count else 1.0


def removed_cost(costs: UnitCosts, removed: dict[str, dict[str, int]]) -> float:
    """sum of Delta over the units about to be removed (the predicted saving)."""
    return sum(costs[name][kind] * n for name, r in removed.items() for kind, n in r.items())
