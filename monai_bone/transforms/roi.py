"""Region-of-interest crops of a fixed physical size around a landmark (array and dictionary versions).

Bone density shows in the trabecular texture and cortical geometry of a small region (the femoral neck, the proximal
tibia / distal femur); a whole radiograph resized to a CPU-friendly size blurs that texture away. :class:`RoiCrop`
cuts a square of ``size_mm`` millimetres (from the image's PixelSpacing) centred on a landmark out of the image at its
loaded resolution and resamples it to ``spatial_size`` pixels (bilinear with anti-aliasing), so the encoder sees the
region at a known physical resolution (``size_mm / spatial_size`` mm per pixel) whatever the detector.

The landmark comes from a dictionary key: a ``(row, col)`` pair in pixels of the loaded image, written either by the
datalist (ground truth, e.g. the synthetic generator's ``roi_row``/``roi_col``) or by
:class:`monai_bone.transforms.localise.LocateRoid` (a trained landmark network).

Typical chain::

    Compose([
        LoadXrayd("image"),
        XrayNormalised("image"),
        LocateRoid("image", localiser="models/localiser.pt"),      # writes "roi" = (row, col)
        RoiCropd("image", centre_key="roi", size_mm=40.0, spatial_size=128),
    ])
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms.transform import MapTransform, Transform
from monai.utils import TransformBackends

__all__ = ["RoiCrop", "RoiCropD", "RoiCropDict", "RoiCropd", "image_spacing_mm", "roi_box"]


def image_spacing_mm(img: Any, fallback_mm: float | None = None) -> tuple[float, float]:
    """(row, col) pixel spacing in mm of a loaded radiograph, from its PixelSpacing or ImagerPixelSpacing meta.

    Args:
        img: a :class:`~monai.data.MetaTensor` from :class:`monai_bone.transforms.LoadXray` (or any tensor).
        fallback_mm: spacing to assume when the image has none (PNG/JPEG folders); ``None`` raises instead.

    Raises:
        ValueError: the image carries no usable spacing and no fallback is given (names the file).
    """
    meta = getattr(img, "meta", {}) or {}
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = np.asarray(meta.get(key, (np.nan, np.nan)), dtype=np.float64).ravel()
        if pair.shape == (2,) and np.all(np.isfinite(pair)) and np.all(pair > 0):
            return float(pair[0]), float(pair[1])
    if fallback_mm is not None and fallback_mm > 0:
        return float(fallback_mm), float(fallback_mm)
    name = meta.get("filename_or_obj", "<array>")
    raise ValueError(
        f"{name}: no PixelSpacing/ImagerPixelSpacing, so a crop of fixed physical size cannot be placed "
        "(set fallback_spacing_mm for image folders without spacing)"
    )


def roi_box(
    centre: Sequence[float], spacing_mm: Sequence[float], size_mm: float | Sequence[float]
) -> tuple[int, int, int, int]:
    """The crop window ``(row0, col0, height, width)`` in image pixels for a square of ``size_mm`` around ``centre``.

    The window may extend beyond the image (the crop pads with zeros there).
    """
    sizes = (float(size_mm), float(size_mm)) if np.isscalar(size_mm) else tuple(float(s) for s in size_mm)
    h = max(1, int(round(sizes[0] / float(spacing_mm[0]))))
    w = max(1, int(round(sizes[1] / float(spacing_mm[1]))))
    r0 = int(math.floor(float(centre[0]) - (h - 1) / 2.0 + 0.5))
    c0 = int(math.floor(float(centre[1]) - (w - 1) / 2.0 + 0.5))
    return r0, c0, h, w


def _crop_padded(x: torch.Tensor, r0: int, c0: int, h: int, w: int) -> torch.Tensor:
    """``x[:, r0:r0+h, c0:c0+w]`` with zeros where the window leaves the image."""
    rows, cols = x.shape[-2:]
    out = x.new_zeros((x.shape[0], h, w))
    rs, re = max(r0, 0), min(r0 + h, rows)
    cs, ce = max(c0, 0), min(c0 + w, cols)
    if rs < re and cs < ce:
        out[:, rs - r0 : re - r0, cs - c0 : ce - c0] = x[:, rs:re, cs:ce]
    return out


class RoiCrop(Transform):
    """Crop a square of fixed physical size around a landmark and resample it to a fixed pixel size.

    Args:
        size_mm: side of the region in millimetres (a number, or ``(rows mm, cols mm)``).
        spatial_size: output side in pixels (a number, or ``(rows, cols)``).
        fallback_spacing_mm: spacing assumed for images without PixelSpacing (``None``: such images raise).

    The output is a :class:`~monai.data.MetaTensor` ``(C, *spatial_size)`` whose meta is the input's with
    ``spacing``/``PixelSpacing`` set to the crop's pixel size, ``roi_box`` = the window ``(row0, col0, height,
    width)`` in input pixels (for drawing the region on the source image) and ``roi_centre`` = the landmark.

    Raises:
        ValueError: for invalid arguments, a non-finite landmark, or an image without spacing and no fallback.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        size_mm: float | Sequence[float],
        spatial_size: int | Sequence[int],
        fallback_spacing_mm: float | None = None,
    ) -> None:
        sizes = (size_mm, size_mm) if np.isscalar(size_mm) else tuple(size_mm)
        shape = (spatial_size, spatial_size) if np.isscalar(spatial_size) else tuple(spatial_size)
        if len(sizes) != 2 or not all(float(s) > 0 for s in sizes):
            raise ValueError(f"size_mm must be positive (one number or a pair), got {size_mm!r}")
        if len(shape) != 2 or not all(int(s) >= 1 for s in shape):
            raise ValueError(f"spatial_size must be >= 1 (one number or a pair), got {spatial_size!r}")
        self.size_mm = (float(sizes[0]), float(sizes[1]))
        self.spatial_size = (int(shape[0]), int(shape[1]))
        self.fallback_spacing_mm = fallback_spacing_mm

    def __call__(self, img: torch.Tensor, centre: Sequence[float]) -> MetaTensor:
        """Crop ``img`` ``(C, H, W)`` around ``centre`` = ``(row, col)`` in pixels."""
        centre = [float(v) for v in np.asarray(centre, dtype=np.float64).ravel()]
        meta = dict(getattr(img, "meta", {}) or {})
        if len(centre) != 2 or not all(math.isfinite(v) for v in centre):
            raise ValueError(f"{meta.get('filename_or_obj', '<array>')}: ROI centre must be finite (row, col)")
        spacing = image_spacing_mm(img, self.fallback_spacing_mm)
        r0, c0, h, w = roi_box(centre, spacing, self.size_mm)
        x = torch.as_tensor(img).as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
        crop = _crop_padded(x.float(), r0, c0, h, w)
        if (h, w) != self.spatial_size:
            crop = F.interpolate(crop[None], size=self.spatial_size, mode="bilinear", antialias=True)[0]
        out_spacing = np.array(
            [self.size_mm[0] / self.spatial_size[0], self.size_mm[1] / self.spatial_size[1]], dtype=np.float64
        )
        meta.update(
            spacing=out_spacing,
            PixelSpacing=out_spacing.copy(),
            affine=torch.diag(torch.tensor([*out_spacing, 1.0, 1.0], dtype=torch.float64)),
            spatial_shape=np.asarray(self.spatial_size),
            roi_box=np.asarray([r0, c0, h, w], dtype=np.int64),
            roi_centre=np.asarray(centre, dtype=np.float64),
        )
        return MetaTensor(crop.to(x.dtype if x.is_floating_point() else torch.float32), meta=meta)


