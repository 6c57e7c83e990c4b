"""Small DICOM / PNG files with known content for the X-ray transform tests (built with pydicom and PIL)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def write_dicom(
    path: str | Path,
    stored: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    rescale: tuple[float, float] | None = None,
    window: tuple[Any, Any] | None = None,
    voi_function: str | None = None,
    pixel_spacing: Sequence[float] | None = (0.2, 0.25),
    imager_pixel_spacing: Sequence[float] | None = None,
    modality: str = "DX",
    frames: int = 1,
    with_pixels: bool = True,
    patient_name: str = "",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a single-sample DICOM file whose stored values are exactly ``stored`` (uint16 or int16).

    ``stored`` is ``(rows, cols)``, or ``(frames, rows, cols)`` when ``frames > 1``.
    """
    path = Path(path)
    arr = np.asarray(stored)
    signed = arr.dtype.kind == "i"
    arr = arr.astype(np.int16 if signed else np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = patient_name
    ds.PatientID = "TEST-0001"
    ds.Modality = modality
    rows, cols = arr.shape[-2:]
    ds.Rows, ds.Columns = int(rows), int(cols)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if rescale is not None:
        ds.RescaleSlope = f"{rescale[0]:g}"
        ds.RescaleIntercept = f"{rescale[1]:g}"
    if window is not None:
        ds.WindowCenter = window[0]
        ds.WindowWidth = window[1]
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    if pixel_spacing is not None:
        ds.PixelSpacing = [f"{s:g}" for s in pixel_spacing]
    if imager_pixel_spacing is not None:
        ds.ImagerPixelSpacing = [f"{s:g}" for s in imager_pixel_spacing]
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    if with_pixels:
        ds.PixelData = np.ascontiguousarray(arr, dtype="<i2" if signed else "<u2").tobytes()
        ds["PixelData"].VR = "OW"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def marker_image(rows: int = 24, cols: int = 40, low: int = 100, high: int = 3000) -> np.ndarray:
    """Non-square uint16 image: dark background, bright 4x2 block at the top-left, one bright pixel at (2, 3 cols / 4).

    A transposed or flipped read moves the markers, so ``out[0, 0, 0]`` and ``out[0, 2, 30]`` (40 columns) pin the
    orientation.
    """
    img = np.full((rows, cols), low, dtype=np.uint16)
    img[:4, :2] = high
    img[2, cols * 3 // 4] = high
    # a gentle ramp so percentiles are not degenerate
    img += np.arange(cols, dtype=np.uint16)[None, :]
    return img


def gradient(rows: int = 32, cols: int = 32, top: int = 4000) -> np.ndarray:
    """uint16 ramp 0..top (row-major) with distinct values."""
    return np.linspace(0, top, rows * cols).round().astype(np.uint16).reshape(rows, cols)
