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
import torch
from monai.config import DtypeLike, PathLike
from monai.config.type_definitions import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import LoadImage
from monai.transforms.transform import Transform
from monai.transforms.utils_pytorch_numpy_unification import percentile
from monai.utils.enums import TransformBackends
from monai.utils.type_conversion import convert_to_dst_type, convert_to_tensor
from pydicom.errors import InvalidDicomError

from monai_bone.constants import CLINICAL_FIELDS
from monai_bone.data.image_formats import PLAIN_IMAGE_SUFFIXES
from monai_bone.data.xray_plain import plain_xray_meta, read_plain_image
from monai_bone.data.xray_reader import (
    XRAY_META_KEYS,
    XrayPydicomReader,
    XrayReadError,
    first_float,
    first_line,
)
from monai_bone.transforms.clinical_stats import ClinicalStats, check_fields, encode_field

__all__ = ["ClinicalVector", "LoadXray", "XrayNormalise"]

logger = logging.getLogger(__name__)


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


class LoadXray(Transform):
    """Load a radiograph file as a ``(1, H, W)`` float32 :class:`~monai.data.MetaTensor`, rows first.

    * DICOM (any suffix not in :data:`~monai_bone.data.image_formats.PLAIN_IMAGE_SUFFIXES`): ``LoadImage`` with the
      pinned :class:`XrayPydicomReader`; the modality LUT (RescaleSlope/Intercept) is applied by the reader, once; pixel
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
            rule of :func:`monai_bone.data.dicom_values.image_size_problem` (checked from the header, before decoding).
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
        if path.suffix.lower() in PLAIN_IMAGE_SUFFIXES:
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
            raise XrayReadError(f"{name}: not a DICOM file ({first_line(err)})") from None
        except (EOFError, OSError) as err:
            raise XrayReadError(f"{name}: truncated or unreadable DICOM file ({first_line(err)})") from None
        except Exception as err:
            raise XrayReadError(f"{name}: cannot read DICOM file ({type(err).__name__}: {first_line(err)})") from err
        meta = {key: img.meta[key] for key in XRAY_META_KEYS if key in img.meta}
        meta["format"] = "dicom"
        meta["filename_or_obj"] = name
        missing = set(XRAY_META_KEYS) - set(meta)
        if missing:  # pragma: no cover - guards against a changed MONAI reader
            raise RuntimeError(f"{name}: LoadImage meta lacks {sorted(missing)}")
        out = MetaTensor(img.as_tensor(), meta={k: meta[k] for k in XRAY_META_KEYS})
        return out

    def _load_pil(self, path: Path) -> MetaTensor:
        arr, fmt, bits = read_plain_image(path)
        meta = plain_xray_meta(f"{path}", arr.shape, fmt=fmt, bits_stored=bits)
        data = torch.as_tensor(arr[None]).to(torch.float32 if self.dtype is None else _torch_dtype(self.dtype))
        return MetaTensor(data, meta=meta)


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
        center = first_float(meta.get("WindowCenter"))
        width = first_float(meta.get("WindowWidth"))
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
