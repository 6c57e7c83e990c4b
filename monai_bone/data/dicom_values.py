"""Header value rules shared by the index and the loader: DICOM age strings, sex codes and the image size rule.

Image size rule (checked from Rows/Columns before anything else about the pixels, so an absurd image is never
decoded): each side must lie in ``[MIN_IMAGE_SIDE, MAX_IMAGE_SIDE]`` = [8, 16384] pixels and Rows x Columns must not
exceed :data:`MAX_IMAGE_PIXELS` (50 megapixels). The largest flat-panel detectors are about 4300 x 4300 pixels
(18.5 MP) and stitched long-leg images about 2500 x 8000 (20 MP); a side below 8 pixels is an icon or a corrupt
header, not a radiograph. Violations are rejected as ``image_size``; :func:`image_size_problem` is shared by the
header read (:func:`monai_bone.data.dicom_header.read_header`) and the X-ray reader, which applies the same rule before
decoding.
"""

from __future__ import annotations

import math
import re
from typing import Any

from monai_bone.constants import CATEGORICAL_CODES

__all__ = ["MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE", "MIN_IMAGE_SIDE", "image_size_problem", "normalise_sex", "parse_age"]

#: Smallest and largest accepted image side (pixels) and largest accepted image area (Rows x Columns).
MIN_IMAGE_SIDE: int = 8
MAX_IMAGE_SIDE: int = 16384
MAX_IMAGE_PIXELS: int = 50_000_000

_AGE_RE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_AGE_UNIT_YEARS = {"Y": 1.0, "M": 1.0 / 12.0, "W": 7.0 / 365.25, "D": 1.0 / 365.25}
_SEX_ALIASES = {
    "F": "F",
    "FEMALE": "F",
    "W": "F",
    "WOMAN": "F",
    "M": "M",
    "MALE": "M",
    "MAN": "M",
}


def parse_age(value: Any) -> float | None:
    """Parse a DICOM Age String (``"075Y"``, ``"900M"``, ``"052W"``, ``"010D"``) or a plain number into years.

    Args:
        value: AS string (``nnnD/W/M/Y``), a bare number (taken as years), or empty/``None``.

    Returns:
        Age in years (months / 12, weeks * 7 / 365.25, days / 365.25), or ``None`` when the value is empty.

    Raises:
        ValueError: when the value is not empty and not a valid age string.
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(float(value)) or value < 0:
            raise ValueError(f"age {value!r} is not a finite non-negative number")
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    match = _AGE_RE.match(text)
    if match is None:
        try:
            years = float(text)
        except ValueError:
            raise ValueError(f"age {text!r} is not a DICOM age string (nnnD, nnnW, nnnM or nnnY)") from None
        if not math.isfinite(years) or years < 0:
            raise ValueError(f"age {text!r} is not a finite non-negative number")
        return years
    number, unit = int(match.group(1)), (match.group(2) or "Y").upper()
    return number * _AGE_UNIT_YEARS[unit]


def normalise_sex(value: Any) -> str | None:
    """Normalise a sex code to ``"F"`` / ``"M"`` (the codes of :data:`~monai_bone.constants.CATEGORICAL_CODES`).

    Accepts DICOM ``F``/``M``, words (``female``, ``male``, ``woman``, ``man``, ``w``), any case, and the numeric
    codes of ``CATEGORICAL_CODES["sex"]`` (``0`` = F, ``1`` = M).

    Args:
        value: the code, or empty/``None``.

    Returns:
        ``"F"``, ``"M"`` or ``None`` when empty.

    Raises:
        ValueError: when the value is not empty and not a known code (this includes DICOM ``O`` = other, which has no
            code in the clinical vector).
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for code, number in CATEGORICAL_CODES["sex"].items():
            if float(value) == number:
                return code
        raise ValueError(f"sex code {value!r} is not one of {CATEGORICAL_CODES['sex']}")
    text = str(value).strip()
    if not text:
        return None
    upper = text.upper()
    if upper in _SEX_ALIASES:
        return _SEX_ALIASES[upper]
    try:
        return normalise_sex(float(text))
    except ValueError:
        pass
    raise ValueError(f"sex code {text!r} is not F/M (or female/male, 0/1)")


def image_size_problem(rows: int, columns: int) -> str | None:
    """Check an image size against the documented rule (see the module docstring).

    Args:
        rows: image height in pixels (DICOM Rows).
        columns: image width in pixels (DICOM Columns).

    Returns:
        ``None`` when the size is acceptable, otherwise a message naming the size and the rule.
    """
    rows, columns = int(rows), int(columns)
    if min(rows, columns) < MIN_IMAGE_SIDE:
        return f"image is {rows} x {columns} pixels; each side must be at least {MIN_IMAGE_SIDE} pixels"
    if max(rows, columns) > MAX_IMAGE_SIDE:
        return f"image is {rows} x {columns} pixels; each side must be at most {MAX_IMAGE_SIDE} pixels"
    if rows * columns > MAX_IMAGE_PIXELS:
        return (
            f"image is {rows} x {columns} pixels ({rows * columns / 1e6:.0f} megapixels); at most "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels are accepted"
        )
    return None
