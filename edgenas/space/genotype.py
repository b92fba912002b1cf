"""LDP genotypes as plain, frozen, hashable values with an exact string form.

A network of the LDP search space (Huynh et al., Sec. 2.1) is a pyramid of ``S``
resolution scales built from ``5 + 7 (S - 1)`` blocks. Each block is ``n`` identical
layers of one layer spec; blocks differ from each other.

String grammar (one canonical string per genotype)::

    genotype := "S" scales ["U"] ":" block ("-" block)*
    block    := op "_k" kernel "_se" percent "_" skip "_c" channels "_n" layers
    op       := "conv" | "ds" | "sep" | "ib" expansion | "micro" | "id"
    skip     := "res" | "nores"

for example ``ib6_k5_se25_res_c32_n2``: inverted bottleneck with expansion 6, 5x5
depthwise kernel, squeeze-and-excitation ratio 0.25, residual connection, 32 output
channels, 2 layers. Numbers are written without leading zeros so that the string is
canonical: ``decode(s).encode() == s`` for every string ``decode`` accepts.

The ``id`` op is a block without layers (the "skip" choice of FBNet and ProxylessNAS,
which lets a search choose depth): the identity where the width and stride do not
change, else a 1x1 convolution with batch norm that projects to its width and stride.
It has one canonical form, ``id_k1_se0_nores_c<channels>_n1``.

Every number has a ceiling (:data:`LIMITS`) far above what the search space uses but
low enough that a typo such as ``c99999999`` is refused as text instead of failing
to allocate a 57 GB weight tensor.

The blocks appear in data-flow order, see :func:`block_roles`.

Two layouts share the grammar. ``S3:...`` (layout ``head``, the original one) ends the
pyramid at the stem's resolution and leaves the output size to the task's head.
``S3U:...`` (layout ``paper``, super-resolution only, LDP Sec. 3.3) has one block more:
a searched upsample block ``up1`` between the last decoder block and the refine block,
which brings the features to the output (high) resolution, so the refine block
``ref0`` runs there. Its upsampling factor is the task's SR scale, not part of the
string: one genotype builds at x2, x3 and x4, as a ``head`` genotype does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

OPS = ("conv", "ds", "sep", "ib", "micro", "id")
"""Convolution operators: vanilla conv, depthwise-separable conv (MobileNet's, a batch
norm after each half), separable conv (as in Xception, nothing between the halves, then
one batch norm and ReLU: the same inference cost, cheaper to train), inverted
bottleneck (MBConv), MicroNet-style micro-factorised block; and ``id``, a block without
layers (identity, or a 1x1 projection where the width or stride changes)."""

IDENTITY_FORM = {"kernel": 1, "se": 0, "residual": False, "layers": 1, "expansion": 1}
"""The fixed fields of an ``id`` block: only its width is free."""

LIMITS = {"kernel": 15, "channels": 4096, "layers": 16, "expansion": 16}
"""The largest value of each number of a block. The search space stays far below them
(64 channels, kernel 5, 3 layers, expansion 6); hand-written networks for edge devices
rarely exceed 1024 channels. They bound the grammar, not a network's memory: the
commands that build a network estimate that separately."""

_NUMBER = r"(0|[1-9][0-9]*)"
_BLOCK_RE = re.compile(
    rf"^(?P<op>conv|ds|sep|micro|id|ib(?P<exp>{_NUMBER}))"
    rf"_k(?P<k>{_NUMBER})_se(?P<se>{_NUMBER})_(?P<skip>res|nores)"
    rf"_c(?P<c>{_NUMBER})_n(?P<n>{_NUMBER})$"
)
_HEADER_RE = re.compile(rf"^S(?P<s>{_NUMBER})(?P<up>U?)$")

LAYOUTS = ("head", "paper")
"""Genotype layouts: ``head`` (``S<n>:``), the pyramid ends at the stem's resolution and
the task head makes the output size; ``paper`` (``S<n>U:``, super-resolution only), a
searched upsample block ``up1`` and the refine block ``ref0`` at the output resolution."""

_LAYOUT_MARK = {"head": "", "paper": "U"}
_BLOCK_SEPARATOR = re.compile(r"-(?![0-9])")


def check_layout(layout: str) -> str:
    """``layout`` if it is one of :data:`LAYOUTS`, else ``ValueError``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown genotype layout {layout!r} (expected {' or '.join(LAYOUTS)})")
    return layout


