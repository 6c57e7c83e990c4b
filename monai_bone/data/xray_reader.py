"""Reading radiograph files (the X-ray reader; like the readers of :mod:`monai.data`).

* :class:`XrayPydicomReader` is a :class:`monai.data.PydicomReader` for single-frame projection radiographs: rows
  first, plain collatable metadata (:data:`DICOM_PLAIN_TAGS`, no patient identifiers), pixel-spacing affine, colour
  to luminance, and one clear :class:`XrayReadError` naming the file for everything it cannot read (missing decoder
  plugins named).
* :mod:`monai_bone.data.xray_plain`: :func:`~monai_bone.data.xray_plain.read_plain_image` decodes PNG/JPEG/TIFF/BMP
  files with PIL; :func:`~monai_bone.data.xray_plain.plain_xray_meta` gives them the same meta keys
  (:data:`XRAY_META_KEYS`) as DICOM files.

The loading transforms (:class:`monai_bone.transforms.LoadXray` / ``LoadXrayd``) route a file by suffix
(:data:`~monai_bone.data.image_formats.PLAIN_IMAGE_FORMATS`) to one of them. The modality LUT (RescaleSlope/Intercept)
is applied by the reader, once; VOI windowing and MONOCHROME1 inversion are the normaliser's job
(:class:`monai_bone.transforms.XrayNormalise`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from monai.config import PathLike
from monai.data import PydicomReader
from monai.utils import ensure_tuple
from pydicom.errors import InvalidDicomError

from monai_bone.data.dicom_values import image_size_problem

__all__ = [
    "DICOM_PLAIN_TAGS",
    "LUMINANCE_WEIGHTS",
    "XRAY_META_KEYS",
    "XrayPydicomReader",
    "XrayReadError",
    "first_float",
    "first_line",
    "to_luminance",
]

logger = logging.getLogger(__name__)

#: ITU-R BT.601 luma weights (the ones PIL's ``convert("L")`` uses) for RGB -> grey.
LUMINANCE_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)

#: DICOM attributes copied into plain meta keys (same name), with the value used when a file lacks them.
#: ``RescaleSlope``/``RescaleIntercept`` record the modality LUT that the reader has already applied.
DICOM_PLAIN_TAGS: dict[str, Any] = {
    "PhotometricInterpretation": "MONOCHROME2",
    "WindowCenter": float("nan"),
    "WindowWidth": float("nan"),
    "VOILUTFunction": "",
    "BitsStored": 0,
    "RescaleSlope": 1.0,
    "RescaleIntercept": 0.0,
    "PixelSpacing": (float("nan"), float("nan")),
    "ImagerPixelSpacing": (float("nan"), float("nan")),
    "Modality": "",
    "BodyPartExamined": "",
    "ViewPosition": "",
}

#: Every meta dict made by :class:`LoadXray` has exactly these keys (DICOM and PNG alike), so batches collate.
XRAY_META_KEYS: tuple[str, ...] = (
    "filename_or_obj",
    "format",
    *DICOM_PLAIN_TAGS,
    "spatial_shape",
    "original_channel_dim",
    "space",
    "original_affine",
    "affine",
    "spacing",
)

#: Hints for the decoders pydicom needs per compressed transfer syntax (see pyproject "DICOM decoding").
_DECODER_HINTS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg + pylibjpeg-libjpeg (or pillow / python-gdcm)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.70": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "1.2.840.10008.1.2.4.80": "pylibjpeg + pylibjpeg-libjpeg (or pyjpegls / python-gdcm)",
    "1.2.840.10008.1.2.4.81": "pylibjpeg + pylibjpeg-libjpeg (or pyjpegls / python-gdcm)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg + pylibjpeg-openjpeg (or pillow / python-gdcm)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg + pylibjpeg-openjpeg (or pillow / python-gdcm)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg + pylibjpeg-openjpeg>=2.4",
    "1.2.840.10008.1.2.4.202": "pylibjpeg + pylibjpeg-openjpeg>=2.4",
    "1.2.840.10008.1.2.4.203": "pylibjpeg + pylibjpeg-openjpeg>=2.4",
    "1.2.840.10008.1.2.5": "numpy (built into pydicom) or pylibjpeg + pylibjpeg-rle",
}

_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class XrayReadError(ValueError):
    """A file cannot be read as a single-frame radiograph; the message starts with the file name."""


def first_line(err: BaseException, limit: int = 400) -> str:
    """The error message on one line (lines joined by '; '), shortened to ``limit`` characters."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = ""
    for line in lines:
        text += line if not text else (" " if text.endswith(":") else "; ") + line
    text = text or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_float(value: Any) -> float:
    """First value of a (multi-valued) DICOM number as float, NaN when empty or unparsable."""
    if value is None:
        return float("nan")
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        if len(value) == 0:
            return float("nan")
        value = value[0]
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out if math.isfinite(out) else float("nan")


