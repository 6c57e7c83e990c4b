"""Hybrid attention network for knee osteoporosis classification: DenseNet169 features + Attention Module + MLP head."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import ADN
from monai.networks.layers.factories import Pool
from monai.networks.layers.utils import get_act_layer
from monai.networks.nets import DenseNet169

from ..blocks.attention_module import AttentionModule
from ..blocks.input_normalisation import InputNormalisation
from ..pretrained import pretrained_entry, resolve_pretrained, resolve_pretrained_setting
from .texture_option import texture_branch

__all__ = ["HybridAttentionNet"]

DENSENET169_FEATURES = 1664


class HybridAttentionNet(nn.Module):
    """Hybrid attention network of the knee osteoporosis paper.

    ``image -> [DenseNet169 features -> ReLU -> global average pool (1664)] || [AttentionModule (128)] -> 1792
    -> 1024 -> 512 -> 256 -> 128 -> out_channels`` (logits). Each hidden head layer is ``Linear -> BatchNorm -> ReLU ->
    Dropout`` with dropout 0.5, 0.3, 0.2, 0.1. The DenseNet169 part is ``monai.networks.nets.DenseNet169(...).features``
    (its key layout, so torchvision ImageNet weights load with :func:`~monai_bone.networks.load_pretrained`); the
    Attention Module is :class:`~monai_bone.networks.AttentionModule` (layout documented there, partly our choice).

    Use ``out_channels=1`` with ``BCEWithLogitsLoss`` (sigmoid gives the osteoporosis probability) and
    ``out_channels=3`` with ``CrossEntropyLoss`` for normal / osteopenia / osteoporosis. The BatchNorm layers of the
    head need more than one sample per batch in training mode (as any BatchNorm); evaluation mode takes batch 1.

    Parameters with the defaults (``in_channels=1``, ``out_channels=1``): 15,081,740 = DenseNet169 features
    12,478,208 + Attention Module 74,507 + head 2,529,025 (checked in ``tests/networks/test_hybrid_attention.py``).

    With ``texture_features=K > 0`` (our addition, off by default) a texture descriptor of the input
    (:func:`~monai_bone.networks.nets.texture_option.texture_branch`: ``K`` learnable filter-bank log energies, batch
    normalised) joins the concatenation, so the head input is ``1792 + K``. The knee bundle uses it with the ROI input
    (reason and measurements in the knee model card).

    Export: ``torch.jit.script`` and ``torch.onnx.export`` reproduce the eager outputs (an ONNX graph is specialised to
    the export input size).

    Args:
        spatial_dims: number of spatial dimensions (2 for radiographs; 3 works as MONAI's DenseNet does).
        in_channels: image channels (1 for grey radiographs, 3 with ``RepeatChannel`` for ImageNet weights).
        out_channels: number of logits.
        am_channels: filters of the Attention Module convolutions. Defaults to ``(32, 32, 64, 64)``.
        am_features: length of the Attention Module vector. Defaults to 128.
        am_reduction: channel-attention reduction ratio. Defaults to 8.
        am_spatial_kernel: spatial-attention kernel size. Defaults to 7.
        head_channels: hidden widths of the head. Defaults to ``(1024, 512, 256, 128)``.
        head_dropout: dropout after each hidden head layer (same length as ``head_channels``).
            Defaults to ``(0.5, 0.3, 0.2, 0.1)``.
        act: activation type and arguments (DenseNet, AM and head). Defaults to ReLU.
        norm: normalisation of DenseNet and head. Defaults to batch norm.
        pretrained_path: optional local torchvision ``densenet169`` state dict loaded into the DenseNet features
            (see :func:`~monai_bone.networks.load_pretrained`); wins over ``pretrained``.
        pretrained: DenseNet169 initialisation: None (random, the default), ``"imagenet"`` (torchvision's file
            through :mod:`monai_bone.networks.pretrained`: registry, torch.hub cache, sha256) or a local file.
        pretrained_registry: overrides of the weights registry (hospital mirror), see
            :func:`~monai_bone.networks.pretrained_entry`.
        input_norm: input normalisation, the network's first step (persistent buffers, saved in checkpoints and
            exports): ``"auto"`` = ImageNet mean/SD (adapted to ``in_channels``) when pretrained, identity otherwise;
            None; ``"imagenet"``; ``{"mean", "std"}``. Both the DenseNet and the Attention Module see the
            normalised image.
        texture_features: length of the texture descriptor concatenated to the head input (0: none, the paper's
            network).

    Raises:
        ValueError: when ``head_dropout`` and ``head_channels`` differ in length or a dropout is outside [0, 1);
            see also :func:`~monai_bone.networks.load_pretrained`.

    Example::

        net = HybridAttentionNet(spatial_dims=2, in_channels=1, out_channels=1).eval()
        logits = net(torch.rand(4, 1, 224, 224))  # (4, 1)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        am_channels: Sequence[int] = (32, 32, 64, 64),
        am_features: int = 128,
        am_reduction: int = 8,
        am_spatial_kernel: int = 7,
        head_channels: Sequence[int] = (1024, 512, 256, 128),
        head_dropout: Sequence[float] = (0.5, 0.3, 0.2, 0.1),
        act: str | tuple = ("relu", {"inplace": True}),
        norm: str | tuple = "batch",
        pretrained_path: str | os.PathLike | None = None,
        pretrained: str | os.PathLike | None = None,
        pretrained_registry: dict | None = None,
        input_norm: str | dict | None = "auto",
        texture_features: int = 0,
    ) -> None:
        super().__init__()
        head_channels = [int(c) for c in head_channels]
        head_dropout = [float(p) for p in head_dropout]
        if len(head_channels) != len(head_dropout):
            raise ValueError(
                f"head_dropout needs one value per head layer: {len(head_dropout)} values for "
                f"{len(head_channels)} layers."
            )
        if any(not 0.0 <= p < 1.0 for p in head_dropout):
            raise ValueError(f"head_dropout values must be in [0, 1), got {head_dropout}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels

        self.features = DenseNet169(spatial_dims, in_channels, out_channels=1, act=act, norm=norm).features
        self.feature_pool = nn.Sequential(get_act_layer(act), Pool[Pool.ADAPTIVEAVG, spatial_dims](1), nn.Flatten(1))
        self.attention_module = AttentionModule(
            spatial_dims,
            in_channels,
            out_features=am_features,
            channels=am_channels,
            reduction=am_reduction,
            spatial_kernel=am_spatial_kernel,
            act=act,
        )
        self.texture = texture_branch(spatial_dims, in_channels, texture_features)
        self.texture_features = int(texture_features)
        layers: list[nn.Module] = []
        prev = DENSENET169_FEATURES + am_features + self.texture_features
        for width, p in zip(head_channels, head_dropout):
            layers.append(nn.Linear(prev, width))
            layers.append(
                ADN(ordering="NAD", in_channels=width, act=act, norm=norm, norm_dim=1, dropout=p, dropout_dim=1)
            )
            prev = width
        layers.append(nn.Linear(prev, out_channels))
        self.head = nn.Sequential(*layers)

        weights = resolve_pretrained_setting(pretrained_path if pretrained_path is not None else pretrained)
        norm_default = None
        if weights is not None:
            from ..weights import load_pretrained

            load_pretrained(self, resolve_pretrained(weights, "densenet169", pretrained_registry))
            entry = pretrained_entry("densenet169", pretrained_registry)
            norm_default = {"mean": entry.mean, "std": entry.std}
        self.input_norm = InputNormalisation.from_setting(input_norm, in_channels, norm_default)

    def pretrained_backbone(self) -> tuple[nn.Module, str]:
        """The module torchvision DenseNet weights go into, for :func:`~monai_bone.networks.load_pretrained`."""
        return self.features, "densenet"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: image ``(B, in_channels, H, W)``; H and W at least 32.

        Returns:
            logits ``(B, out_channels)``.
        """
        x = self.input_norm(x)
        dense = self.feature_pool(self.features(x))
        am = self.attention_module(x)
        if self.texture is not None:
            return self.head(torch.cat([dense, am, self.texture(x)], dim=1))
        return self.head(torch.cat([dense, am], dim=1))