def blocks_for_scales(scales: int, layout: str = "head") -> int:
    """Number of blocks of an ``scales``-scale pyramid: ``5 + 7 (S - 1)``, one more
    (the upsample block ``up1``) in the ``paper`` layout."""
    return 5 + 7 * (scales - 1) + (check_layout(layout) == "paper")


def block_roles(scales: int, layout: str = "head") -> tuple[str, ...]:
    """Role names of the blocks of an ``scales``-scale network, in genotype order.

    Encoder side, top scale first: ``enc1a enc1b down2 enc2a enc2b ... encSb``; then the
    decoder side, bottom scale first: ``decSa decSb refS upS dec(S-1)a ... dec1b ref1``.
    ``downK`` halves the resolution into scale K, ``upK`` doubles it from scale K to K-1.

    The ``paper`` layout ends ``... dec1a dec1b up1 ref0`` instead: ``up1`` upsamples
    from scale 1 to scale 0, the output resolution (the SR scale times scale 1), and
    the refine block ``ref0`` runs there.
    """
    check_layout(layout)
    roles: list[str] = []
    for s in range(1, scales + 1):
        if s > 1:
            roles.append(f"down{s}")
        roles += [f"enc{s}a", f"enc{s}b"]
    for s in range(scales, 0, -1):
        if s == 1 and layout == "paper":
            roles += ["dec1a", "dec1b", "up1", "ref0"]
            continue
        roles += [f"dec{s}a", f"dec{s}b", f"ref{s}"]
        if s > 1:
            roles.append(f"up{s}")
    return tuple(roles)


@functools.cache  # a handful of roles, asked hundreds of thousands of times per pool
def role_scale(role: str) -> int:
    """Scale index (1 = the stem's resolution) at which a block of this role computes.

    ``downK`` runs at scale K (its first layer has stride 2); ``upK`` runs at scale K-1
    (it upsamples first, then applies its layers). Scale 0 is the output resolution of
    the ``paper`` layout (``up1`` and ``ref0``), the SR scale times scale 1.
    """
    number = int(re.sub(r"[^0-9]", "", role))
    return number - 1 if role.startswith("up") else number


def role_area(role: str, upscale: int = 2) -> float:
    """Pixels a block of this role computes on, relative to scale 1.

    ``1 / 4^(scale - 1)`` for scales 1 and up; ``upscale^2`` at scale 0 (the output
    resolution of the ``paper`` layout, ``upscale`` being the SR factor). Compute
    budgets and cost estimates weigh each block by it.
    """
    scale = role_scale(role)
    return float(upscale * upscale) if scale == 0 else 4.0 ** (1 - scale)


def scale_label(role: str) -> str:
    """A block's scale as tables show it: ``1``, ``2``, ... or ``HR`` for scale 0."""
    scale = role_scale(role)
    return "HR" if scale == 0 else str(scale)