class RoiCropd(MapTransform):
    """Dictionary-based wrapper of :class:`RoiCrop`: crops each key around the landmark in ``data[centre_key]``.

    Args:
        keys: image keys to crop (all around the same landmark).
        centre_key: key of the ``(row, col)`` landmark in pixels; when it is absent and ``row_key``/``col_key`` are
            given, the landmark is read from those two keys (e.g. a datalist's ``roi_row``/``roi_col``).
        size_mm: side of the region in millimetres.
        spatial_size: output side in pixels.
        row_key: key of the landmark row (used when ``centre_key`` is absent).
        col_key: key of the landmark column.
        fallback_spacing_mm: spacing assumed for images without PixelSpacing.
        allow_missing_keys: skip image keys that are absent.

    Raises:
        KeyError: no landmark in the item (names the image file).
    """

    def __init__(
        self,
        keys: KeysCollection,
        centre_key: str = "roi",
        size_mm: float | Sequence[float] = 40.0,
        spatial_size: int | Sequence[int] = 128,
        row_key: str | None = "roi_row",
        col_key: str | None = "roi_col",
        fallback_spacing_mm: float | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.centre_key, self.row_key, self.col_key = centre_key, row_key, col_key
        self.cropper = RoiCrop(size_mm, spatial_size, fallback_spacing_mm)

    def centre(self, d: Mapping[Hashable, Any], key: Hashable) -> tuple[float, float]:
        """The landmark of one item (``centre_key``, else ``row_key``/``col_key``)."""
        if d.get(self.centre_key) is not None:
            pair = np.asarray(d[self.centre_key], dtype=np.float64).ravel()
            return float(pair[0]), float(pair[1])
        if self.row_key and self.col_key and d.get(self.row_key) is not None and d.get(self.col_key) is not None:
            return float(d[self.row_key]), float(d[self.col_key])
        name = getattr(d.get(key), "meta", {}).get("filename_or_obj", key)
        raise KeyError(f"{name}: no ROI landmark ('{self.centre_key}' or '{self.row_key}'/'{self.col_key}')")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.cropper(d[key], self.centre(d, key))
        return d


RoiCropD = RoiCropDict = RoiCropd
