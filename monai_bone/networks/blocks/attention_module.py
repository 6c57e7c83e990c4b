"""Attention Module (AM) of the knee hybrid attention network: a small CNN with channel and spatial attention.

The knee osteoporosis paper (hybrid attention network, DenseNet169 + AM) gives: four 3x3 convolutions with 32, 32, 64
and 64 filters, ReLU and max pooling; channel attention from average- and max-pooled descriptors through a shared
MLP; spatial attention from the concatenated channel-wise average and maximum through a convolution; a 128-d output.
What it does not give, and what we chose (documented in :class:`AttentionModule`): one max pooling after every
convolution, the reduction ratio and spatial kernel as arguments, and global average pooling + linear 64 -> 128 + ReLU
to reach the 128-d vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import get_act_layer

__all__ = ["AttentionModule", "ChannelAttention", "SpatialAttention"]


class ChannelAttention(nn.Module):
    """Channel attention: ``x * sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))`` with one MLP shared by both descriptors.

    This is the channel branch of CBAM (Woo et al., 2018); MONAI's :class:`~monai.networks.blocks.ChannelSELayer`
    uses the average descriptor only.

    Args:
        spatial_dims: number of spatial dimensions, 1, 2 or 3.
        in_channels: number of input channels.
        reduction: reduction ratio of the shared MLP (hidden width ``in_channels // reduction``). Defaults to 8.
        act: activation of the hidden MLP layer. Defaults to ReLU.

    Raises:
        ValueError: when ``reduction`` is not positive or leaves no hidden unit (``in_channels // reduction < 1``).
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, reduction: int = 8, act: str | tuple = ("relu", {"inplace": True})
    ) -> None:
        super().__init__()
        if reduction <= 0 or in_channels // reduction < 1:
            raise ValueError(
                f"reduction must be positive and at most in_channels, got reduction={reduction}, "
                f"in_channels={in_channels}."
            )
        hidden = in_channels // reduction
        self.avg_pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.max_pool = Pool[Pool.ADAPTIVEMAX, spatial_dims](1)
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), get_act_layer(act), nn.Linear(hidden, in_channels))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Channel weights in (0, 1), shape ``(B, C)``."""
        b, c = x.shape[0], x.shape[1]
        avg = self.mlp(self.avg_pool(x).reshape(b, c))
        mx = self.mlp(self.max_pool(x).reshape(b, c))
        return torch.sigmoid(avg + mx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: ``(B, C, spatial...)``.

        Returns:
            ``x`` rescaled channel-wise, same shape.
        """
        w = self.weights(x)
        return x * w.reshape(w.shape + (1,) * (x.dim() - 2))


class SpatialAttention(nn.Module):
    """Spatial attention: ``x * sigmoid(conv([mean_c(x), max_c(x)]))`` (the spatial branch of CBAM).

    Args:
        spatial_dims: number of spatial dimensions, 1, 2 or 3.
        kernel_size: odd kernel size of the convolution over the two pooled maps. Defaults to 7.

    Raises:
        ValueError: when ``kernel_size`` is not a positive odd number (the map must keep the input size).
    """

    def __init__(self, spatial_dims: int, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}.")
        self.conv = Conv[Conv.CONV, spatial_dims](2, 1, kernel_size=kernel_size, padding=kernel_size // 2)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial weights in (0, 1), shape ``(B, 1, spatial...)``."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: ``(B, C, spatial...)``.

        Returns:
            ``x`` rescaled location-wise, same shape.
        """
        return x * self.weights(x)


class AttentionModule(nn.Module):
    """The knee paper's Attention Module (AM): conv stack -> channel attention -> spatial attention -> vector.

    Layout (``channels=(32, 32, 64, 64)``): four blocks ``conv 3x3 -> [norm] -> ReLU -> max-pool 2``, so the map is
    downsampled 16x (224 -> 14); then :class:`ChannelAttention` and :class:`SpatialAttention` in sequence (CBAM order);
    then global average pooling and ``Linear(64, out_features)`` + ReLU. The pooling after every convolution and
    the pool + linear output are our choices (the paper gives neither); the non-negative output matches the
    ReLU-then-pool DenseNet features it is concatenated with in :class:`~monai_bone.networks.HybridAttentionNet`.

    Note: MONAI has an unrelated ``monai.networks.nets.daf3d.AttentionModule``; in bundle configs name this one by its
    dotted path ``monai_bone.networks.AttentionModule``.

    Args:
        spatial_dims: number of spatial dimensions, 1, 2 or 3.
        in_channels: number of input image channels.
        out_features: length of the output vector. Defaults to 128 (the paper).
        channels: filters of the convolution blocks. Defaults to ``(32, 32, 64, 64)`` (the paper).
        reduction: reduction ratio of the channel-attention MLP. Defaults to 8.
        spatial_kernel: kernel size of the spatial-attention convolution. Defaults to 7.
        act: activation type and arguments. Defaults to ReLU.
        norm: optional feature normalisation after each convolution, e.g. ``"batch"``. Defaults to None (the paper
            mentions none).

    Raises:
        ValueError: when ``channels`` is empty or ``out_features`` is not positive; see also :class:`ChannelAttention`
            and :class:`SpatialAttention`.

    Example::

        am = AttentionModule(spatial_dims=2, in_channels=1)
        am(torch.rand(2, 1, 224, 224)).shape  # (2, 128)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_features: int = 128,
        channels: Sequence[int] = (32, 32, 64, 64),
        reduction: int = 8,
        spatial_kernel: int = 7,
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple | None = None,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("channels must name at least one convolution block.")
        if out_features < 1:
            raise ValueError(f"out_features must be positive, got {out_features}.")
        self.out_features = out_features
        pool = Pool[Pool.MAX, spatial_dims]
        blocks = []
        prev = in_channels
        for c in channels:
            blocks.append(Convolution(spatial_dims, prev, c, kernel_size=3, act=act, norm=norm, bias=norm is None))
            blocks.append(pool(kernel_size=2, stride=2))
            prev = c
        self.convs = nn.Sequential(*blocks)
        self.channel_attention = ChannelAttention(spatial_dims, prev, reduction=reduction, act=act)
        self.spatial_attention = SpatialAttention(spatial_dims, kernel_size=spatial_kernel)
        self.pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.fc = nn.Linear(prev, out_features)
        self.out_act = get_act_layer(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: image ``(B, in_channels, spatial...)``; each spatial size should be at least ``2 ** len(channels)``.

        Returns:
            ``(B, out_features)`` feature vector.
        """
        x = self.convs(x)
        x = self.channel_attention(x)
        x = self.spatial_attention(x)
        x = self.pool(x).flatten(1)
        return self.out_act(self.fc(x))
