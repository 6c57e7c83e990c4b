"""Where an ROI-mode network input came from, and a heat map on the input put back there.

With ``roi_size_mm`` set the network sees only a window of the radiograph (:class:`~monai_bone.transforms.roi.RoiCrop`
records it in the image meta as ``roi_box = (row0, col0, height, width)`` in source pixels). Anything drawn from the
network input -- the Grad-CAM overlay PNG (:class:`~monai_bone.handlers.GradCamSaver`), the heat-map Secondary Capture
and the SR's region (:mod:`monai_bone.results`) -- must be placed on that window, not stretched over the whole image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["place_in_window", "resize_map", "roi_box_of"]


def roi_box_of(item: Mapping[str, Any], image_key: str = "image") -> tuple[int, int, int, int] | None:
    """The ROI window ``(row0, col0, height, width)`` (source pixels) an item's network input was cropped from.

    Returns:
        The window, or ``None`` when the input is the whole image (no ``roi_box`` in the image meta).

    Raises:
        ValueError: a ``roi_box`` that is not four finite numbers with a positive height and width.
    """
    meta = getattr(item.get(image_key), "meta", None) or {}
    box = meta.get("roi_box")
    if box is None:
        return None
    values = np.asarray(box.cpu() if isinstance(box, torch.Tensor) else box, dtype=np.float64).ravel()
    if values.shape != (4,) or not np.all(np.isfinite(values)) or values[2] < 1 or values[3] < 1:
        raise ValueError(f"roi_box {values.tolist()} is not (row0, col0, height, width)")
    r0, c0, h, w = (int(v) for v in values)
    return r0, c0, h, w


def resize_map(heat: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Bilinear resize of a 2-D map to ``shape`` (``(rows, cols)``)."""
    inner = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float32))[None, None]
    size = (int(shape[0]), int(shape[1]))
    return torch.nn.functional.interpolate(inner, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def place_in_window(heat: np.ndarray, source_shape: Sequence[int], box: Sequence[int]) -> np.ndarray:
    """A map of the network input (an ROI crop) on the source grid: resized to the window ``box`` and put there.

    Outside the window the map is zero (the network saw nothing there); the part of the window beyond the image
    (zero-padded by the crop) is dropped.

    Args:
        heat: 2-D map on the crop.
        source_shape: ``(rows, cols)`` of the source image.
        box: ``(row0, col0, height, width)`` of the window in source pixels.
    """
    rows, cols = int(source_shape[0]), int(source_shape[1])
    r0, c0, h, w = (int(v) for v in box)
    window = resize_map(heat, (h, w))
    out = np.zeros((rows, cols), dtype=np.float32)
    rs, re, cs, ce = max(r0, 0), min(r0 + h, rows), max(c0, 0), min(c0 + w, cols)
    if rs < re and cs < ce:
        out[rs:re, cs:ce] = window[rs - r0 : re - r0, cs - c0 : ce - c0]
    return out
