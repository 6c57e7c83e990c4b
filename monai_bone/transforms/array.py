"""Array transforms for plain radiographs: loading (DICOM, PNG/JPEG) and intensity normalisation.

The fixed input contract of monai-bone (compare TorchXRayVision's ``read_xray_dcm`` + ``normalize``):

* :class:`LoadXray` turns a file into a ``(1, H, W)`` float32 :class:`~monai.data.MetaTensor`, rows first (element
  ``[0, 0, 0]`` is the top-left pixel as a viewer shows it), with the DICOM modality LUT (RescaleSlope/Intercept)
  applied exactly once and the display-relevant tags copied into plain meta keys (:data:`XRAY_META_KEYS`), so that
  batches of files with different tag sets collate.
* :class:`XrayNormalise` maps that to float32 ``[0, 1]`` in the MONOCHROME2 convention (bone bright): optional VOI
  window, MONOCHROME1 inversion, percentile clip.

DICOM goes through :class:`monai.transforms.LoadImage` with a pinned :class:`XrayPydicomReader` (a
:class:`monai.data.PydicomReader`), never through ITK: ITK inverts MONOCHROME1 data itself while pydicom does not, so
which reader ``LoadImage`` auto-selects would otherwise decide the polarity of the image.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from monai.config import DtypeLike, PathLike
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor, PydicomReader
from monai.data.meta_obj import get_track_meta
from monai.transforms import LoadImage
from monai.transforms.transform import Transform
from monai.transforms.utils_pytorch_numpy_unification import percentile
from monai.utils import ensure_tuple
from monai.utils.enums import SpaceKeys, TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor
from pydicom.errors import InvalidDicomError

from monai_bone.constants import CLINICAL_FIELDS
from monai_bone.data.dicom_header import image_size_problem
from monai_bone.transforms.clinical_stats import ClinicalStats, check_fields, encode_field

__all__ = [
    "ClinicalVector",
    "DICOM_PLAIN_TAGS",
    "IMAGE_SUFFIXES",
    "LUMINANCE_WEIGHTS",
    "XRAY_META_KEYS",
    "LoadXray",
    "XrayNormalise",
    "XrayPydicomReader",
    "XrayReadError",
    "plain_xray_meta",
]

logger = logging.getLogger(__name__)

#: File suffixes read with PIL; everything else is read as DICOM.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

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


def _first_line(err: BaseException, limit: int = 400) -> str:
    """The error message on one line (lines joined by '; '), shortened to ``limit`` characters."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = ""
    for line in lines:
        text += line if not text else (" " if text.endswith(":") else "; ") + line
    text = text or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_float(value: Any) -> float:
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
                pair = np.array([_as_float(value[0]), _as_float(value[1])], dtype=np.float64)
            out[keyword] = pair
        elif isinstance(default, int):
            number = _as_float(value)
            out[keyword] = int(number) if math.isfinite(number) else default
        else:
            number = _as_float(value)
            out[keyword] = number if math.isfinite(number) else default
    return out


def _spacing_rc(meta: Mapping[str, Any]) -> tuple[float, float]:
    """(row, column) spacing in mm from PixelSpacing, else ImagerPixelSpacing, else (1, 1)."""
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        pair = np.asarray(meta.get(key, (np.nan, np.nan)), dtype=np.float64)
        if pair.shape == (2,) and np.all(np.isfinite(pair)) and np.all(pair > 0):
            return float(pair[0]), float(pair[1])
    return 1.0, 1.0


def _to_luminance(arr: np.ndarray) -> np.ndarray:
    weights = np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)
    return arr[..., :3].astype(np.float32) @ weights


def _has_pixel_data(ds: pydicom.Dataset) -> bool:
    return any(kw in ds for kw in _PIXEL_DATA_KEYWORDS)


