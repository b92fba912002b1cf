"""The LDP search space: choice lists, validity, seeded sampling and the paper's mutations.

Everything here is pure Python over :mod:`edgenas.space.genotype` values; nothing
touches torch. Randomness always comes from an explicit :class:`random.Random`, so a
seed reproduces a run exactly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from edgenas.space.genotype import (
    IDENTITY_FORM,
    LAYOUTS,
    BlockSpec,
    Genotype,
    block_roles,
    blocks_for_scales,
    role_area,
)

_IDENTITY_OPERATION = (
    "id",
    IDENTITY_FORM["expansion"],
    IDENTITY_FORM["kernel"],
    IDENTITY_FORM["se"],
    IDENTITY_FORM["residual"],
)
"""The operation part of every ``id`` block (see :data:`IDENTITY_FORM`)."""

SR_UPSCALES = (2, 3, 4)
"""Super-resolution factors the ``paper`` layout's upsample block can take."""


@dataclass(frozen=True)
class SpaceSize:
    """How big the space is: ``M`` layer specs per block and ``M^(5+7(S-1))`` networks
    (``M^(6+7(S-1))`` in the ``paper`` layout)."""

    block_choices: int
    networks_log10: dict[int, float]

    def networks(self, scales: int) -> float:
        """``M^blocks`` as a float (it overflows nothing up to ~1e308)."""
        return 10.0 ** self.networks_log10[scales]


