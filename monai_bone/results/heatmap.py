"""Grad-CAM heat maps back on the source radiograph: source-pixel geometry, the salient region, a DICOM object.

The heat map is stored as an RGB **Secondary Capture** (the radiograph in grey with the heat map blended in colour,
at the source's size, in a new series of the source's study, with the source in ``SourceImageSequence``). We chose
Secondary Capture over a Parametric Map or a pseudo-colour Softcopy Presentation State because every PACS and viewer
displays an SC image (OHIF, Weasis, 3D Slicer, vendor workstations), whereas parametric maps over 2D projection
radiographs and pseudo-colour presentation states are displayed by few viewers (OHIF v3 shows neither on a DX image).
The price: the overlay is pixels, not numbers -- the numbers are in the SR.
"""

from __future__ import annotations

import numpy as np
import pydicom

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.handlers.explain_roi import place_in_window, resize_map

from .algorithm import AlgorithmInfo
from .codes import DIAGNOSTIC_DISCLAIMER
from .sr import derived_uid

__all__ = ["HEATMAP_SERIES_NUMBER", "heat_to_source", "heatmap_secondary_capture", "top_region"]

#: Series number of the heat-map series.
HEATMAP_SERIES_NUMBER: int = 9902


def heat_to_source(
    heat: np.ndarray,
    source_shape: tuple[int, int],
    spatial_size: int,
    roi_box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Map a heat map on the network input back to source pixels.

    Whole-image input (``roi_box`` ``None``): the preprocessing resized the image so its longest side is
    ``spatial_size`` (MONAI ``Resized`` with ``size_mode="longest"``) and padded it symmetrically to ``spatial_size``
    squared (``SpatialPadd``); this undoes both (crop the padding, bilinear resize to ``source_shape``).

    ROI input: the network saw only the window ``roi_box = (row0, col0, height, width)`` of the source, resampled to
    ``spatial_size`` squared (:class:`~monai_bone.transforms.roi.RoiCrop`); the map is resized to the window and
    placed there, zero elsewhere (the network saw nothing outside it), the part of the window beyond the image
    (zero-padded by the crop) dropped.

    Args:
        heat: ``(spatial_size, spatial_size)`` heat map.
        source_shape: ``(Rows, Columns)`` of the source image.
        spatial_size: the bundle's ``spatial_size``.
        roi_box: the ROI window in source pixels (:func:`~monai_bone.handlers.explain_roi.roi_box_of`), or ``None``
            for whole-image input.
    """
    rows, cols = (int(s) for s in source_shape)
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape != (spatial_size, spatial_size):
        raise ValueError(f"heat map shape {heat.shape} is not ({spatial_size}, {spatial_size})")
    if roi_box is not None:
        return place_in_window(heat, (rows, cols), roi_box)
    scale = spatial_size / max(rows, cols)
    n0, n1 = max(1, round(rows * scale)), max(1, round(cols * scale))
    p0, p1 = (spatial_size - n0) // 2, (spatial_size - n1) // 2
    return resize_map(heat[p0 : p0 + n0, p1 : p1 + n1], (rows, cols))


def top_region(heat: np.ndarray, level: float = 0.8) -> np.ndarray | None:
    """Closed polyline (column, row) of the bounding box of the most salient area of ``heat``.

    The area is the connected set of pixels at or above ``level`` times the maximum that holds the maximum.

    Returns:
        ``(5, 2)`` float array (pixel edges, first point repeated), or None for a flat or non-finite map.
    """
    from scipy import ndimage

    heat = np.asarray(heat, dtype=np.float64)
    if heat.size == 0 or not np.all(np.isfinite(heat)) or float(heat.max()) <= float(heat.min()):
        return None
    labels, _ = ndimage.label(heat >= heat.min() + level * (heat.max() - heat.min()))
    peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
    rows, cols = np.nonzero(labels == labels[peak])
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return np.array([[c0, r0], [c1, r0], [c1, r1], [c0, r1], [c0, r0]], dtype=np.float64)


def _grey(source: pydicom.Dataset) -> np.ndarray:
    """The source pixels as [0, 1] grey (modality LUT, MONOCHROME1 inverted, 1-99 % percentile window)."""
    from pydicom.pixels import apply_modality_lut

    pixels = apply_modality_lut(source.pixel_array, source).astype(np.float64)
    if pixels.ndim == 3:  # RGB source: luminance
        pixels = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])
    if str(source.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        pixels = pixels.max() - pixels
    lo, hi = np.percentile(pixels, [1, 99])
    return np.clip((pixels - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def _overlay(grey: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    from matplotlib import colormaps

    span = float(heat.max() - heat.min())
    norm = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    colour = colormaps["jet"](norm)[..., :3]
    rgb = (1 - alpha * norm[..., None]) * grey[..., None] + alpha * norm[..., None] * colour
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def heatmap_secondary_capture(
    source: pydicom.Dataset, heat: np.ndarray, algorithm: AlgorithmInfo, task: str, synthetic: bool = False
) -> pydicom.Dataset:
    """An RGB Secondary Capture of ``source`` with ``heat`` (source geometry) blended in.

    Args:
        source: the source radiograph, with pixel data.
        heat: heat map of shape ``(Rows, Columns)`` (see :func:`heat_to_source`).
        algorithm: the model (in the UIDs and the description).
        task: ``"hip"`` or ``"knee"``.
        synthetic: marks the object synthetic (series description and image comments).
    """
    import highdicom as hd

    grey = _grey(source)
    if heat.shape != grey.shape:
        raise ValueError(f"heat map shape {heat.shape} differs from the source image {grey.shape}")
    key = (str(source.SOPInstanceUID), task, algorithm.weights_sha256)
    orientation = [str(v) for v in (source.get("PatientOrientation") or [])]
    spacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing")
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=_overlay(grey, heat),
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=derived_uid(*key, "heatmap-series"),
        series_number=HEATMAP_SERIES_NUMBER,
        sop_instance_uid=derived_uid(*key, "heatmap"),
        instance_number=1,
        manufacturer="monai-bone",
        patient_orientation=tuple(orientation) if len(orientation) == 2 else ("L", "F"),
        pixel_spacing=tuple(float(v) for v in spacing) if spacing else None,
        laterality=source.get("ImageLaterality") or source.get("Laterality") or None,
    )
    ref = pydicom.Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    sc.SourceImageSequence = [ref]
    sc.BurnedInAnnotation = "NO"
    sc.DerivationDescription = f"Grad-CAM heat map of {algorithm.name} {algorithm.version}"[:1024]
    sc.ImageComments = " ".join(([SYNTHETIC_NOTE] if synthetic else []) + [DIAGNOSTIC_DISCLAIMER])[:10240]
    sc.SeriesDescription = ("SYNTHETIC " if synthetic else "") + f"monai-bone {task} Grad-CAM (not diagnostic)"
    return sc