@contextlib.contextmanager
def _quiet_reader_registration() -> Iterator[None]:
    """Silence the nvImageCodec notices that ``LoadImage.__init__`` emits while registering readers we never use."""

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "nvImageCodec" not in record.getMessage()

    plugin_logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    drop = _Drop()
    plugin_logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            yield
    finally:
        plugin_logger.removeFilter(drop)


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
                raise XrayReadError(f"{name}: not a DICOM file ({_first_line(err)})") from None
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
        frames = _as_float(_get_tag(ds, "NumberOfFrames"))
        if math.isfinite(frames) and frames > 1:
            raise XrayReadError(
                f"{name}: is a multi-frame image ({int(frames)} frames); monai-bone reads single-frame radiographs"
                " (extract the frame you want first)"
            )
        rows, cols = _as_float(_get_tag(ds, "Rows")), _as_float(_get_tag(ds, "Columns"))
        if math.isfinite(rows) and math.isfinite(cols):
            problem = image_size_problem(int(rows), int(cols))
            if problem:
                raise XrayReadError(f"{name}: {problem} (size rule of monai_bone.data.dicom_header; not decoded)")
        photometric = str(_get_tag(ds, "PhotometricInterpretation") or "").upper()
        if photometric == "PALETTE COLOR":
            raise XrayReadError(f"{name}: PhotometricInterpretation PALETTE COLOR is not a radiograph")
        samples = _as_float(_get_tag(ds, "SamplesPerPixel"))
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
                f"{filename}: cannot decode the pixel data ({syntax}; truncated or corrupt?): {_first_line(err)}"
            ) from None
        data = np.asarray(data)
        samples = _as_float(_get_tag(img, "SamplesPerPixel"))
        if math.isfinite(samples) and samples > 1:
            if data.ndim != 3 or data.shape[-1] < 3:
                raise XrayReadError(f"{filename}: colour image with unexpected array shape {data.shape}")
            logger.warning(
                "%s: colour DICOM (%s) converted to grey luminance (weights %s)",
                filename,
                _get_tag(img, "PhotometricInterpretation"),
                LUMINANCE_WEIGHTS,
            )
            data = _to_luminance(data)
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


