"""monai-bone networks (bundle configs name them by dotted path, e.g. ``monai_bone.networks.XAttnBMD``).

The plain DenseNet169 baseline of the knee paper is MONAI's own
``monai.networks.nets.DenseNet169(spatial_dims=2, in_channels=..., out_channels=...)``; :func:`load_pretrained` loads
torchvision ImageNet weights into it as well.
"""

from __future__ import annotations

from .blocks import (
    AttentionModule,
    BidirectionalCrossAttention,
    BidirectionalCrossAttentionLayer,
    ChannelAttention,
    MaskedCrossAttentionBlock,
    SpatialAttention,
)
from .nets import FUSIONS, ClinicalFieldEncoder, HybridAttentionNet, XAttnBMD
from .weights import PretrainedLoadReport, load_pretrained, torchvision_densenet_key

__all__ = [
    "FUSIONS",
    "AttentionModule",
    "BidirectionalCrossAttention",
    "BidirectionalCrossAttentionLayer",
    "ChannelAttention",
    "ClinicalFieldEncoder",
    "HybridAttentionNet",
    "MaskedCrossAttentionBlock",
    "PretrainedLoadReport",
    "SpatialAttention",
    "XAttnBMD",
    "load_pretrained",
    "torchvision_densenet_key",
]
