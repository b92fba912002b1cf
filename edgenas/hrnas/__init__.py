"""HR-NAS (Ding et al., CVPR 2021): lightweight transformer, multi-branch supernet,
resource-aware progressive shrinking, extraction to a static network; `edgenas shrink`."""
