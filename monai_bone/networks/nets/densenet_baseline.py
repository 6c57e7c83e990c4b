"""The knee paper's plain DenseNet169 baseline with the same transfer-learning options as the hybrid network."""

from __future__ import annotations

import os

import torch
import torch.nn as nn
from monai.networks.nets import DenseNet169

from ..blocks.input_normalisation import InputNormalisation
from ..pretrained import pretrained_entry, resolve_pretrained, resolve_pretrained_setting
from .texture_option import texture_branch

__all__ = ["DenseNet169Baseline"]


class DenseNet169Baseline(nn.Module):
    """MONAI ``DenseNet169`` (``self.net``) behind an :class:`InputNormalisation`, initialised like
    :class:`~monai_bone.networks.HybridAttentionNet`, so a baseline row compares architectures, not initialisations.

    Args:
        spatial_dims, in_channels, out_channels: as ``monai.networks.nets.DenseNet169``.
        pretrained: None (random), ``"imagenet"`` (registry, torch.hub cache, sha256) or a local torchvision file.
        pretrained_registry: registry overrides, see :func:`~monai_bone.networks.pretrained_entry`.
        input_norm: as :class:`~monai_bone.networks.HybridAttentionNet` (``"auto"``: ImageNet statistics when
            pretrained).
        texture_features: as :class:`~monai_bone.networks.HybridAttentionNet`: a texture descriptor of this length
            joins the pooled 1664 DenseNet features before the classifier (0: MONAI's DenseNet169 unchanged), so the
            knee pair compares the attention module and head, not the texture input.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        pretrained: str | os.PathLike | None = None,
        pretrained_registry: dict | None = None,
        input_norm: str | dict | None = "auto",
        texture_features: int = 0,
    ) -> None:
        super().__init__()
        self.net = DenseNet169(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels)
        self.texture = texture_branch(spatial_dims, in_channels, texture_features)
        if self.texture is not None:  # MONAI's classifier (class_layers.out) widened by the descriptor
            out = self.net.class_layers.out
            self.net.class_layers.out = nn.Linear(out.in_features + int(texture_features), out.out_features)
        weights = resolve_pretrained_setting(pretrained)
        default = None
        if weights is not None:
            from ..weights import load_pretrained

            load_pretrained(self.net, resolve_pretrained(weights, "densenet169", pretrained_registry))
            entry = pretrained_entry("densenet169", pretrained_registry)
            default = {"mean": entry.mean, "std": entry.std}
        self.input_norm = InputNormalisation.from_setting(input_norm, in_channels, default)

    def pretrained_backbone(self) -> tuple[nn.Module, str]:
        """The DenseNet ``features`` (what ImageNet weights load into and what freezing freezes)."""
        return self.net.features, "densenet"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x)
        if self.texture is None:
            return self.net(x)
        layers = self.net.class_layers
        pooled = layers.flatten(layers.pool(layers.relu(self.net.features(x))))
        return layers.out(torch.cat([pooled, self.texture(x)], dim=1))
