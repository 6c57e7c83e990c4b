"""Losses of monai-bone."""

from __future__ import annotations

from .weighted_smooth_l1 import WeightedSmoothL1Loss

__all__ = ["WeightedSmoothL1Loss"]