class LoadXray(Transform):
    """Load a radiograph file as a ``(1, H, W)`` float32 :class:`~monai.data.MetaTensor`, rows first.

    * DICOM (any suffix other than :data:`IMAGE_SUFFIXES`): ``monai.transforms.LoadImage`` with the pinned
      :class:`XrayPydicomReader`; the modality LUT (RescaleSlope/Intercept) is applied by the reader, once; pixel
      values are otherwise as stored (MONOCHROME1 is *not* inverted here, see :class:`XrayNormalise`).
    * PNG/JPEG/TIFF/BMP: PIL (8/16-bit grey kept as is, EXIF orientation applied). Colour images become grey by
      :data:`LUMINANCE_WEIGHTS` with a logged warning (images whose three channels are equal are grey already and
      convert silently); alpha is dropped. PhotometricInterpretation is set to MONOCHROME2 (bright = dense).

    The meta dict has exactly :data:`XRAY_META_KEYS`: ``filename_or_obj``, ``format`` (``"dicom"`` or the PIL format),
    the plain tags of :data:`DICOM_PLAIN_TAGS` (``WindowCenter``/``WindowWidth`` are the first value, NaN when
    absent; spacings are float64 arrays ``(2,)``, NaN when absent), and MONAI's ``spatial_shape``, ``space``,
    ``affine`` (pixel-spacing scaling) and ``spacing``.

    Colour DICOM rule: RGB and YBR (converted to RGB by pydicom) single-frame images become luminance with a warning
    when ``allow_rgb`` (default), else they are rejected. Multi-frame and PALETTE COLOR DICOM are always rejected.

    Args:
        allow_rgb: convert colour images to luminance instead of rejecting them.
        allow_no_preamble: read DICOM files without preamble/file meta with ``force=True`` when that yields an image.
        dtype: output dtype.

    Raises:
        FileNotFoundError: when the path does not exist.
        XrayReadError: (a ``ValueError``) naming the file, for zero-byte, non-image, garbage, truncated, no-pixel-data,
            multi-frame and undecodable files (the missing decoder plugin is named), and for images outside the size
            rule of :func:`monai_bone.data.dicom_header.image_size_problem` (checked from the header, before decoding).
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, allow_rgb: bool = True, allow_no_preamble: bool = True, dtype: DtypeLike = np.float32) -> None:
        self.allow_rgb = allow_rgb
        self.allow_no_preamble = allow_no_preamble
        self.dtype = dtype
        self.reader = XrayPydicomReader(allow_rgb=allow_rgb, allow_no_preamble=allow_no_preamble)
        self._loader: LoadImage | None = None

    @property
    def loader(self) -> LoadImage:
        """The MONAI ``LoadImage`` used for DICOM (built on first use; it instantiates MONAI's default readers)."""
        if self._loader is None:
            with _quiet_reader_registration():
                self._loader = LoadImage(
                    reader=self.reader, image_only=True, dtype=self.dtype, ensure_channel_first=True
                )
        return self._loader

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_loader"] = None  # rebuilt in worker processes
        return state

    def __call__(self, filename: PathLike) -> MetaTensor:
        """Load ``filename``; see the class docstring for the output and the errors."""
        path = Path(os.fspath(filename)).expanduser()
        name = f"{path}"
        if not path.exists():
            raise FileNotFoundError(f"{name}: no such file")
        if path.is_dir():
            raise XrayReadError(f"{name}: is a folder; a radiograph must be a single file")
        if path.stat().st_size == 0:
            raise XrayReadError(f"{name}: empty file (0 bytes)")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            img = self._load_pil(path)
        else:
            img = self._load_dicom(path)
        return img if get_track_meta() else img.as_tensor()

    def _load_dicom(self, path: Path) -> MetaTensor:
        name = f"{path}"
        try:
            img = self.loader(name, reader=self.reader)
        except XrayReadError:
            raise
        except InvalidDicomError as err:
            raise XrayReadError(f"{name}: not a DICOM file ({_first_line(err)})") from None
        except (EOFError, OSError) as err:
            raise XrayReadError(f"{name}: truncated or unreadable DICOM file ({_first_line(err)})") from None
        except Exception as err:
            raise XrayReadError(f"{name}: cannot read DICOM file ({type(err).__name__}: {_first_line(err)})") from err
        meta = {key: img.meta[key] for key in XRAY_META_KEYS if key in img.meta}
        meta["format"] = "dicom"
        meta["filename_or_obj"] = name
        missing = set(XRAY_META_KEYS) - set(meta)
        if missing:  # pragma: no cover - guards against a changed MONAI reader
            raise RuntimeError(f"{name}: LoadImage meta lacks {sorted(missing)}")
        out = MetaTensor(img.as_tensor(), meta={k: meta[k] for k in XRAY_META_KEYS})
        return out

    def _load_pil(self, path: Path) -> MetaTensor:
        from PIL import Image, ImageOps, UnidentifiedImageError

        name = f"{path}"
        try:
            with Image.open(path) as opened:
                fmt = str(opened.format or path.suffix.lstrip(".")).lower()
                problem = image_size_problem(opened.size[1], opened.size[0])
                if problem:
                    raise XrayReadError(f"{name}: {problem} (size rule of monai_bone.data.dicom_header; not decoded)")
                im = ImageOps.exif_transpose(opened)
                im.load()
        except XrayReadError:
            raise
        except UnidentifiedImageError:
            raise XrayReadError(f"{name}: not a readable image file (PIL cannot identify it)") from None
        except Image.DecompressionBombError as err:
            raise XrayReadError(f"{name}: image too large to decode safely ({_first_line(err)})") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise XrayReadError(f"{name}: truncated or corrupt image ({_first_line(err)})") from None
        mode = im.mode
        if mode in ("L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F", "1"):
            arr = np.asarray(im.convert("L") if mode == "1" else im)
            bits = {"L": 8, "1": 8, "F": 32}.get(mode, 16)
            if mode == "I" and arr.size and int(arr.max()) > 65535:
                bits = 32
        elif mode in ("LA", "La"):
            arr, bits = np.asarray(im.getchannel(0)), 8
        else:
            rgb = np.asarray(im.convert("RGB"))
            bits = 8
            if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
                arr = rgb[..., 0]
            else:
                logger.warning("%s: colour image (%s) converted to grey luminance (%s)", name, mode, LUMINANCE_WEIGHTS)
                arr = _to_luminance(rgb)
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        meta = plain_xray_meta(name, arr.shape, fmt=fmt, bits_stored=bits)
        data = torch.as_tensor(arr[None]).to(torch.float32 if self.dtype is None else _torch_dtype(self.dtype))
        return MetaTensor(data, meta=meta)


def plain_xray_meta(name: str, shape: Sequence[int], fmt: str = "png", bits_stored: int = 8) -> dict[str, Any]:
    """The :data:`XRAY_META_KEYS` meta dict of an image without DICOM tags (PNG/JPEG files, placeholders).

    Args:
        name: ``filename_or_obj``.
        shape: ``(rows, columns)``.
        fmt: ``format`` value.
        bits_stored: ``BitsStored`` value.

    Returns:
        A new meta dict: :data:`DICOM_PLAIN_TAGS` defaults, identity affine, 1 mm spacing.
    """
    meta: dict[str, Any] = {
        key: (np.array(v, dtype=np.float64) if isinstance(v, tuple) else v) for key, v in DICOM_PLAIN_TAGS.items()
    }
    meta.update(BitsStored=int(bits_stored), Modality="")
    affine = np.eye(4, dtype=np.float64)
    meta.update(
        filename_or_obj=name,
        format=fmt,
        spatial_shape=tuple(int(s) for s in shape),
        original_channel_dim=float("nan"),
        space=SpaceKeys.LPS,
        original_affine=affine,
        affine=torch.as_tensor(affine),
        spacing=np.ones(2, dtype=np.float64),
    )
    return {k: meta[k] for k in XRAY_META_KEYS}


def _torch_dtype(dtype: DtypeLike) -> torch.dtype:
    return convert_to_tensor(np.zeros(1, dtype=dtype)).dtype


class XrayNormalise(Transform):
    """Map a loaded radiograph to float32 ``[0, 1]`` in the MONOCHROME2 convention (bone bright).

    Steps, in DICOM display order (modality LUT was applied by :class:`LoadXray`):

    1. VOI window (``window``): ``None`` = none; ``"voi"`` = the file's WindowCenter/WindowWidth with its
       VOILUTFunction (LINEAR, LINEAR_EXACT or SIGMOID, PS3.3 C.11.2.1.2), falling back to no window with a logged
       warning when the file has none; ``(center, width)`` = an explicit window in modality units, applied with the
       file's VOILUTFunction (LINEAR when absent). The window maps to ``[0, 1]``; the percentile step then
       rescales the windowed values (pass ``percentiles=None`` to keep the window's own scaling where it saturates).
    2. MONOCHROME1 inversion (``invert_monochrome1``): the photometric interpretation comes from ``photometric`` when
       given, else from the MetaTensor meta (``PhotometricInterpretation``), else MONOCHROME2 is assumed.
    3. Percentile clip (``percentiles``): the ``(lower, upper)`` percentiles map to 0 and 1 and values outside are
       clipped. ``None`` rescales min..max. Percentiles are estimated on a strided subsample of at most
       ``max_percentile_pixels`` pixels. Because inversion comes first, the lower percentile always clips the dark
       end of the bone-bright image.

    A logged warning flags inputs that look wrongly scaled: a constant image (output all zeros) and a window that
    saturates more than 95 % of the pixels. Non-finite pixel values raise ``ValueError`` naming the file. The output
    meta is the input meta with ``PhotometricInterpretation`` set to MONOCHROME2 (so a second pass does not invert
    again). The transform is deterministic and has no inverse.

    Args:
        invert_monochrome1: invert MONOCHROME1 images.
        window: ``None``, ``"voi"`` or ``(center, width)``.
        percentiles: ``(lower, upper)`` in ``[0, 100]`` with ``lower < upper``, or ``None``.
        photometric: ``"MONOCHROME1"``/``"MONOCHROME2"`` to override the meta, or ``None``.
        max_percentile_pixels: subsample size for the percentile estimate.
        dtype: output dtype.

    Raises:
        ValueError: for invalid arguments.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        invert_monochrome1: bool = True,
        window: str | Sequence[float] | None = None,
        percentiles: Sequence[float] | None = (0.5, 99.5),
        photometric: str | None = None,
        max_percentile_pixels: int = 1_000_000,
        dtype: DtypeLike = np.float32,
    ) -> None:
        if photometric is not None:
            photometric = str(photometric).upper()
            if photometric not in ("MONOCHROME1", "MONOCHROME2"):
                raise ValueError(f"photometric must be 'MONOCHROME1', 'MONOCHROME2' or None, got {photometric!r}")
        if window is not None and not (isinstance(window, str) and window == "voi"):
            if isinstance(window, str) or len(window) != 2:
                raise ValueError(f"window must be None, 'voi' or (center, width), got {window!r}")
            center, width = float(window[0]), float(window[1])
            if not (math.isfinite(center) and math.isfinite(width) and width > 0):
                raise ValueError(f"window must have a finite center and a positive width, got {window!r}")
            window = (center, width)
        if percentiles is not None:
            if len(percentiles) != 2:
                raise ValueError(f"percentiles must be (lower, upper) or None, got {percentiles!r}")
            lower, upper = float(percentiles[0]), float(percentiles[1])
            if not (0.0 <= lower < upper <= 100.0):
                raise ValueError(f"percentiles must satisfy 0 <= lower < upper <= 100, got {percentiles!r}")
            percentiles = (lower, upper)
        if max_percentile_pixels < 1:
            raise ValueError("max_percentile_pixels must be positive")
        self.invert_monochrome1 = invert_monochrome1
        self.photometric = photometric
        self.window = window
        self.percentiles = percentiles
        self.max_percentile_pixels = int(max_percentile_pixels)
        self.dtype = dtype

    def __call__(self, img: NdarrayOrTensor, meta: Mapping[str, Any] | None = None) -> NdarrayOrTensor:
        """Normalise ``img`` (channel-first); ``meta`` overrides the MetaTensor meta when given."""
        if meta is None:
            meta = img.meta if isinstance(img, MetaTensor) else {}
        name = str(meta.get("filename_or_obj", "<array>"))
        img = convert_to_tensor(img, track_meta=get_track_meta())
        x = convert_to_tensor(img, track_meta=False, dtype=torch.float32)
        if not math.isfinite(float(x.sum())) and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name}: image contains non-finite pixel values (NaN or inf)")

        window = self._resolve_window(meta, name)
        if window is not None:
            center, width, function = window
            x = _apply_window(x, center, width, function)
        sample = self._sample(x)
        if window is not None:
            saturated = float(((sample <= 0.0) | (sample >= 1.0)).float().mean())
            if saturated > 0.95:
                logger.warning(
                    "%s: window (center %g, width %g) saturates %.0f%% of the pixels; wrong window for this image?",
                    name,
                    center,
                    width,
                    100 * saturated,
                )

        photometric = self.photometric or str(meta.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2")
        inverted = self.invert_monochrome1 and photometric.upper() == "MONOCHROME1"
        # inversion v = c - x (c = 1 after a window) folded into the final affine map: y = clip(sign * x + b, 0, 1)
        top = 1.0 if window is not None else 0.0
        sign = -1.0 if inverted else 1.0
        lo, hi = self._range(top - sample if inverted else sample)
        if not hi > lo:
            logger.warning("%s: constant image (all pixels %g); wrongly scaled input? output set to 0", name, lo)
            x = torch.zeros_like(x)
        else:
            scale = 1.0 / (hi - lo)
            offset = ((top if inverted else 0.0) - lo) * scale
            x = x.mul(sign * scale) if window is None else x.mul_(sign * scale)  # never modify the input in place
            x = x.add_(offset).clamp_(0.0, 1.0)

        out = convert_to_dst_type(x, dst=img, dtype=self.dtype)[0]
        if isinstance(out, MetaTensor) and inverted:
            out.meta = {**dict(out.meta), "PhotometricInterpretation": "MONOCHROME2"}
        return out

    def _resolve_window(self, meta: Mapping[str, Any], name: str) -> tuple[float, float, str] | None:
        if self.window is None:
            return None
        function = str(meta.get("VOILUTFunction", "") or "LINEAR").upper()
        if isinstance(self.window, tuple):
            return self.window[0], self.window[1], function
        center = _as_float(meta.get("WindowCenter"))
        width = _as_float(meta.get("WindowWidth"))
        if not (math.isfinite(center) and math.isfinite(width) and width > 0):
            logger.warning("%s: window='voi' but the file has no usable WindowCenter/Width; no window applied", name)
            return None
        return center, width, function

    def _sample(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened strided subsample of at most about ``max_percentile_pixels`` pixels (all pixels when fewer)."""
        if x.numel() > self.max_percentile_pixels and x.ndim >= 2:
            stride = math.ceil(math.sqrt(x.numel() / self.max_percentile_pixels))
            x = x[..., ::stride, ::stride]
        return x.reshape(-1)

    def _range(self, sample: torch.Tensor) -> tuple[float, float]:
        if self.percentiles is None:
            return float(sample.min()), float(sample.max())
        if sample.device.type == "cpu":  # numpy partitions instead of sorting: several times faster than quantile
            lo, hi = np.percentile(sample.numpy(), list(self.percentiles))
        else:
            lo, hi = percentile(sample, list(self.percentiles))
        return float(lo), float(hi)


def _apply_window(x: torch.Tensor, center: float, width: float, function: str) -> torch.Tensor:
    """DICOM VOI LUT functions (PS3.3 C.11.2.1.2/3) mapped to ``[0, 1]``; returns a new tensor."""
    if function == "SIGMOID":
        return torch.sigmoid(x.mul(4.0 / width).sub_(4.0 * center / width))
    if function == "LINEAR_EXACT" or width <= 1.0:
        return x.sub(center).mul_(1.0 / width).add_(0.5).clamp_(0.0, 1.0)
    return x.sub(center - 0.5).mul_(1.0 / (width - 1.0)).add_(0.5).clamp_(0.0, 1.0)


class ClinicalVector(Transform):
    """Turn one record's clinical fields into a float32 vector ``(F,)`` and a presence mask ``(F,)``.

    Each field is encoded by :func:`~monai_bone.transforms.clinical_stats.encode_field` (categorical fields by
    :data:`~monai_bone.constants.CATEGORICAL_CODES`) and, when ``stats`` is given, standardised with the training
    mean/SD. Missing values -- an absent key, ``None``, NaN, an empty string, an unknown category code (logged once per
    field and value) -- are **NaN** in the vector and 0 in the mask; nothing is imputed.

    Args:
        fields: clinical fields in vector order (a subset of :data:`~monai_bone.constants.CLINICAL_FIELDS`).
        stats: :class:`~monai_bone.transforms.ClinicalStats`, a path to its JSON, or ``None`` for no
            normalisation (raw values, categorical codes).

    Raises:
        ValueError: for unknown fields, or when ``stats`` lacks one of ``fields``.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, fields: Sequence[str] = CLINICAL_FIELDS, stats: ClinicalStats | PathLike | None = None) -> None:
        self.fields = check_fields(fields)
        if stats is not None and not isinstance(stats, ClinicalStats):
            stats = ClinicalStats.load(stats)
        if stats is not None:
            missing = [f for f in self.fields if f not in stats.fields]
            if missing:
                raise ValueError(f"clinical statistics have no mean/std for {missing} (fitted on {list(stats.fields)})")
        self.stats = stats
        self._warned: set[tuple[str, str]] = set()

    def _on_unknown(self, field: str, value: Any) -> None:
        key = (field, repr(value))
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("clinical field %r: unknown value %r treated as missing", field, value)

    def __call__(self, record: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(vector, mask)``, both float32 of shape ``(len(fields),)``."""
        values = []
        for field in self.fields:
            value = encode_field(field, record.get(field), self._on_unknown)
            if self.stats is not None and not math.isnan(value):
                value = self.stats.normalise(field, value)
            values.append(value)
        vector = torch.tensor(values, dtype=torch.float32)
        mask = (~torch.isnan(vector)).to(torch.float32)
        return vector, mask
