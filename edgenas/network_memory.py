"""Will a network of a genotype fit in this machine's memory? Checked before it is built.

A genotype can describe a network of any size (4096 channels in every block of 16
layers is grammatical), and an input can be of any size: both are refused in one line
while nothing is allocated yet, with rough, generous estimates that catch only what
cannot work. Used by the commands that build genotype networks and by the bench gate.
"""

from __future__ import annotations

from edgenas.errors import UserError
from edgenas.parsing import BYTES_PER_PIXEL, check_input_fits, physical_memory_bytes

# The most memory a network's parameters may claim, as a share of the machine's: beyond
# it a run would swap or be killed long after it started.
MEMORY_SHARE = 0.5

# Bytes one parameter ends up costing: float32 weights, their gradients and two Adam
# moments in training; the PyTorch module, the ONNX file and onnxruntime's copy in
# export. Deliberately rough: it only has to catch networks that cannot work.
BYTES_PER_PARAMETER = 16


def activation_bytes_per_pixel(genotype, classes: int | None = None) -> int:
    """Bytes of live activations per input pixel for ``genotype``'s network (rough).

    :data:`edgenas.parsing.BYTES_PER_PIXEL` assumes at most 64 channels at full
    resolution; a wider block (an inverted bottleneck's hidden width counts) raises it
    in proportion, weighted by the share of the input's pixels its scale computes on,
    and so does a segmentation output of many classes. The output-resolution blocks of
    the super-resolution upsample layout (``S<n>U:``) count at the largest SR factor,
    x4: 16 times the input's pixels.
    """
    from edgenas.space.genotype import role_area

    per_channel = BYTES_PER_PIXEL // 64
    widest = max(
        block.channels * block.expansion * role_area(role, upscale=4)
        for role, block in zip(genotype.roles, genotype.blocks, strict=True)
    )
    return int(per_channel * max(64, widest, classes or 0))


def check_genotype_fits(
    genotype, input_shape=None, *, option: str = "--input", classes: int | None = None
) -> None:
    """Refuse a network, or an input size for it, that cannot fit in this machine's memory.

    The parameters are counted on PyTorch's meta device (no memory is allocated) and
    refused beyond :data:`MEMORY_SHARE` of the physical memory at
    :data:`BYTES_PER_PARAMETER`; ``input_shape`` (NCHW) goes through
    :func:`edgenas.parsing.check_input_fits` with this network's activation width.
    ``genotype`` None (a reference model): only the input is checked, at the default
    width.
    """
    if input_shape is not None:
        per_pixel = (
            BYTES_PER_PIXEL if genotype is None else activation_bytes_per_pixel(genotype, classes)
        )
        check_input_fits(input_shape, option, bytes_per_pixel=per_pixel)
    memory = physical_memory_bytes()
    if genotype is None or memory is None:
        return
    params = _backbone_params(genotype)
    needed = params * BYTES_PER_PARAMETER
    if needed > MEMORY_SHARE * memory:
        raise UserError(
            f"the network of this genotype has {params / 1e6:,.0f} M parameters, about "
            f"{needed / 2**30:,.0f} GiB to build and use, more than this machine can give "
            f"({memory / 2**30:.0f} GiB); use fewer channels or layers"
        )


def _backbone_params(genotype) -> int:
    """Parameters of the genotype's backbone, counted on the meta device (nothing is
    allocated). The task heads (a convolution or two from the backbone's output width)
    are left out: building a whole model also initialises its weights, and the first
    normal-distribution fill on the meta device costs seconds."""
    import torch

    from edgenas.models.ldp import LDPBackbone

    with torch.device("meta"):
        backbone = LDPBackbone(genotype)
    return sum(p.numel() for p in backbone.parameters())