@dataclass(frozen=True)
class LDPSpace:
    """Choice lists of the LDP search space and the computational constraint.

    The defaults widen the paper's lists a little (``M = 720`` block choices against the
    paper's 192); pass narrower tuples to reproduce a smaller space.

    The computational constraint balances kernel size against width: a genotype's
    compute units ``sum(layers * kernel^2 * channels / 4^(scale-1))`` (a MAC-like proxy
    that weighs each block by the resolution it runs at) must not exceed
    ``budget_scale`` times the units of a reference network whose every block uses the
    largest kernel with the median width and median layer count. So a block may take a
    bigger kernel or more channels only if others give some back.

    ``ops`` may include ``id``, a block without layers (identity, or a 1x1 projection
    where the width or stride changes): one more operation whose kernel, SE, skip and
    layer count are fixed, so it adds one choice per width to ``M``. The paper's lists,
    and these defaults, leave it out.

    ``layout`` is the genotype layout sampled and accepted (:data:`LAYOUTS`): ``head``,
    or ``paper`` for super-resolution networks with the searched upsample block. In the
    ``paper`` layout the blocks at the output resolution (``up1``, ``ref0``) weigh
    ``upscale^2`` (the SR factor squared) in the compute units, the reference network's
    included, since they compute on that many times the pixels of scale 1.
    """

    scales: tuple[int, ...] = (2, 3, 4, 5)
    ops: tuple[str, ...] = ("conv", "ds", "ib", "micro")
    expansions: tuple[int, ...] = (3, 6)
    kernels: tuple[int, ...] = (3, 5)
    se: tuple[int, ...] = (0, 25)
    residual: tuple[bool, ...] = (True, False)
    channels: tuple[int, ...] = (8, 16, 24, 32, 48, 64)
    layers: tuple[int, ...] = (1, 2, 3)
    budget_scale: float = 1.0
    layout: str = "head"
    upscale: int = 2
    _operation_choices: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("scales", "ops", "kernels", "se", "residual", "channels", "layers"):
            if not getattr(self, name):
                raise ValueError(f"choice list {name!r} is empty")
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r} (expected {' or '.join(LAYOUTS)})")
        if self.upscale not in SR_UPSCALES:
            raise ValueError(
                f"upscale must be one of {', '.join(map(str, SR_UPSCALES))}, got {self.upscale}"
            )
        if "ib" in self.ops and not self.expansions:
            raise ValueError("the inverted bottleneck needs at least one expansion ratio")
        # Probing BlockSpec once validates every choice (odd kernels, positive widths, ...).
        operations = tuple(
            (op, expansion, kernel, se, residual)
            for op in self.ops
            if op != "id"
            for expansion in (self.expansions if op == "ib" else (1,))
            for kernel in self.kernels
            for se in self.se
            for residual in self.residual
        )
        if "id" in self.ops:  # one operation: an id block has nothing else to choose
            operations += (_IDENTITY_OPERATION,)
        for operation in operations:
            BlockSpec(
                op=operation[0],
                expansion=operation[1],
                kernel=operation[2],
                se=operation[3],
                residual=operation[4],
                channels=self.channels[0],
                layers=1 if operation[0] == "id" else self.layers[0],
            )
        object.__setattr__(self, "_operation_choices", operations)

    # ----------------------------------------------------------------- size
    def block_choices(self) -> int:
        """``M``: the number of distinct block specs (an ``id`` block has one layer)."""
        return sum(
            len(self.channels) * (1 if operation[0] == "id" else len(self.layers))
            for operation in self._operation_choices
        )

    def size(self) -> SpaceSize:
        """``M`` and ``log10(M^blocks)`` for every allowed ``S`` (``5 + 7(S-1)`` blocks, one
        more in the ``paper`` layout)."""
        m = self.block_choices()
        return SpaceSize(
            block_choices=m,
            networks_log10={
                s: blocks_for_scales(s, self.layout) * math.log10(m) for s in self.scales
            },
        )

    # ----------------------------------------------------------- constraint
    @staticmethod
    def compute_units(genotype: Genotype, upscale: int = 2) -> float:
        """MAC-like cost proxy: ``sum(layers * kernel^2 * channels * area)``, ``area`` the
        block's pixels relative to scale 1 (:func:`~edgenas.space.genotype.role_area`:
        ``1 / 4^(scale-1)``, or ``upscale^2`` at the output resolution of the ``paper``
        layout)."""
        return sum(
            block.layers * block.kernel**2 * block.channels * role_area(role, upscale)
            for role, block in zip(genotype.roles, genotype.blocks, strict=True)
        )

    def units(self, genotype: Genotype) -> float:
        """:meth:`compute_units` at this space's ``upscale``."""
        return self.compute_units(genotype, self.upscale)

    def budget(self, scales: int) -> float:
        """Compute-unit budget of an ``scales``-scale network of this space's layout (see
        the class docstring)."""
        kernel = max(self.kernels)
        channels = sorted(self.channels)[len(self.channels) // 2]
        layers = sorted(self.layers)[len(self.layers) // 2]
        reference = sum(
            layers * kernel**2 * channels * role_area(role, self.upscale)
            for role in block_roles(scales, self.layout)
        )
        return self.budget_scale * reference

    # ------------------------------------------------------------- validity
    def problems(self, genotype: Genotype) -> list[str]:
        """Every reason ``genotype`` is not in this space (empty when it is)."""
        found = []
        if genotype.layout != self.layout:
            found.append(
                f"{genotype.header}: is the {genotype.layout} layout; this space holds "
                f"{self.layout}-layout genotypes"
            )
            return found  # its blocks answer other roles: nothing more to compare
        if genotype.scales not in self.scales:
            found.append(f"{genotype.scales} scales is not among the choices {self.scales}")
        for index, (role, block) in enumerate(zip(genotype.roles, genotype.blocks, strict=True)):
            where = f"block {index} ({role}) {block.encode()}"
            if block.op not in self.ops:
                found.append(f"{where}: op {block.op!r} not in {self.ops}")
            elif block.op == "ib" and block.expansion not in self.expansions:
                found.append(f"{where}: expansion {block.expansion} not in {self.expansions}")
            if block.channels not in self.channels:
                found.append(f"{where}: channels {block.channels} not in {self.channels}")
            if block.op == "id":
                continue  # its kernel, SE, skip and layer count are fixed, not chosen
            if block.kernel not in self.kernels:
                found.append(f"{where}: kernel {block.kernel} not in {self.kernels}")
            if block.se not in self.se:
                found.append(f"{where}: se {block.se} not in {self.se}")
            if block.residual not in self.residual:
                found.append(f"{where}: residual={block.residual} not allowed")
            if block.layers not in self.layers:
                found.append(f"{where}: layers {block.layers} not in {self.layers}")
        units, budget = self.units(genotype), self.budget(genotype.scales)
        if units > budget:
            found.append(f"compute units {units:.0f} exceed the budget {budget:.0f}")
        return found

    def is_valid(self, genotype: Genotype) -> bool:
        """True when the genotype is in this space and within the compute budget."""
        return not self.problems(genotype)

    def check(self, genotype: Genotype) -> Genotype:
        """Return ``genotype`` or raise ``ValueError`` listing why it is not in the space."""
        found = self.problems(genotype)
        if found:
            raise ValueError("; ".join(found))
        return genotype

    # ------------------------------------------------------------- sampling
    def random_block(self, rng: random.Random) -> BlockSpec:
        """A random block spec from the choice lists: an operation (op, expansion,
        kernel, SE, skip) uniformly, then a width and a layer count (one for ``id``)."""
        op, expansion, kernel, se, residual = rng.choice(self._operation_choices)
        channels = rng.choice(self.channels)
        return BlockSpec(
            op=op,
            expansion=expansion,
            kernel=kernel,
            se=se,
            residual=residual,
            channels=channels,
            layers=1 if op == "id" else rng.choice(self.layers),
        )

    def sample(
        self, rng: random.Random, scales: int | None = None, max_tries: int = 10_000
    ) -> Genotype:
        """A uniformly random valid genotype (rejection sampling under the budget)."""
        if scales is None:
            scales = rng.choice(self.scales)
        elif scales not in self.scales:
            raise ValueError(f"{scales} scales is not among the choices {self.scales}")
        count = blocks_for_scales(scales, self.layout)
        budget = self.budget(scales)
        for _ in range(max_tries):
            blocks = tuple(self.random_block(rng) for _ in range(count))
            genotype = Genotype(scales, blocks, self.layout)
            if self.units(genotype) <= budget:
                return genotype
        raise RuntimeError(
            f"no genotype under the compute budget after {max_tries} tries; "
            "raise budget_scale or narrow the channel and kernel lists"
        )

    def sample_unique(
        self, n: int, seed: int, scales: tuple[int, ...] | None = None
    ) -> list[Genotype]:
        """``n`` distinct valid genotypes from one seed (scales drawn from ``scales``):
        the first ``n`` distinct ones of :meth:`iter_draws`."""
        draws = self.iter_draws(seed, scales)
        seen: dict[Genotype, None] = {}
        attempts = 0
        while len(seen) < n:
            attempts += 1
            if attempts > 100 * n + 1000:
                raise RuntimeError(f"could not draw {n} distinct genotypes")
            seen.setdefault(next(draws), None)
        return list(seen)

    def iter_draws(self, seed: int, scales: tuple[int, ...] | None = None) -> Iterator[Genotype]:
        """Valid genotypes drawn from one seed for as long as the caller takes them,
        repeats included (nothing is remembered: memory stays flat however many are
        drawn). ValueError at once for scales outside the space."""
        allowed = scales or self.scales
        for s in allowed:
            if s not in self.scales:
                raise ValueError(f"{s} scales is not among the choices {self.scales}")
        rng = random.Random(seed)

        def draws() -> Iterator[Genotype]:
            while True:
                yield self.sample(rng, scales=rng.choice(allowed))

        return draws()

    # ------------------------------------------------------------ mutations
    def mutate_swap(
        self, genotype: Genotype, rng: random.Random, max_tries: int = 50
    ) -> Genotype | None:
        """Paper mutation (a): swap the operations of two random blocks.

        The operation (op, expansion, kernel, SE, skip) moves; each block keeps its width
        and layer count, except that a swap with an ``id`` block (which has no layers)
        moves the other block's layer count with its operation, so depth moves instead
        of being lost. A swap is compatible when the two operations differ and the
        child stays in the space (the budget included, since kernels move between
        scales). Returns ``None`` when no compatible pair was found in ``max_tries``.
        """
        count = len(genotype.blocks)
        for _ in range(max_tries):
            i, j = rng.sample(range(count), 2)
            a, b = genotype.blocks[i], genotype.blocks[j]
            if a.operation() == b.operation():
                continue
            depth_moves = "id" in (a.op, b.op)
            child = genotype.replace_block(
                i, a.with_operation(b.operation(), b.layers if depth_moves else None)
            )
            child = child.replace_block(
                j, b.with_operation(a.operation(), a.layers if depth_moves else None)
            )
            if self.is_valid(child):
                return child
        return None

    def mutate_replace(
        self, genotype: Genotype, rng: random.Random, max_tries: int = 50
    ) -> Genotype | None:
        """Paper mutation (b): replace one random block with a new valid block spec."""
        for _ in range(max_tries):
            index = rng.randrange(len(genotype.blocks))
            block = self.random_block(rng)
            if block == genotype.blocks[index]:
                continue
            child = genotype.replace_block(index, block)
            if self.is_valid(child):
                return child
        return None

    def mutate(self, genotype: Genotype, rng: random.Random) -> Genotype:
        """One mutation, (a) or (b) with equal odds, falling back to the other.

        The result is always valid and differs from ``genotype``.
        """
        first, second = (
            (self.mutate_swap, self.mutate_replace)
            if rng.random() < 0.5
            else (self.mutate_replace, self.mutate_swap)
        )
        child = first(genotype, rng) or second(genotype, rng)
        if child is None:
            raise RuntimeError(f"no valid mutation of {genotype.encode()} found")
        return child

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable description of the choice lists."""
        data = asdict(self)
        data.pop("_operation_choices", None)
        return data
