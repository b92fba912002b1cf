"""The extracted architecture as a plain value, with a compact string form.

Per searching block (in network order): channels kept per depthwise kernel (3x3, 5x5,
7x7) and transformer tokens kept. The string is the run store's candidate key::

    hrnas(w16-24-32-48,b1-2-3-4-4,d1,r2,t8,ft0,s8,h1):32/30/32/8,12/0/3/0,...

The prefix names the supernet configuration (widths, branches, depth, expansion,
tokens, fusion tokens, token size, heads); each comma-separated entry is one block's
``k3/k5/k7/tokens``. :func:`build_architecture` rebuilds the network a string names
(for checkpoints and resumed runs: the weights are loaded into it afterwards).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from edgenas.hrnas.supernet import HRSupernet, SupernetConfig


@dataclass(frozen=True)
class BlockUnits:
    """Units one block keeps, and how many it started with."""

    name: str
    k3: int
    k5: int
    k7: int
    tokens: int
    full_channels: int  # per kernel, before shrinking
    full_tokens: int

    @property
    def channels(self) -> int:
        return self.k3 + self.k5 + self.k7

    @property
    def removed(self) -> int:
        return 3 * self.full_channels + self.full_tokens - self.channels - self.tokens

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Architecture:
    config: SupernetConfig
    blocks: tuple[BlockUnits, ...]

    def encode(self) -> str:
        c = self.config
        prefix = (
            f"hrnas(w{'-'.join(map(str, c.widths))},b{'-'.join(map(str, c.branches))},"
            f"d{c.depth},r{c.expansion:g},t{c.tokens},ft{c.fusion_tokens},s{c.token_size},"
            f"h{c.heads})"
        )
        return prefix + ":" + ",".join(f"{b.k3}/{b.k5}/{b.k7}/{b.tokens}" for b in self.blocks)

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "blocks": [b.to_dict() for b in self.blocks]}

    @property
    def units(self) -> int:
        return sum(b.channels + b.tokens for b in self.blocks)


def architecture(model: HRSupernet) -> Architecture:
    """The architecture ``model`` has now (after any shrinking)."""
    c = model.config
    blocks = []
    for name, block in model.blocks():
        u = block.units()
        full_channels = max(1, round(c.expansion * block.in_channels))
        full_tokens = c.fusion_tokens if name.startswith("f") else c.tokens
        blocks.append(
            BlockUnits(name, u["k3"], u["k5"], u["k7"], u["tokens"], full_channels, full_tokens)
        )
    return Architecture(c, tuple(blocks))


_ENTRY = re.compile(r"^(\d+)/(\d+)/(\d+)/(\d+)$")


def decode_units(text: str) -> list[tuple[int, int, int, int]]:
    """The per-block ``(k3, k5, k7, tokens)`` of an encoded architecture."""
    try:
        _, body = text.split("):", 1)
    except ValueError:
        raise ValueError(f"bad HR-NAS architecture string {text[:40]!r}") from None
    out = []
    for entry in body.split(","):
        match = _ENTRY.match(entry)
        if match is None:
            raise ValueError(f"bad block entry {entry!r} in HR-NAS architecture string")
        out.append(tuple(int(g) for g in match.groups()))
    return out  # type: ignore[return-value]


def build_architecture(text: str, config: SupernetConfig, task: str, **task_options) -> HRSupernet:
    """The network an encoded architecture names, with fresh weights.

    A supernet of ``config`` is built and every block is cut down to the unit counts of
    ``text`` (:func:`decode_units`), so that a state dict saved from the shrunk network
    loads into it. Which units are kept does not matter: the weights are replaced.

    Raises:
        ValueError: ``text`` is malformed, names another supernet than ``config``, or
            keeps more units in a block than the supernet has.
    """
    from edgenas.hrnas.extract import shrink_model

    model = HRSupernet(config, task, **task_options)
    units = decode_units(text)
    ours, theirs = architecture(model).encode().split(":")[0], text.strip().split(":")[0]
    if theirs != ours:
        raise ValueError(f"the architecture belongs to supernet {theirs}, not {ours}")
    blocks = list(model.blocks())
    if len(units) != len(blocks):
        raise ValueError(
            f"the architecture has {len(units)} blocks but its supernet has {len(blocks)}"
        )
    selection = {}
    for (name, block), counts in zip(blocks, units, strict=True):
        have = block.units()
        want = dict(zip(("k3", "k5", "k7", "tokens"), counts, strict=True))
        for kind, n in want.items():
            if n > have[kind]:
                raise ValueError(f"block {name} keeps {n} {kind} units of {have[kind]}")
        selection[name] = {kind: torch.arange(n) for kind, n in want.items()}
    shrink_model(model, selection)
    if architecture(model).encode() != text.strip():  # a hand-edited string, say
        raise ValueError(f"the supernet cannot be cut down to architecture {text[:60]!r}...")
    return model
