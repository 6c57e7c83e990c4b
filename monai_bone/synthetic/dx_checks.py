"""Input checks of the DX writer (:func:`monai_bone.synthetic.dicom_writer.write_dx`) and the DICOM age format.

Every problem is a ``ValueError`` whose message starts with ``where`` (``cannot write DX file PATH``), so a caller
learns which file and which argument was wrong.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["PHOTOMETRIC_VALUES", "VOI_FUNCTIONS", "check_dx_pixels", "check_dx_values", "dicom_age"]

#: Photometric interpretations that :func:`~monai_bone.synthetic.dicom_writer.write_dx` accepts.
PHOTOMETRIC_VALUES: tuple[str, ...] = ("MONOCHROME1", "MONOCHROME2")
#: VOILUTFunction values it accepts.
VOI_FUNCTIONS: tuple[str, ...] = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def dicom_age(age_years: float) -> str:
    """Format an age in years as a DICOM AS string (completed years, ``"075Y"``; months below 1 year).

    Args:
        age_years: age in years, ``0 <= age_years < 1000``.

    Returns:
        The 4-character age string.

    Raises:
        ValueError: when the age is negative, not finite or too large for the AS format.
    """
    age = float(age_years)
    if not math.isfinite(age) or age < 0 or age >= 1000:
        raise ValueError(f"age {age_years!r} cannot be written as a DICOM age string (0 <= age < 1000 years)")
    if age < 1.0:
        return f"{int(age * 12):03d}M"
    return f"{int(age):03d}Y"


def check_dx_pixels(arr: np.ndarray, bits_stored: Any, where: str) -> int:
    """BitsStored as an int after checking it and the pixel array (2-D, integral, within the stored range)."""
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ValueError(f"{where}: pixels must be a non-empty 2-D array (rows, cols), got shape {arr.shape}")
    if not (isinstance(bits_stored, (int, np.integer)) and 8 <= int(bits_stored) <= 16):
        raise ValueError(f"{where}: bits_stored must be an integer in [8, 16], got {bits_stored!r}")
    bits_stored = int(bits_stored)
    max_value = (1 << bits_stored) - 1
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{where}: float pixels must hold finite integral values")
    elif arr.dtype.kind not in "ui":
        raise ValueError(f"{where}: pixels must be integers, got dtype {arr.dtype}")
    lo, hi = (float(arr.min()), float(arr.max()))
    if lo < 0 or hi > max_value:
        raise ValueError(
            f"{where}: pixel values [{lo:g}, {hi:g}] outside [0, {max_value}] for BitsStored {bits_stored}"
        )
    return bits_stored


def check_dx_values(where: str, **v: Any) -> tuple[str, str, list[float], str, str]:
    """Check the tag arguments of ``write_dx`` (keyword arguments of the same names).

    Returns:
        ``(photometric, voi_function, pixel spacing, age text, body part)``, normalised (upper case, floats).
    """
    photometric = str(v["photometric"]).upper()
    if photometric not in PHOTOMETRIC_VALUES:
        raise ValueError(f"{where}: photometric must be one of {PHOTOMETRIC_VALUES}, got {photometric!r}")
    sex, laterality, rescale, window = v["sex"], v["laterality"], v["rescale"], v["window"]
    if sex is not None and sex not in ("F", "M", "O"):
        raise ValueError(f"{where}: sex must be 'F', 'M', 'O' or None, got {sex!r}")
    if laterality is not None and laterality not in ("R", "L", "B"):
        raise ValueError(f"{where}: laterality must be 'R', 'L', 'B' (both) or None, got {laterality!r}")
    spacing = [float(s) for s in v["pixel_spacing_mm"]]
    if len(spacing) != 2 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"{where}: pixel_spacing_mm must be two positive numbers, got {v['pixel_spacing_mm']!r}")
    if rescale is not None and not (len(rescale) == 2 and float(rescale[0]) > 0 and math.isfinite(float(rescale[1]))):
        raise ValueError(f"{where}: rescale must be (positive slope, finite intercept), got {rescale!r}")
    if window is not None and not (len(window) == 2 and float(window[1]) >= 1):
        raise ValueError(f"{where}: window must be (center, width >= 1), got {window!r}")
    voi_function = str(v["voi_function"]).upper()
    if voi_function not in VOI_FUNCTIONS:
        raise ValueError(f"{where}: voi_function must be one of {VOI_FUNCTIONS}, got {voi_function!r}")
    if v["voi_lut"] is not None:
        voi_lut = np.asarray(v["voi_lut"])
        if voi_lut.shape != ((1 << int(v["bits_stored"])),) or voi_lut.min() < 0 or voi_lut.max() > 65535:
            raise ValueError(f"{where}: voi_lut must hold 2**bits_stored values in [0, 65535]")
    for name, ok in (("height_m", lambda x: 0 < x < 3), ("weight_kg", lambda x: 0 < x < 1000)):
        value = v[name]
        if value is not None and not (math.isfinite(float(value)) and ok(float(value))):
            raise ValueError(f"{where}: {name}={value!r} is not plausible")
    try:
        age_text = "" if v["age_years"] is None else dicom_age(v["age_years"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    body_part = str(v["body_part"]).upper()
    if not body_part or len(body_part) > 16:
        raise ValueError(f"{where}: body_part must be a non-empty code string of at most 16 characters")
    return photometric, voi_function, spacing, age_text, body_part
