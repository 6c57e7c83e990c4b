"""torchvision-layout state dicts made from MONAI networks (torchvision itself is not imported by these tests)."""

from __future__ import annotations

import re

import torch
from monai.networks.nets import DenseNet169, resnet34


def monai_to_torchvision_densenet(state, legacy=False):
    """Inverse of MONAI's key remapping: ``...denselayer1.layers.norm1.weight`` -> ``...denselayer1.norm1.weight``
    (``norm.1`` in the legacy layout of the published torchvision files); ``class_layers.out`` -> ``classifier``."""
    out = {}
    for key, value in state.items():
        if key.startswith("class_layers.out."):
            key = key.replace("class_layers.out.", "classifier.")
        key = re.sub(r"\.layers\.(norm|relu|conv)([12])\.", (r".\1.\2." if legacy else r".\1\2."), key)
        if legacy and key.endswith("num_batches_tracked"):
            continue  # the 2017 torchvision files predate these counters
        out[key] = value
    return out


def torchvision_resnet34(seed: int = 1) -> torch.nn.Module:
    """A randomly initialised MONAI ResNet34 whose state dict has torchvision's ``resnet34`` keys and shapes."""
    torch.manual_seed(seed)
    net = resnet34(spatial_dims=2, n_input_channels=3, conv1_t_stride=2, bias_downsample=False, num_classes=1000)
    return net.eval()


def torchvision_densenet169(seed: int = 0) -> torch.nn.Module:
    """A randomly initialised MONAI DenseNet169 (3 channels, 1000 classes) with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    net = DenseNet169(spatial_dims=2, in_channels=3, out_channels=1000).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net