def _get_tag(ds: pydicom.Dataset, keyword: str) -> Any:
    try:
        return ds.get(keyword)
    except Exception:  # invalid values raise on access with strict pydicom settings
        return None


def _plain_tags(ds: pydicom.Dataset) -> dict[str, Any]:
    """Copy :data:`DICOM_PLAIN_TAGS` from a pydicom dataset into plain, collatable values."""
    out: dict[str, Any] = {}
    for keyword, default in DICOM_PLAIN_TAGS.items():
        value = _get_tag(ds, keyword)
        if isinstance(default, str):
            out[keyword] = str(value).strip().upper() if value not in (None, "") else default
        elif isinstance(default, tuple):
            pair = np.array(default, dtype=np.float64)
            if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) and len(value) >= 2:
                pair = np.array([first_float(value[0]), first_float(value[1])], dtype=np.float64)
            out[keyword] = pair
        elif isinstance(default, int):
            number = first_float(value)
            out[keyword] = int(number) if math.isfinite(number) else default
        else:
            number = first_float(value)
            out[keyword] = number if math.isfinite(number) else default
    return out


def _spacing_rc(meta: Mapping[str, Any]) -> tuple[float, float]:
    """(row, column) spacing in mm from PixelSpacing, else ImagerPixelSpacing, else (1, 1)."""
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = np.asarray(meta.get(key, (np.nan, np.nan)), dtype=np.float64)
        if pair.shape == (2,) and np.all(np.isfinite(pair)) and np.all(pair > 0):
            return float(pair[0]), float(pair[1])
    return 1.0, 1.0


def to_luminance(arr: np.ndarray) -> np.ndarray:
    """Grey float32 luminance of an RGB(A) array (:data:`LUMINANCE_WEIGHTS`)."""
    weights = np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)
    return arr[..., :3].astype(np.float32) @ weights


def _has_pixel_data(ds: pydicom.Dataset) -> bool:
    return any(kw in ds for kw in _PIXEL_DATA_KEYWORDS)


