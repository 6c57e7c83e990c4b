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
from .blocks.input_normalisation import InputNormalisation, channel_stats
from .bundle_weights import bundle_pretrained
from .finetune import backbone_parameters, param_groups, set_backbone_trainable, unwrap_network
from .nets import FUSIONS, IMAGE_ENCODERS, ClinicalFieldEncoder, DenseNet169Baseline, HybridAttentionNet, XAttnBMD
from .nets.foundation import RAD_DINO_CONFIG, RAD_DINO_REPO, RadDinoEncoder, fetch_rad_dino
from .pretrained import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRETRAINED_WEIGHTS,
    PretrainedWeights,
    PretrainedWeightsError,
    fetch_pretrained,
    pretrained_entry,
    resolve_pretrained,
    resolve_pretrained_setting,
)
from .weights import PretrainedLoadReport, load_pretrained, torchvision_densenet_key

__all__ = [
    "FUSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_ENCODERS",
    "PRETRAINED_WEIGHTS",
    "RAD_DINO_CONFIG",
    "RAD_DINO_REPO",
    "InputNormalisation",
    "PretrainedWeights",
    "PretrainedWeightsError",
    "RadDinoEncoder",
    "backbone_parameters",
    "bundle_pretrained",
    "channel_stats",
    "fetch_pretrained",
    "fetch_rad_dino",
    "param_groups",
    "pretrained_entry",
    "resolve_pretrained",
    "resolve_pretrained_setting",
    "set_backbone_trainable",
    "unwrap_network",
    "AttentionModule",
    "BidirectionalCrossAttention",
    "BidirectionalCrossAttentionLayer",
    "ChannelAttention",
    "ClinicalFieldEncoder",
    "DenseNet169Baseline",
    "HybridAttentionNet",
    "MaskedCrossAttentionBlock",
    "PretrainedLoadReport",
    "SpatialAttention",
    "XAttnBMD",
    "load_pretrained",
    "torchvision_densenet_key",
]
