"""The LDP search space: size, constraint, sampling and mutations."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from edgenas.space import LDPSpace, decode
from edgenas.space.genotype import BlockSpec, Genotype, blocks_for_scales

SPACE = LDPSpace()


def test_default_block_choices_and_network_count():
    size = SPACE.size()
    # (conv, ds, ib3, ib6, micro) x 2 kernels x 2 SE x 2 skips x 6 widths x 3 depths
    assert size.block_choices == 5 * 2 * 2 * 2 * 6 * 3
    assert size.networks_log10[5] == pytest.approx(33 * math.log10(720))


def test_paper_sized_space_gives_about_2e75():
    # 4 ops (one expansion) x 2 x 2 x 2 x 3 widths x 2 depths = 192, as in the paper.
    paper = LDPSpace(scales=(5,), expansions=(6,), channels=(16, 32, 64), layers=(1, 2))
    size = paper.size()
    assert size.block_choices == 192
    assert size.networks(5) == pytest.approx(192.0**33, rel=1e-9)
    assert 1e75 < size.networks(5) < 3e75


def test_sampling_is_reproducible_and_valid():
    first = SPACE.sample_unique(200, seed=7)
    again = SPACE.sample_unique(200, seed=7)
    other = SPACE.sample_unique(200, seed=8)
    assert first == again
    assert first != other
    assert len({g.encode() for g in first}) == 200
    assert all(SPACE.is_valid(g) for g in first)
    assert {g.scales for g in first} == set(SPACE.scales)


def test_sampling_restricted_scales():
    genotypes = SPACE.sample_unique(30, seed=0, scales=(2, 3))
    assert {g.scales for g in genotypes} <= {2, 3}
    with pytest.raises(ValueError, match="not among the choices"):
        SPACE.sample_unique(3, seed=0, scales=(9,))


def test_sampling_covers_every_choice():
    blocks = [b for g in SPACE.sample_unique(300, seed=1) for b in g.blocks]
    assert {b.op_token for b in blocks} == {"conv", "ds", "ib3", "ib6", "micro"}
    assert {b.kernel for b in blocks} == set(SPACE.kernels)
    assert {b.channels for b in blocks} == set(SPACE.channels)
    assert {b.layers for b in blocks} == set(SPACE.layers)
    assert {b.se for b in blocks} == set(SPACE.se)
    assert {b.residual for b in blocks} == {True, False}


def _uniform(scales: int, **fields) -> Genotype:
    block = BlockSpec(
        **{
            "op": "conv",
            "kernel": 3,
            "se": 0,
            "residual": True,
            "channels": 16,
            "layers": 1,
            **fields,
        }
    )
    return Genotype(scales, (block,) * blocks_for_scales(scales))


def test_budget_trades_kernel_against_channels():
    widest = _uniform(2, kernel=5, channels=64, layers=3)
    assert not SPACE.is_valid(widest)
    assert any("compute units" in p for p in SPACE.problems(widest))
    # Big kernels fit when the widths come down ...
    assert SPACE.is_valid(_uniform(2, kernel=5, channels=16, layers=2))
    # ... and the widest blocks fit with small kernels.
    assert SPACE.is_valid(_uniform(2, kernel=3, channels=48, layers=1))
    assert SPACE.compute_units(_uniform(2, kernel=5)) > SPACE.compute_units(_uniform(2, kernel=3))


def test_problems_name_values_outside_the_lists():
    genotype = _uniform(2, channels=20)
    problems = SPACE.problems(genotype)
    assert any("channels 20" in p for p in problems)
    with pytest.raises(ValueError, match="channels 20"):
        SPACE.check(genotype)
    assert SPACE.problems(_uniform(7)) and "7 scales" in SPACE.problems(_uniform(7))[0]


def test_swap_exchanges_operations_and_keeps_widths():
    rng = random.Random(3)
    for parent in SPACE.sample_unique(50, seed=3):
        child = SPACE.mutate_swap(parent, rng)
        assert child is not None
        assert SPACE.is_valid(child)
        changed = [
            i for i, (a, b) in enumerate(zip(parent.blocks, child.blocks, strict=True)) if a != b
        ]
        assert len(changed) == 2
        i, j = changed
        assert child.blocks[i].operation() == parent.blocks[j].operation()
        assert child.blocks[j].operation() == parent.blocks[i].operation()
        for k in changed:
            assert (child.blocks[k].channels, child.blocks[k].layers) == (
                parent.blocks[k].channels,
                parent.blocks[k].layers,
            )


def test_swap_returns_none_when_every_operation_is_equal():
    assert SPACE.mutate_swap(_uniform(2), random.Random(0)) is None


def test_replace_changes_exactly_one_block():
    rng = random.Random(4)
    for parent in SPACE.sample_unique(50, seed=4):
        child = SPACE.mutate_replace(parent, rng)
        assert child is not None and SPACE.is_valid(child)
        assert sum(a != b for a, b in zip(parent.blocks, child.blocks, strict=True)) == 1


def test_mutate_always_valid_and_different_and_seeded():
    parents = SPACE.sample_unique(100, seed=5)
    children = [SPACE.mutate(p, random.Random(i)) for i, p in enumerate(parents)]
    again = [SPACE.mutate(p, random.Random(i)) for i, p in enumerate(parents)]
    assert children == again
    for parent, child in zip(parents, children, strict=True):
        assert child != parent and SPACE.is_valid(child)
    # Both kinds of mutation happen.
    kinds = Counter(
        sum(a != b for a, b in zip(p.blocks, c.blocks, strict=True))
        for p, c in zip(parents, children, strict=True)
    )
    assert kinds[1] > 0 and kinds[2] > 0


def test_mutate_falls_back_to_replace_when_no_swap_fits():
    child = SPACE.mutate(_uniform(2), random.Random(0))
    assert child != _uniform(2) and SPACE.is_valid(child)


def test_bad_space_definitions_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        LDPSpace(kernels=())
    with pytest.raises(ValueError, match="odd"):
        LDPSpace(kernels=(4,))


def test_space_round_trips_through_strings_of_samples():
    for genotype in SPACE.sample_unique(100, seed=9):
        assert decode(genotype.encode()) == genotype


def test_id_blocks_are_one_operation_of_the_space():
    with_id = LDPSpace(ops=("conv", "ds", "ib", "id"), se=(0,))
    without = LDPSpace(ops=("conv", "ds", "ib"), se=(0,))
    # One id block per width: it has no kernel, SE, skip or layer count to choose.
    assert with_id.block_choices() == without.block_choices() + len(with_id.channels)
    samples = with_id.sample_unique(300, seed=1, scales=(4,))
    blocks = [b for g in samples for b in g.blocks]
    ids = [b for b in blocks if b.op == "id"]
    # drawn like any other operation: 1 of the 17 (4 conv, 4 ds, 8 ib, 1 id)
    assert 0.03 < len(ids) / len(blocks) < 0.09
    assert all(b.encode() == f"id_k1_se0_nores_c{b.channels}_n1" for b in ids)
    # kernel 1 is not among the kernels, yet an id block is in the space
    assert with_id.is_valid(samples[0]) and all(with_id.is_valid(g) for g in samples)
    assert without.problems(next(g for g in samples if any(b.op == "id" for b in g.blocks)))
    rng = random.Random(0)
    parent = next(g for g in samples if sum(b.op == "id" for b in g.blocks) >= 2)
    for _ in range(200):
        assert with_id.is_valid(with_id.mutate(parent, rng))


def test_a_swap_with_an_id_block_moves_the_depth_with_the_operation():
    space = LDPSpace(ops=("ds", "id"), kernels=(3,), se=(0,), residual=(True,), layers=(2, 3))
    blocks = [BlockSpec("ds", 3, 0, True, 16, 3)] * blocks_for_scales(2)
    blocks[1] = BlockSpec("id", 1, 0, False, 16, 1)
    parent = Genotype(2, tuple(blocks))
    child = space.mutate_swap(parent, random.Random(0))
    assert child is not None and space.is_valid(child)
    moved = [i for i, (a, b) in enumerate(zip(parent.blocks, child.blocks, strict=True)) if a != b]
    assert len(moved) == 2 and 1 in moved
    other = next(i for i in moved if i != 1)
    assert child.blocks[1] == BlockSpec("ds", 3, 0, True, 16, 3)  # the three layers moved
    assert child.blocks[other] == BlockSpec("id", 1, 0, False, 16, 1)


def test_a_space_without_id_samples_as_before_it_existed():
    # Seeded pools of stored runs replay only if adding the op changed nothing else:
    # this string was drawn by the release before id blocks existed.
    space = LDPSpace(ops=("conv", "ds", "ib"), se=(0,))
    assert space.sample_unique(2, seed=7, scales=(2,))[1].encode() == (
        "S2:ib6_k3_se0_nores_c16_n3-conv_k5_se0_nores_c48_n2-ds_k3_se0_nores_c8_n3-"
        "ds_k5_se0_res_c24_n1-conv_k5_se0_res_c48_n1-ds_k5_se0_res_c32_n3-"
        "ib6_k3_se0_nores_c24_n2-ib6_k5_se0_res_c24_n2-ds_k5_se0_nores_c16_n3-"
        "ds_k5_se0_nores_c8_n3-ib3_k3_se0_nores_c48_n2-ib3_k5_se0_res_c64_n2"
    )
