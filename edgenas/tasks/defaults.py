"""Defaults the commands fall back on when the user names nothing."""

from __future__ import annotations

# A fixed small 2-scale genotype (~93K parameters with the segmentation head, ~0.36 GMAC
# at 128x160): drawn once by `edgenas space sample --n 5 --seed 0 --scales 2` (4th
# line) and frozen here so that `--genotype` omitted means the same network everywhere.
DEFAULT_GENOTYPE = (
    "S2:micro_k5_se0_nores_c32_n3-ib3_k3_se0_nores_c32_n2-ib3_k5_se25_res_c8_n2-"
    "micro_k5_se25_nores_c8_n2-micro_k5_se0_nores_c64_n2-ds_k5_se0_res_c16_n1-"
    "ib3_k3_se0_nores_c8_n3-ds_k5_se25_res_c24_n1-ib3_k5_se0_nores_c32_n1-"
    "conv_k5_se25_res_c16_n3-ds_k5_se25_res_c8_n3-micro_k3_se25_res_c48_n3"
)

# Proxy input size (H, W) for depth / segmentation / classification on CPU.
PROXY_INPUT = (128, 160)
# Super-resolution LR training patch side.
SR_PATCH = 48
DEFAULT_SECONDS = 120.0
