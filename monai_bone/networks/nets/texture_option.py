"""The ``texture_features`` option of the knee networks: a texture descriptor of the input beside the CNN features.

:func:`texture_branch` builds ``TextureEnergy -> BatchNorm1d``: ``K`` learnable Gabor-initialised filter-bank log
energies of the per-image standardised input (:class:`~monai_bone.networks.blocks.TextureEnergy`; invariant to detector
gain and offset), standardised across the batch so the following linear layer sees them on the scale of the pooled
CNN features. :class:`~monai_bone.networks.HybridAttentionNet` and :class:`~monai_bone.networks.DenseNet169Baseline`
concatenate it to their pooled features before the head; ``texture_features=0`` (the default) adds nothing and keeps
the papers' architectures, parameter for parameter.

Why: trabecular texture (the spacing and connectivity of the trabecular network) is what carries bone density on a
radiograph once exposure is removed, and a randomly initialised DenseNet169 does not learn it from ~100 studies in a
dozen CPU epochs (SYNTHETIC knee cohort, measured in the knee model card); the descriptor starts as a band-pass bank
at the trabecular scales and is trained end to end with the rest of the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn
from monai.networks.layers.factories import Norm

from ..blocks.texture_energy import TextureEnergy

__all__ = ["TEXTURE_KERNEL", "TEXTURE_WAVELENGTHS", "texture_branch"]

#: Filter side (pixels) of the texture bank.
TEXTURE_KERNEL: int = 15
#: Gabor wavelengths (pixels per cycle) of the start bank: the synthetic trabecular spacing (1.4-3.2 mm) in a 50 mm
#: crop at 96-128 px spans about 2.7-8 px.
TEXTURE_WAVELENGTHS: tuple[float, ...] = (2.5, 4.0, 6.5, 10.0)


def texture_branch(
    spatial_dims: int,
    in_channels: int,
    features: int,
    kernel_size: int = TEXTURE_KERNEL,
    wavelengths: Sequence[float] = TEXTURE_WAVELENGTHS,
) -> nn.Module | None:
    """``TextureEnergy(K) -> BatchNorm1d(K)``, or ``None`` when ``features`` is 0.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        features: descriptor length ``K`` (0: no branch).
        kernel_size: filter side in pixels.
        wavelengths: Gabor wavelengths of the start bank (2D).

    Raises:
        ValueError: ``features`` is negative.
    """
    features = int(features)
    if features < 0:
        raise ValueError(f"texture_features must be >= 0, got {features}")
    if features == 0:
        return None
    return nn.Sequential(
        TextureEnergy(spatial_dims, in_channels, features, kernel_size, wavelengths),
        Norm[Norm.BATCH, 1](features),
    )
