"""Losses of monai-bone."""

from __future__ import annotations

from .weighted_smooth_l1 import WeightedSmoothL1Loss, who_bins

__all__ = ["WeightedSmoothL1Loss", "who_bins"]
