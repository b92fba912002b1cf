"""Where the time of a per-layer profile goes: per operator type and per searched block.

Pure functions on :class:`~edgenas.devices.result.LayerTime` lists. Block totals need
the genotype the network was built from (the ``edgenas.genotype`` metadata that
``edgenas export`` writes, or ``--genotype``): ONNX node names carry the PyTorch module
path (``/backbone/enc2a/enc2a.0/body/.../Conv``), and the path segment that is a block
role (``enc2a``) names the block; runtimes keep that path in the names of the nodes
they fuse or split (``..._nchwc``, ``.../WithoutBiases``).
"""

from __future__ import annotations

from collections import defaultdict

OTHER = "stem/head/other"


def block_roles(genotype: str | None) -> tuple[str, ...] | None:
    """Role names of the genotype's blocks in genotype order; None when there is no
    genotype or it does not parse (the block table is then left out)."""
    if not genotype:
        return None
    from edgenas.space.genotype import decode

    try:
        return decode(genotype.strip()).roles
    except ValueError:
        return None


def block_of(names: list[str | None], roles: tuple[str, ...]) -> str:
    """The block role in the first of ``names`` whose module path has one, else OTHER."""
    wanted = set(roles)
    for name in names:
        for segment in (name or "").split("/"):
            if segment in wanted:
                return segment
    return OTHER


def _share(part: float, total: float) -> float:
    return part / total if total > 0 else 0.0


def summarise(layers: list, genotype: str | None) -> tuple[list[dict], dict]:
    """Per-layer dicts with ``share`` (and ``block``), and the summary.

    The summary holds ``total_ms`` (the sum of all layer times), ``op_types`` (count,
    total ms and share per operator type, largest first) and ``blocks`` (per block in
    genotype order with its index, then OTHER for nodes outside the searched blocks;
    None without a genotype). Shares are of ``total_ms``, so each list sums to 1.
    """
    roles = block_roles(genotype)
    total = sum(layer.time_ms for layer in layers)
    rows = []
    by_op: dict[str, list] = defaultdict(lambda: [0, 0.0])
    by_block: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for layer in layers:
        row = layer.to_dict()
        row["share"] = _share(layer.time_ms, total)
        op = by_op[layer.op_type or "?"]
        op[0] += 1
        op[1] += layer.time_ms
        if roles is not None:
            row["block"] = block_of([layer.onnx_node, layer.name], roles)
            block = by_block[row["block"]]
            block[0] += 1
            block[1] += layer.time_ms
        rows.append(row)
    op_types = [
        {"op_type": op, "count": count, "total_ms": ms, "share": _share(ms, total)}
        for op, (count, ms) in sorted(by_op.items(), key=lambda kv: -kv[1][1])
    ]
    blocks = None
    if roles is not None:
        order = [(i, role) for i, role in enumerate(roles)] + [(None, OTHER)]
        blocks = [
            {
                "index": index,
                "name": name,
                "layers": by_block[name][0],
                "total_ms": by_block[name][1],
                "share": _share(by_block[name][1], total),
            }
            for index, name in order
            if name in by_block
        ]
    return rows, {"total_ms": total, "op_types": op_types, "blocks": blocks}
