"""Genotypes shown by what tells them apart: the blocks in which they differ.

Children of one parent share all but one or two blocks, so a string cut to its first
characters makes them look identical. Here a genotype is shown relative to a
reference (its parent, or the current architecture): the blocks that differ, named
by their role, with only the tokens that changed (``down2:ds_k3_nores``). A genotype
without a reference is shown by the op of each block (``S2 ib3 ib3 conv ds …``).
Pure string work: no Textual, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

# Names of the four numbers of an HR-NAS block (``k3/k5/k7/tokens``).
HRNAS_UNITS = ("k3", "k5", "k7", "tokens")


@dataclass(frozen=True)
class Parsed:
    """A genotype string split into its header and blocks, each block into tokens."""

    header: str
    names: tuple[str, ...]
    blocks: tuple[tuple[str, ...], ...]
    hrnas: bool


@dataclass(frozen=True)
class BlockChange:
    """One block that differs from the reference: its position, name, the tokens that
    changed (new values) and the block's whole new string."""

    index: int
    name: str
    tokens: tuple[str, ...]
    block: str

    def text(self) -> str:
        """``down2:ds_k3`` (LDP) or ``f0.r01:k3=12`` (HR-NAS)."""
        return f"{self.name}:{'_'.join(self.tokens)}"


def parse(genotype: str) -> Parsed | None:
    """Split an LDP (``S2:blk-blk-…``, ``S2U:…``) or HR-NAS (``hrnas(…):a/b/c/d,…``)
    string; None for anything else."""
    header, sep, body = genotype.partition(":")
    if not sep or not body:
        return None
    if header.startswith("hrnas("):
        blocks = tuple(tuple(part.split("/")) for part in body.split(","))
        names = tuple(str(i) for i in range(len(blocks)))
        return Parsed(header, names, blocks, hrnas=True)
    # S2 (head layout) or S2U (the super-resolution upsample layout, one block more)
    layout = "paper" if header.endswith("U") else "head"
    digits = header[1:-1] if layout == "paper" else header[1:]
    if not (header.startswith("S") and digits.isdigit()):
        return None
    from edgenas.space.genotype import block_roles, blocks_for_scales

    scales = int(digits)
    parts = body.split("-")
    if scales < 1 or len(parts) != blocks_for_scales(scales, layout):
        return None
    blocks = tuple(tuple(part.split("_")) for part in parts)
    return Parsed(header, block_roles(scales, layout), blocks, hrnas=False)


def changes(
    genotype: str, reference: str, names: tuple[str, ...] = ()
) -> tuple[BlockChange, ...] | None:
    """The blocks of ``genotype`` that differ from ``reference``, in block order; None
    when the two do not have the same blocks to compare (other scales, other format).
    ``names``: block names of HR-NAS strings (the shrink run's), if known."""
    new, old = parse(genotype), parse(reference)
    if new is None or old is None or (new.header, len(new.blocks)) != (old.header, len(old.blocks)):
        return None
    labels = names if new.hrnas and len(names) == len(new.blocks) else new.names
    found = []
    for i, (a, b) in enumerate(zip(new.blocks, old.blocks, strict=True)):
        if a == b:
            continue
        if len(a) != len(b):
            tokens = a
        elif new.hrnas:
            units = HRNAS_UNITS if len(a) == len(HRNAS_UNITS) else tuple(map(str, range(len(a))))
            tokens = tuple(f"{u}={x}" for u, x, y in zip(units, a, b, strict=True) if x != y)
        else:
            tokens = tuple(x for x, y in zip(a, b, strict=True) if x != y)
        joiner = "/" if new.hrnas else "_"
        found.append(BlockChange(i, labels[i], tokens, joiner.join(a)))
    return tuple(found)


def outline(genotype: str) -> str:
    """A genotype without a reference: its header and the op of each block
    (``S2 ib3 ib3 conv ds …``); HR-NAS: the units per block; else the string itself."""
    parsed = parse(genotype)
    if parsed is None:
        return genotype
    if parsed.hrnas:
        return "hrnas " + " ".join("/".join(b) for b in parsed.blocks)
    return " ".join((parsed.header, *(b[0] for b in parsed.blocks)))


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, with an ellipsis when cut."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def describe(
    genotype: str,
    reference: str | None = None,
    width: int = 1000,
    names: tuple[str, ...] = (),
    same: str = "=",
) -> str:
    """How to show ``genotype`` in ``width`` characters: its differing blocks when a
    comparable ``reference`` is given (``same`` when identical), else :func:`outline`."""
    diff = changes(genotype, reference, names) if reference is not None else None
    if diff is None:
        return fit(outline(genotype), width)
    if not diff:
        return fit(same, width)
    return fit(" ".join(c.text() for c in diff), width)
