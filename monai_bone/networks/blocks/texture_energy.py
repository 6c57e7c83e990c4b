"""Learnable filter-bank texture energies: what trabecular-texture analysis of radiographs measures, as a layer.

Bone texture on plain radiographs (fractal and spectral analysis of the trabecular pattern; the idea behind the
Trabecular Bone Score) is read from the *relative* power of the image at the scales of trabecular spacing, after the
exposure-dependent grey level has been removed. :class:`TextureEnergy` does that with a learnable filter bank:

``x -> per-image standardisation (zero mean, unit SD) -> K band-pass filters -> mean squared response -> log``

The standardisation makes the descriptor invariant to detector gain and offset (exposure, window), so only texture is
left; the log turns power ratios into differences a linear layer can use. The filters start as a Gabor bank (even
phase, zero mean, unit norm) spread over wavelengths and orientations, and are trained end to end with the network.
The ``valid`` convolution keeps border padding out of the energies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.layers.factories import Conv

__all__ = ["TextureEnergy", "gabor_bank"]


def _bank_layout(num_filters: int, num_scales: int) -> list[tuple[int, int, int]]:
    """``(scale index, orientation index, orientations at that scale)`` for each of ``num_filters`` filters."""
    per_scale = [num_filters // num_scales + (1 if s < num_filters % num_scales else 0) for s in range(num_scales)]
    return [(s, o, n) for s, n in enumerate(per_scale) for o in range(n)]


def gabor_bank(
    num_filters: int, kernel_size: int, wavelengths: Sequence[float] = (2.5, 4.0, 6.5, 10.0), aspect: float = 0.7
) -> torch.Tensor:
    """A ``(num_filters, kernel_size, kernel_size)`` bank of even Gabor filters, zero mean and unit L2 norm.

    Filters are spread evenly over ``wavelengths`` (pixels per cycle; the envelope's SD is 0.56 wavelengths, one
    octave of bandwidth) and, within a wavelength, over orientations in [0, pi).
    """
    half = (kernel_size - 1) / 2.0
    grid = torch.arange(kernel_size, dtype=torch.float64) - half
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    filters = []
    for scale, orient, n_orient in _bank_layout(num_filters, len(wavelengths)):
        lam, theta = float(wavelengths[scale]), math.pi * orient / n_orient
        xr = xx * math.cos(theta) + yy * math.sin(theta)
        yr = -xx * math.sin(theta) + yy * math.cos(theta)
        sigma = 0.56 * lam
        g = torch.exp(-(xr**2 + (aspect * yr) ** 2) / (2 * sigma**2)) * torch.cos(2 * math.pi * xr / lam)
        g = g - g.mean()
        filters.append(g / g.norm().clamp_min(1e-12))
    return torch.stack(filters).float()


class TextureEnergy(nn.Module):
    """Log energies of a learnable band-pass filter bank on the per-image standardised input.

    Args:
        spatial_dims: 2 (radiographs) or 3. Gabor start in 2D; random in 3D (zero mean, unit norm).
        in_channels: input channels; every filter sees all of them.
        out_features: number of filters ``K`` = length of the descriptor.
        kernel_size: filter side in pixels. Defaults to 15.
        wavelengths: Gabor wavelengths (pixels per cycle) of the start bank.
        eps: floor inside the log and (squared) under the variance.

    Shape: ``(B, C, *spatial) -> (B, K)``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_features: int = 32,
        kernel_size: int = 15,
        wavelengths: Sequence[float] = (2.5, 4.0, 6.5, 10.0),
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if out_features < 1 or kernel_size < 3:
            raise ValueError(f"need out_features >= 1 and kernel_size >= 3, got {out_features}, {kernel_size}.")
        self.eps = float(eps)
        self.out_features = int(out_features)
        self.filters = Conv[Conv.CONV, spatial_dims](in_channels, out_features, kernel_size, padding=0, bias=False)
        with torch.no_grad():
            if spatial_dims == 2:
                bank = gabor_bank(out_features, kernel_size, wavelengths)
                self.filters.weight.copy_(bank[:, None].expand_as(self.filters.weight) / math.sqrt(in_channels))
            else:
                w = self.filters.weight
                w.sub_(w.mean(dim=tuple(range(1, w.ndim)), keepdim=True))
                w.div_(w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (w.ndim - 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` → ``(B, K)`` log filter energies."""
        dims = list(range(1, x.ndim))
        x = x - x.mean(dim=dims, keepdim=True)
        x = x / torch.sqrt(x.pow(2).mean(dim=dims, keepdim=True) + self.eps**2)
        response = self.filters(x)
        energy = response.pow(2).flatten(2).mean(dim=2)
        return torch.log(energy + self.eps)
