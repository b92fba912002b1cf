"""Defaults the commands fall back on when the user names nothing.

The default genotypes were chosen by measurement (docs/tasks.md, "Choosing the
defaults"; benchmarks/bench_train_baselines.py): each trains to within reach of the
task's reference baselines in a few CPU minutes with the fast recipe.
"""

from __future__ import annotations


def _blocks(*specs: str) -> str:
    return "-".join(specs)


# Super-resolution: twelve plain residual 3x3 conv blocks of 16 channels (32.5K
# parameters at x2, ESPCN has 27K). Batch-normalised residual convs train fast, and at
# stride 1 every block sees the full LR resolution, which SR needs.
SR_GENOTYPE = "S2:" + _blocks(*["conv_k3_se0_res_c16_n1"] * 12)

# Its closest equivalent in the paper's SR layout (S<n>U:, LDP Sec. 3.3): the same eleven
# blocks at the LR resolution, then the searched upsample block up1 and the refine block
# ref0 at the HR resolution in place of ref1. The warm start of SR searches of that
# layout (docs/search-space.md compares the two, trained for the same time).
SR_PAPER_GENOTYPE = "S2U:" + _blocks(*["conv_k3_se0_res_c16_n1"] * 13)

# Depth, classification (and segmentation's fallback, in spaces without id blocks): a
# 4-scale encoder-decoder of separable blocks (`sep`, as in Xception; they were `ds`,
# MobileNet's, until a training step measured 1.46x faster with `sep` at the same
# inference cost and REL improved in 3 of 3 seeds: docs/search-space.md, "Separable
# blocks") widening 16 -> 32 -> 48 -> 64 towards the coarsest scale (1/16 of the input),
# about 65K parameters and 89M MACs at 180x240: the shape of a small hand-written
# U-Net, which the reference `unet` is.
DENSE_GENOTYPE = "S4:" + _blocks(
    # encoder: two blocks at 1/2, then (down, block, block) at 1/4, 1/8, 1/16
    "sep_k3_se0_nores_c16_n1", "sep_k3_se0_res_c16_n1",
    "sep_k3_se0_nores_c32_n1", "sep_k3_se0_res_c32_n1", "sep_k3_se0_res_c32_n1",
    "sep_k3_se0_nores_c48_n1", "sep_k3_se0_res_c48_n1", "sep_k3_se0_res_c48_n1",
    "sep_k3_se0_nores_c64_n1", "sep_k3_se0_res_c64_n1", "sep_k3_se0_res_c64_n1",
    # decoder, coarsest first: (dec a, dec b, refine, up) per scale, then scale 1
    "sep_k3_se0_res_c64_n1", "sep_k3_se0_res_c64_n1", "sep_k3_se0_res_c64_n1", "sep_k3_se0_nores_c48_n1",
    "sep_k3_se0_nores_c48_n1", "sep_k3_se0_res_c48_n1", "sep_k3_se0_res_c48_n1", "sep_k3_se0_nores_c32_n1",
    "sep_k3_se0_nores_c32_n1", "sep_k3_se0_res_c32_n1", "sep_k3_se0_res_c32_n1", "sep_k3_se0_nores_c16_n1",
    "sep_k3_se0_nores_c16_n1", "sep_k3_se0_res_c16_n1", "sep_k3_se0_res_c16_n1",
)  # fmt: skip

# Segmentation: DENSE_GENOTYPE with nine blocks made `id` (no layers: enc1b..enc4b,
# dec4a, dec4b, dec3b, dec2b, ref1) and each refine block narrowed to the width of the
# scale above, so that the upsample block resizes fewer channels; its layers are
# separable (`sep`, Xception's), which cost what `ds` costs at inference but train a
# step 1.4x faster (docs/search-space.md, "Separable blocks"). 37.1K parameters.
# Trained 300 s at 180x240 on CamVid's training images, scored on a held-out block of
# them (docs/search-space.md, "Blocks without layers"): mIoU 0.384 at 0.91x the U-Net's
# latency, against 0.354 at 1.34x for DENSE_GENOTYPE and 0.364 for the U-Net. For depth
# the same change trained faster but scored a little lower (REL 0.061 vs 0.059), so
# depth keeps DENSE_GENOTYPE.
SEG_GENOTYPE = "S4:" + _blocks(
    # encoder: (block, id) at 1/2, then (down, block, id) at 1/4, 1/8, 1/16
    "sep_k3_se0_nores_c16_n1", "id_k1_se0_nores_c16_n1",
    "sep_k3_se0_nores_c32_n1", "sep_k3_se0_res_c32_n1", "id_k1_se0_nores_c32_n1",
    "sep_k3_se0_nores_c48_n1", "sep_k3_se0_res_c48_n1", "id_k1_se0_nores_c48_n1",
    "sep_k3_se0_nores_c64_n1", "sep_k3_se0_res_c64_n1", "id_k1_se0_nores_c64_n1",
    # decoder, coarsest first: (dec a, dec b, refine, up) per scale, then scale 1
    "id_k1_se0_nores_c64_n1", "id_k1_se0_nores_c64_n1", "sep_k3_se0_nores_c48_n1", "sep_k3_se0_nores_c48_n1",
    "sep_k3_se0_nores_c48_n1", "id_k1_se0_nores_c48_n1", "sep_k3_se0_nores_c32_n1", "sep_k3_se0_nores_c32_n1",
    "sep_k3_se0_nores_c32_n1", "id_k1_se0_nores_c32_n1", "sep_k3_se0_nores_c16_n1", "sep_k3_se0_nores_c16_n1",
    "sep_k3_se0_nores_c16_n1", "sep_k3_se0_res_c16_n1", "id_k1_se0_nores_c16_n1",
)  # fmt: skip

DEFAULT_GENOTYPES = {
    "depth": DENSE_GENOTYPE,
    "segmentation": SEG_GENOTYPE,
    "sr": SR_GENOTYPE,
    "classification": DENSE_GENOTYPE,
}

# The genotype of the first edgenas releases (a random 2-scale sample, 0.36 GMAC at
# 128x160); kept for scripts that name it. It trains poorly in minutes.
DEFAULT_GENOTYPE = (
    "S2:micro_k5_se0_nores_c32_n3-ib3_k3_se0_nores_c32_n2-ib3_k5_se25_res_c8_n2-"
    "micro_k5_se25_nores_c8_n2-micro_k5_se0_nores_c64_n2-ds_k5_se0_res_c16_n1-"
    "ib3_k3_se0_nores_c8_n3-ds_k5_se25_res_c24_n1-ib3_k5_se0_nores_c32_n1-"
    "conv_k5_se25_res_c16_n3-ds_k5_se25_res_c8_n3-micro_k3_se25_res_c48_n3"
)

DEFAULT_SECONDS = 120.0


def default_genotype(task: str) -> str:
    """The genotype `edgenas train` uses for ``task`` when none is given."""
    from edgenas.models.builder import canonical_task

    return DEFAULT_GENOTYPES[canonical_task(task)]
