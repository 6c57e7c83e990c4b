"""The texture token of XAttn-BMD: a :class:`~monai_bone.networks.blocks.TextureEnergy` descriptor of the (ROI) input
as one extra image token (``XAttnBMD(texture_features=K)``).

Why: on the realistic synthetic hip cohort the BMD signal of a femoral-neck crop sits in the relative power of the
trabecular texture (a ridge on 16 band energies of the crop reaches R² 0.714, ``benchmarks/bench_roi_texture.py``),
which a ResNet34 trained from scratch for a dozen CPU epochs does not pick up. The descriptor hands the fusion that
signal directly; the filters stay learnable.

``image -> TextureEnergy (K log energies) -> batch-standardised (running statistics when a training batch has a single
study) -> Linear(K, d) -> + learned token embedding``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..blocks.texture_energy import TextureEnergy

__all__ = ["TextureToken"]


class TextureToken(nn.Module):
    """One ``(B, 1, d)`` token from the texture energies of the image, and the standardised energies themselves.

    Args:
        spatial_dims: 2 (radiographs).
        in_channels: image channels.
        hidden_size: token width ``d``.
        num_features: filters ``K`` of the :class:`~monai_bone.networks.blocks.TextureEnergy` bank.
        kernel_size: filter side in pixels.
        momentum: momentum of the running statistics of the standardisation.

    Shape: ``(B, C, H, W) -> ((B, 1, d), (B, K))``; H and W at least ``kernel_size``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        hidden_size: int,
        num_features: int = 16,
        kernel_size: int = 15,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        self.energy = TextureEnergy(spatial_dims, in_channels, num_features, kernel_size)
        self.momentum = float(momentum)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.norm_weight = nn.Parameter(torch.ones(num_features))
        self.norm_bias = nn.Parameter(torch.zeros(num_features))
        #: True keeps the running statistics in training too (a linear-probe start fixed them on the training data)
        self.fixed_stats = False
        self.proj = nn.Linear(num_features, hidden_size)
        self.embedding = nn.Parameter(torch.randn(1, 1, hidden_size) * 0.02)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The token ``(B, 1, d)`` and the standardised energies ``(B, K)``."""
        e = self.energy(image)
        # batch statistics in training (a batch of one study cannot give a variance: running statistics then)
        batch_stats = self.training and not self.fixed_stats and e.shape[0] > 1
        z = F.batch_norm(
            e, self.running_mean, self.running_var, self.norm_weight, self.norm_bias, batch_stats, self.momentum, 1e-5
        )
        return self.proj(z).unsqueeze(1) + self.embedding, z
