"""A small heat-map landmark network: where is the femoral neck / knee joint centre in a radiograph?

Ours (neither paper has a localisation stage; the field's ROI pipelines do): a four-stage convolutional encoder
(stride 2 each, MONAI ``Convolution`` blocks with batch norm and ReLU), a two-step decoder with skip connections back
to 1/4 of the input resolution, one heat-map per landmark, and a spatial soft-argmax (DSNT-style) that turns each
heat map into a sub-pixel ``(row, col)`` in normalised coordinates ``[0, 1]`` (0 = first pixel centre's edge, 1 = the
far edge). Trained with an L1 loss on those coordinates it needs no Gaussian targets, and the output is
differentiable, small (~0.3 M parameters) and fast on a CPU at 128 x 128 inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution

__all__ = ["LandmarkNet", "soft_argmax_2d"]


def soft_argmax_2d(logits: torch.Tensor) -> torch.Tensor:
    """Expected ``(row, col)`` of each heat map under its spatial softmax, in ``[0, 1]`` image coordinates.

    Args:
        logits: ``(B, K, H, W)`` heat-map logits.

    Returns:
        ``(B, K, 2)``: row then column, as fractions of the image height and width (pixel centres at
        ``(i + 0.5) / H``).
    """
    b, k, h, w = logits.shape
    prob = torch.softmax(logits.reshape(b, k, h * w).float(), dim=-1).reshape(b, k, h, w)
    rows = (torch.arange(h, device=logits.device, dtype=prob.dtype) + 0.5) / h
    cols = (torch.arange(w, device=logits.device, dtype=prob.dtype) + 0.5) / w
    return torch.stack(((prob.sum(-1) * rows).sum(-1), (prob.sum(-2) * cols).sum(-1)), dim=-1)


class LandmarkNet(nn.Module):
    """Heat-map landmark localiser with a soft-argmax readout.

    Args:
        spatial_dims: must be 2 (radiographs).
        in_channels: image channels.
        out_channels: number of landmarks ``K``.
        channels: encoder widths of the four stride-2 stages.

    ``forward(image)`` returns ``(B, K, 2)`` normalised ``(row, col)`` coordinates; :meth:`heatmaps` the logits
    ``(B, K, H/4, W/4)``. Input sides must be multiples of 16.

    Raises:
        ValueError: for ``spatial_dims != 2`` or a ``channels`` sequence that is not four positive numbers.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 96),
    ) -> None:
        super().__init__()
        if spatial_dims != 2:
            raise ValueError(f"LandmarkNet supports spatial_dims=2 only, got {spatial_dims}.")
        ch = tuple(int(c) for c in channels)
        if len(ch) != 4 or min(ch) < 1:
            raise ValueError(f"channels must be four positive widths, got {channels!r}.")

        def conv(cin: int, cout: int, strides: int = 1) -> Convolution:
            return Convolution(2, cin, cout, strides=strides, kernel_size=3, act="RELU", norm="BATCH")

        self.encoder = nn.ModuleList()
        prev = in_channels
        for c in ch:
            self.encoder.append(nn.Sequential(conv(prev, c, strides=2), conv(c, c)))
            prev = c
        self.up3 = conv(ch[3] + ch[2], ch[2])
        self.up2 = conv(ch[2] + ch[1], ch[1])
        self.head = nn.Conv2d(ch[1], out_channels, kernel_size=1)

    def heatmaps(self, image: torch.Tensor) -> torch.Tensor:
        """Heat-map logits ``(B, K, H/4, W/4)``."""
        skips = []
        x = image
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = F.interpolate(x, size=skips[2].shape[-2:], mode="bilinear", align_corners=False)
        x = self.up3(torch.cat((x, skips[2]), dim=1))
        x = F.interpolate(x, size=skips[1].shape[-2:], mode="bilinear", align_corners=False)
        x = self.up2(torch.cat((x, skips[1]), dim=1))
        return self.head(x)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Normalised landmark coordinates ``(B, K, 2)`` (row, col in ``[0, 1]``)."""
        return soft_argmax_2d(self.heatmaps(image))
