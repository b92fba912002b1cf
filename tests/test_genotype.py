"""Genotype values and their string form."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgenas.space.genotype import (
    BlockSpec,
    Genotype,
    block_roles,
    blocks_for_scales,
    decode,
    role_scale,
)


@st.composite
def block_specs(draw):
    op = draw(st.sampled_from(["conv", "ds", "sep", "ib", "micro", "id"]))
    if op == "id":
        return BlockSpec("id", 1, 0, False, draw(st.integers(1, 4096)), 1)
    return BlockSpec(
        op=op,
        kernel=draw(st.sampled_from([1, 3, 5, 7, 9])),
        se=draw(st.integers(0, 100)),
        residual=draw(st.booleans()),
        channels=draw(st.integers(1, 4096)),
        layers=draw(st.integers(1, 12)),
        expansion=draw(st.integers(1, 12)) if op == "ib" else 1,
    )


@st.composite
def genotypes(draw):
    scales = draw(st.integers(1, 6))
    blocks = draw(
        st.lists(
            block_specs(), min_size=blocks_for_scales(scales), max_size=blocks_for_scales(scales)
        )
    )
    return Genotype(scales, tuple(blocks))


@settings(max_examples=600, deadline=None)
@given(genotypes())
def test_round_trip_is_exact(genotype):
    text = genotype.encode()
    assert decode(text) == genotype
    assert decode(text).encode() == text
    assert hash(decode(text)) == hash(genotype)


@settings(max_examples=250, deadline=None)
@given(genotypes(), genotypes())
def test_distinct_genotypes_have_distinct_strings(a, b):
    assert (a == b) == (a.encode() == b.encode())


def test_block_string_matches_design_example():
    block = BlockSpec(op="ib", expansion=6, kernel=5, se=25, residual=True, channels=32, layers=2)
    assert block.encode() == "ib6_k5_se25_res_c32_n2"
    assert block.se_ratio == 0.25


@pytest.mark.parametrize("scales", [1, 2, 3, 4, 5])
def test_block_count_follows_paper(scales):
    roles = block_roles(scales)
    assert len(roles) == 5 + 7 * (scales - 1)
    assert len(set(roles)) == len(roles)
    assert sum(r.startswith("down") for r in roles) == scales - 1
    assert sum(r.startswith("up") for r in roles) == scales - 1
    assert sum(r.startswith("ref") for r in roles) == scales


def test_role_scales():
    assert role_scale("enc1a") == 1
    assert role_scale("down3") == 3
    assert role_scale("up3") == 2
    assert role_scale("ref12") == 12


VALID_BLOCK = "conv_k3_se0_res_c16_n1"


def _genotype_text(block: str, scales: int = 1, position: int = 0) -> str:
    blocks = [VALID_BLOCK] * blocks_for_scales(scales)
    blocks[position] = block
    return f"S{scales}:" + "-".join(blocks)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (_genotype_text("conv_k3_se0_res_c16_n1_x"), "'x'"),
        (_genotype_text("ib_k3_se0_res_c16_n1"), "'ib'"),
        (_genotype_text("dw_k3_se0_res_c16_n1"), "'dw'"),
        (_genotype_text("conv_k03_se0_res_c16_n1"), "'k03'"),
        (_genotype_text("conv_k4_se0_res_c16_n1"), "kernel"),
        (_genotype_text("conv_k3_se101_res_c16_n1"), "se"),
        (_genotype_text("conv_k3_se0_skip_c16_n1"), "'skip'"),
        (_genotype_text("conv_k3_se0_res_c0_n1"), "channels"),
        (_genotype_text("conv_k3_se0_res_c16_n0"), "layers"),
        (_genotype_text("conv_k3_se0_res_c16"), "missing layers"),
        (_genotype_text("ds3_k3_se0_res_c16_n1"), "'ds3'"),
        (_genotype_text("ib0_k3_se0_res_c16_n1"), "expansion"),
        (_genotype_text("conv_k3_se0_res_c16_n1", position=4).replace("S1", "S01"), "'S01'"),
        ("conv_k3_se0_res_c16_n1", "S<scales>"),
        ("S2:" + "-".join([VALID_BLOCK] * 5), "needs 12 blocks"),
        ("S0:" + VALID_BLOCK, "'S0'"),
        (_genotype_text("conv_k3_se0_res_c16_n1 "), "'n1 '"),
        (_genotype_text("id_k3_se0_nores_c16_n1"), "write it id_k1_se0_nores_c16_n1"),
        (_genotype_text("id_k1_se0_res_c16_n1"), "write it id_k1_se0_nores_c16_n1"),
        (_genotype_text("id_k1_se0_nores_c16_n2"), "write it id_k1_se0_nores_c16_n1"),
        (_genotype_text("id2_k1_se0_nores_c16_n1"), "micro or id"),
    ],
)
def test_invalid_strings_name_the_offending_token(text, named):
    with pytest.raises(ValueError, match=None) as info:
        decode(text)
    assert named in str(info.value)


def test_error_names_the_block_position_and_role():
    with pytest.raises(ValueError, match=r"block 3 \(enc1b\)|block 3"):
        decode(_genotype_text("ib_k3_se0_res_c16_n1", scales=2, position=3))


def test_genotype_rejects_wrong_block_count():
    with pytest.raises(ValueError, match="has 5 blocks"):
        Genotype(1, (BlockSpec.decode(VALID_BLOCK),) * 4)


def test_genotype_is_frozen_and_hashable():
    genotype = decode(_genotype_text(VALID_BLOCK))
    with pytest.raises(AttributeError):
        genotype.scales = 2  # type: ignore[misc]
    assert {genotype: 1}[decode(genotype.encode())] == 1


def test_an_id_block_has_one_canonical_form_and_keeps_it_through_a_swap():
    block = BlockSpec.decode("id_k1_se0_nores_c24_n1")
    assert (block.op, block.channels, block.layers) == ("id", 24, 1)
    assert block.encode() == "id_k1_se0_nores_c24_n1"
    deep = BlockSpec("ds", 3, 0, True, 32, 3)
    # An id block has one layer whatever it is given.
    assert deep.with_operation(block.operation()) == BlockSpec("id", 1, 0, False, 32, 1)
    assert deep.with_operation(block.operation(), 3) == BlockSpec("id", 1, 0, False, 32, 1)
    assert block.with_operation(deep.operation()) == BlockSpec("ds", 3, 0, True, 24, 1)
    assert block.with_operation(deep.operation(), 3) == BlockSpec("ds", 3, 0, True, 24, 3)