@dataclass(frozen=True)
class BlockSpec:
    """One block: ``layers`` identical layers of one layer spec.

    Attributes:
        op: one of :data:`OPS`.
        kernel: spatial kernel size of the (depthwise) convolution.
        se: squeeze-and-excitation ratio in percent (0 = no SE, 25 = ratio 0.25).
        residual: add the layer input to its output where the shapes match.
        channels: output channels of every layer of the block.
        layers: number of identical layers.
        expansion: expansion ratio of the inverted bottleneck; 1 for the other ops.
    """

    op: str
    kernel: int
    se: int
    residual: bool
    channels: int
    layers: int
    expansion: int = 1

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r} (expected one of {', '.join(OPS)})")
        if self.op == "ib" and not 1 <= self.expansion <= LIMITS["expansion"]:
            raise ValueError(
                f"inverted bottleneck needs expansion 1..{LIMITS['expansion']}, "
                f"got {self.expansion}"
            )
        if self.op != "ib" and self.expansion != 1:
            raise ValueError(f"op {self.op!r} takes no expansion ratio (got {self.expansion})")
        if self.kernel < 1 or self.kernel % 2 == 0 or self.kernel > LIMITS["kernel"]:
            raise ValueError(
                f"kernel must be an odd number from 1 to {LIMITS['kernel']}, got {self.kernel}"
            )
        if not 0 <= self.se <= 100:
            raise ValueError(f"se must be a percentage in 0..100, got {self.se}")
        if not 1 <= self.channels <= LIMITS["channels"]:
            raise ValueError(f"channels must be 1..{LIMITS['channels']}, got {self.channels}")
        if not 1 <= self.layers <= LIMITS["layers"]:
            raise ValueError(f"layers must be 1..{LIMITS['layers']}, got {self.layers}")
        if self.op == "id" and any(getattr(self, k) != v for k, v in IDENTITY_FORM.items()):
            raise ValueError(
                "an id block has no layers to configure: write it "
                f"id_k1_se0_nores_c{self.channels}_n1"
            )

    @property
    def op_token(self) -> str:
        """The op as written in strings: ``conv``, ``ds``, ``sep``, ``ib6``, ``micro``."""
        return f"ib{self.expansion}" if self.op == "ib" else self.op

    @property
    def se_ratio(self) -> float:
        """Squeeze-and-excitation ratio as a fraction (0.25 for ``se25``)."""
        return self.se / 100.0

    def encode(self) -> str:
        """Canonical string of this block, e.g. ``ib6_k5_se25_res_c32_n2``."""
        skip = "res" if self.residual else "nores"
        return f"{self.op_token}_k{self.kernel}_se{self.se}_{skip}_c{self.channels}_n{self.layers}"

    @classmethod
    def decode(cls, text: str) -> BlockSpec:
        """Parse a block string; raise ``ValueError`` naming the offending token."""
        match = _BLOCK_RE.match(text)
        if match is None:
            raise ValueError(f"bad block {text!r}: {_explain_block_error(text)}")
        op = match["op"]
        expansion = int(match["exp"]) if match["exp"] is not None else 1
        try:
            return cls(
                op="ib" if op.startswith("ib") else op,
                kernel=int(match["k"]),
                se=int(match["se"]),
                residual=match["skip"] == "res",
                channels=int(match["c"]),
                layers=int(match["n"]),
                expansion=expansion,
            )
        except ValueError as err:
            raise ValueError(f"bad block {text!r}: {err}") from None

    def operation(self) -> tuple[str, int, int, int, bool]:
        """The operation part (op, expansion, kernel, se, residual), without the widths.

        The swap mutation exchanges this part between two blocks.
        """
        return (self.op, self.expansion, self.kernel, self.se, self.residual)

    def with_operation(
        self, operation: tuple[str, int, int, int, bool], layers: int | None = None
    ) -> BlockSpec:
        """A copy with the operation part replaced; channels kept, and the layer count
        unless ``layers`` is given (an ``id`` block has one layer)."""
        op, expansion, kernel, se, residual = operation
        return BlockSpec(
            op=op,
            kernel=kernel,
            se=se,
            residual=residual,
            channels=self.channels,
            layers=1 if op == "id" else (layers or self.layers),
            expansion=expansion,
        )


_TOKEN_HINTS = (
    (
        "op",
        re.compile(r"^(conv|ds|sep|micro|id|ib(0|[1-9][0-9]*))$"),
        "conv, ds, sep, ib<expansion>, micro or id",
    ),
    ("kernel", re.compile(r"^k(0|[1-9][0-9]*)$"), "k<odd number>, e.g. k3"),
    ("se", re.compile(r"^se(0|[1-9][0-9]*)$"), "se<percent>, e.g. se0 or se25"),
    ("skip", re.compile(r"^(res|nores)$"), "res or nores"),
    ("channels", re.compile(r"^c(0|[1-9][0-9]*)$"), "c<channels>, e.g. c32"),
    ("layers", re.compile(r"^n(0|[1-9][0-9]*)$"), "n<layers>, e.g. n2"),
)


def _explain_block_error(text: str) -> str:
    """Name the first token of a block string that does not parse."""
    tokens = text.split("_")
    for index, (field, pattern, expected) in enumerate(_TOKEN_HINTS):
        if index >= len(tokens):
            return f"missing {field} token (expected {expected})"
        if not pattern.match(tokens[index]):
            if re.search(r"-[0-9]", tokens[index]):
                number = "expansion" if field == "op" else field
                return f"bad {field} token {tokens[index]!r}: {number} cannot be negative"
            return f"bad {field} token {tokens[index]!r} (expected {expected})"
    return f"unexpected extra token {tokens[len(_TOKEN_HINTS)]!r}"