class _DropDecoderTracebacks(logging.Filter):
    """Drop pydicom's per-plugin decoder failure records (logged with a traceback): the loader re-raises the same
    messages as one :class:`XrayReadError` naming the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


_PYDICOM_DECODER_LOGGER = "pydicom.pixels.decoders.base"


@contextlib.contextmanager
def _quiet_decoder_failures() -> Iterator[None]:
    plugin_logger = logging.getLogger(_PYDICOM_DECODER_LOGGER)
    drop = _DropDecoderTracebacks()
    plugin_logger.addFilter(drop)
    try:
        yield
    finally:
        plugin_logger.removeFilter(drop)


class XrayPydicomReader(PydicomReader):
    """:class:`monai.data.PydicomReader` for single-frame projection radiographs.

    Differences from the base reader (which still decodes the pixels and applies RescaleSlope/RescaleIntercept):

    * rows first (``swap_ij=False``), so the array is ``(Rows, Columns)`` as a viewer shows it;
    * the metadata is the plain keys of :data:`DICOM_PLAIN_TAGS` instead of the hex-keyed JSON dataset (no patient
      identifiers, identical key sets across files);
    * the affine is the pixel-spacing scaling ``diag(row mm, col mm, 1, 1)`` (PixelSpacing, else
      ImagerPixelSpacing, else 1 mm): projection images have no patient-space geometry, and the base reader would
      warn about the missing ImageOrientationPatient for every DX/CR file;
    * clear :class:`XrayReadError` messages naming the file for: folders, non-DICOM files, missing pixel data,
      segmentation objects, multi-frame images, palette colour, missing transfer syntax, missing decoder plugins
      (named) and undecodable or truncated pixel data;
    * colour images (RGB, or YBR which pydicom converts to RGB) become grey by :data:`LUMINANCE_WEIGHTS` with a
      logged warning (``allow_rgb=True``) or are rejected (``allow_rgb=False``);
    * files without the 128-byte preamble / file meta are read with ``force=True`` when that yields an image
      (``allow_no_preamble=True``); a missing TransferSyntaxUID is then inferred from the dataset's encoding.

    Args:
        allow_rgb: convert colour images to luminance (with a warning) instead of rejecting them.
        allow_no_preamble: retry files without the DICOM preamble with ``force=True``.
        kwargs: further arguments for ``pydicom.dcmread``.
    """

    def __init__(self, allow_rgb: bool = True, allow_no_preamble: bool = True, **kwargs: Any) -> None:
        super().__init__(swap_ij=False, affine_lps_to_ras=False, prune_metadata=True, **kwargs)
        self.allow_rgb = allow_rgb
        self.allow_no_preamble = allow_no_preamble

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs: Any):
        """Read one DICOM file (folders and series are refused: a radiograph is one file).

        Raises:
            XrayReadError: naming the file, when it is a folder or not a DICOM file.
        """
        names = ensure_tuple(data)
        if len(names) != 1:
            raise XrayReadError(f"{names}: XrayPydicomReader reads one file at a time, got {len(names)}")
        name = f"{names[0]}"
        if Path(name).is_dir():
            raise XrayReadError(f"{name}: is a folder; a radiograph must be a single DICOM file")
        try:
            return super().read(data, **kwargs)
        except InvalidDicomError as err:
            if not self.allow_no_preamble:
                raise XrayReadError(f"{name}: not a DICOM file ({first_line(err)})") from None
            try:
                ds = super().read(data, **{**kwargs, "force": True})
            except Exception:
                ds = None
            # a forced read of a non-DICOM file yields junk elements; a real dataset without preamble has the usual
            # identifying attributes
            if ds is None or not any(kw in ds for kw in ("SOPClassUID", "Modality", "Rows", *_PIXEL_DATA_KEYWORDS)):
                raise XrayReadError(f"{name}: not a DICOM file (no preamble/file meta, no DICOM dataset)") from None
            logger.info("%s: no DICOM preamble/file meta; read with force=True", name)
            return ds

    def get_data(self, data) -> tuple[np.ndarray, dict]:
        """Check that the dataset is a decodable single-frame image, then let :class:`PydicomReader` decode it.

        Raises:
            XrayReadError: naming the file for the problems listed in the class docstring.
        """
        datasets = data if isinstance(data, list) else [data]
        for ds, name in zip(datasets, self.filenames):
            self._check(ds, f"{name}")
        return super().get_data(data)

    def _check(self, ds: pydicom.Dataset, name: str) -> None:
        if "SegmentSequence" in ds:
            raise XrayReadError(f"{name}: is a DICOM segmentation object, not a radiograph")
        if not _has_pixel_data(ds):
            sop = getattr(getattr(ds, "SOPClassUID", None), "name", None) or "no SOPClassUID"
            raise XrayReadError(f"{name}: has no pixel data (no PixelData element; {sop})")
        frames = first_float(_get_tag(ds, "NumberOfFrames"))
        if math.isfinite(frames) and frames > 1:
            raise XrayReadError(
                f"{name}: is a multi-frame image ({int(frames)} frames); monai-bone reads single-frame radiographs"
                " (extract the frame you want first)"
            )
        rows, cols = first_float(_get_tag(ds, "Rows")), first_float(_get_tag(ds, "Columns"))
        if math.isfinite(rows) and math.isfinite(cols):
            problem = image_size_problem(int(rows), int(cols))
            if problem:
                raise XrayReadError(f"{name}: {problem} (size rule of monai_bone.data.dicom_values; not decoded)")
        photometric = str(_get_tag(ds, "PhotometricInterpretation") or "").upper()
        if photometric == "PALETTE COLOR":
            raise XrayReadError(f"{name}: PhotometricInterpretation PALETTE COLOR is not a radiograph")
        samples = first_float(_get_tag(ds, "SamplesPerPixel"))
        if math.isfinite(samples) and samples > 1 and not self.allow_rgb:
            raise XrayReadError(f"{name}: colour image ({photometric or 'SamplesPerPixel > 1'}) rejected")
        file_meta = getattr(ds, "file_meta", None)
        tsuid = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
        if tsuid is None:
            encoding = getattr(ds, "original_encoding", (None, None))
            if encoding == (True, True):
                tsuid = pydicom.uid.ImplicitVRLittleEndian
            elif encoding == (False, True):
                tsuid = pydicom.uid.ExplicitVRLittleEndian
            elif encoding == (False, False):
                tsuid = pydicom.uid.ExplicitVRBigEndian
            else:
                raise XrayReadError(f"{name}: no TransferSyntaxUID in the file meta; cannot decode the pixel data")
            ds.file_meta = file_meta if file_meta is not None else pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = tsuid
            logger.info("%s: no TransferSyntaxUID; assuming %s from the dataset encoding", name, tsuid.name)
        tsuid = pydicom.uid.UID(str(tsuid))
        if tsuid.is_compressed:
            try:
                decoder = pydicom.pixels.get_decoder(tsuid)
            except NotImplementedError:
                raise XrayReadError(
                    f"{name}: pixel data compressed as '{tsuid.name}' ({tsuid}), which pydicom cannot decode"
                ) from None
            if not decoder.is_available:
                hint = _DECODER_HINTS.get(str(tsuid), "a pydicom decoder plugin")
                missing = "; ".join(decoder.missing_dependencies) or "no plugin registered"
                raise XrayReadError(
                    f"{name}: cannot decode '{tsuid.name}' pixel data: no decoder plugin installed"
                    f" (install {hint}; pydicom reports: {missing})"
                )

    def _get_array_data(self, img, filename):
        """Decode (via :class:`PydicomReader`, which applies the modality LUT) and reduce colour to luminance."""
        try:
            with _quiet_decoder_failures():
                img.pixel_array  # noqa: B018 - decode here (pydicom caches it) to report the real decoder error
            data = super()._get_array_data(img, filename)
        except XrayReadError:
            raise
        except Exception as err:
            tsuid = getattr(getattr(img, "file_meta", None), "TransferSyntaxUID", None)
            syntax = getattr(tsuid, "name", "unknown transfer syntax")
            raise XrayReadError(
                f"{filename}: cannot decode the pixel data ({syntax}; truncated or corrupt?): {first_line(err)}"
            ) from None
        data = np.asarray(data)
        samples = first_float(_get_tag(img, "SamplesPerPixel"))
        if math.isfinite(samples) and samples > 1:
            if data.ndim != 3 or data.shape[-1] < 3:
                raise XrayReadError(f"{filename}: colour image with unexpected array shape {data.shape}")
            logger.warning(
                "%s: colour DICOM (%s) converted to grey luminance (weights %s)",
                filename,
                _get_tag(img, "PhotometricInterpretation"),
                LUMINANCE_WEIGHTS,
            )
            data = to_luminance(data)
        while data.ndim > 2 and data.shape[0] == 1:
            data = data[0]
        if data.ndim != 2:
            raise XrayReadError(f"{filename}: expected a 2-D image, got pixel array shape {data.shape}")
        return data

    def _get_meta_dict(self, img) -> dict:
        meta = _plain_tags(img)
        if str(meta["PhotometricInterpretation"]).startswith(("RGB", "YBR")):
            meta["PhotometricInterpretation"] = "MONOCHROME2"  # after the luminance conversion
        return meta

    def _get_affine(self, metadata: dict, lps_to_ras: bool = True):
        row_mm, col_mm = _spacing_rc(metadata)
        return np.diag([row_mm, col_mm, 1.0, 1.0])