@dataclass(frozen=True)
class Genotype:
    """A whole LDP network: the number of scales, its blocks in :func:`block_roles` order
    and its layout (:data:`LAYOUTS`; ``head`` unless given)."""

    scales: int
    blocks: tuple[BlockSpec, ...]
    layout: str = "head"

    def __post_init__(self) -> None:
        if self.scales < 1:
            raise ValueError(f"scales must be >= 1, got {self.scales}")
        check_layout(self.layout)
        if not isinstance(self.blocks, tuple):
            # Lists would make the value unhashable; normalise quietly.
            object.__setattr__(self, "blocks", tuple(self.blocks))
        expected = blocks_for_scales(self.scales, self.layout)
        if len(self.blocks) != expected:
            kind = "" if self.layout == "head" else f" {self.layout}-layout"
            raise ValueError(
                f"a {self.scales}-scale{kind} genotype has {expected} blocks, "
                f"got {len(self.blocks)}"
            )

    @property
    def roles(self) -> tuple[str, ...]:
        """Role name of each block (see :func:`block_roles`)."""
        return block_roles(self.scales, self.layout)

    @property
    def header(self) -> str:
        """The string's prefix without the colon: ``S2`` or, in the paper layout, ``S2U``."""
        return f"S{self.scales}{_LAYOUT_MARK[self.layout]}"

    def encode(self) -> str:
        """Canonical string, e.g. ``S2:conv_k3_se0_res_c16_n1-...`` (``S2U:...`` in the
        paper layout)."""
        return f"{self.header}:" + "-".join(block.encode() for block in self.blocks)

    def __str__(self) -> str:
        return self.encode()

    def replace_block(self, index: int, block: BlockSpec) -> Genotype:
        """A copy with block ``index`` replaced (same scales and layout)."""
        blocks = list(self.blocks)
        blocks[index] = block
        return Genotype(self.scales, tuple(blocks), self.layout)


def decode(text: str) -> Genotype:
    """Parse a genotype string; raise ``ValueError`` naming the offending token.

    Only canonical strings are accepted, so ``decode(s).encode() == s`` always holds.
    """
    if not isinstance(text, str):
        raise ValueError(f"a genotype string is required, got {type(text).__name__}")
    header, sep, body = text.partition(":")
    if not sep:
        raise ValueError(f"bad genotype {_short(text)}: missing the 'S<scales>:' prefix")
    match = _HEADER_RE.match(header)
    if match is None:
        raise ValueError(
            f"bad scales token {header!r} (expected S<scales>, e.g. S3, or S<scales>U for "
            "the super-resolution upsample layout, e.g. S3U)"
        )
    scales = int(match["s"])
    if scales < 1:
        raise ValueError(f"bad scales token {header!r}: scales must be >= 1")
    layout = "paper" if match["up"] else "head"
    # Blocks are joined by "-", and no block starts with a digit: a "-" before a digit
    # is a minus sign (``c-8``), kept in its block so that the error names that token.
    tokens = _BLOCK_SEPARATOR.split(body)
    expected = blocks_for_scales(scales, layout)
    if len(tokens) != expected:
        raise ValueError(
            f"bad genotype {_short(text)}: {header} needs {expected} blocks, got {len(tokens)}"
            + _layout_hint(scales, layout, len(tokens))
        )
    roles = block_roles(scales, layout)
    blocks = []
    for position, token in enumerate(tokens):
        try:
            blocks.append(BlockSpec.decode(token))
        except ValueError as err:
            raise ValueError(f"block {position} ({roles[position]}): {err}") from None
    return Genotype(scales, tuple(blocks), layout)


def _layout_hint(scales: int, layout: str, count: int) -> str:
    """A hint when ``count`` blocks would fit the other layout's header."""
    other = "head" if layout == "paper" else "paper"
    if count != blocks_for_scales(scales, other):
        return ""
    header = f"S{scales}{_LAYOUT_MARK[other]}"
    what = "the super-resolution upsample layout" if other == "paper" else "the head layout"
    return f" ({count} blocks is {what}: write {header}:)"


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
