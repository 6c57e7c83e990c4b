"""Typed values of clinical CSV cells and request values: numbers, sex and smoking codes, missing tokens.

Used by :mod:`monai_bone.data.clinical_csv` (CSV files) and the MONAI Label request parser (request values), so a
value means the same wherever it comes from.
"""

from __future__ import annotations

import math
import re
from typing import Any

from monai_bone.constants import CATEGORICAL_CODES, NUMERIC_FIELDS
from monai_bone.data.dicom_values import normalise_sex

__all__ = ["MISSING_TOKENS", "normalise_smoking", "parse_clinical_value", "parse_number"]

#: Cell values read as "missing" (case-insensitive, after stripping).
MISSING_TOKENS: frozenset[str] = frozenset({"", "na", "n/a", "nan", "none", "null", "missing", "-", ".", "?"})

_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_SMOKING_ALIASES = {
    "never": "never",
    "no": "never",
    "non-smoker": "never",
    "nonsmoker": "never",
    "non smoker": "never",
    "former": "former",
    "ex": "former",
    "ex-smoker": "former",
    "past": "former",
    "current": "current",
    "yes": "current",
    "smoker": "current",
    "current smoker": "current",
}


def parse_number(text: Any, decimal_comma: bool = False) -> float | None:
    """Parse a CSV cell as a float.

    Args:
        text: the cell (string or number).
        decimal_comma: also accept ``1,62`` for 1.62 (set when the delimiter is not a comma).

    Returns:
        The value, or ``None`` for a missing token (:data:`MISSING_TOKENS`).

    Raises:
        ValueError: when the cell is neither missing nor a finite number.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        cell = str(text).strip()
        if cell.lower() in MISSING_TOKENS:
            return None
        if decimal_comma and _DECIMAL_COMMA.match(cell):
            cell = cell.replace(",", ".")
        try:
            value = float(cell)
        except ValueError:
            raise ValueError(f"{cell!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def normalise_smoking(value: Any) -> str | None:
    """Normalise a smoking status to ``never`` / ``former`` / ``current`` (:data:`CATEGORICAL_CODES` ``smoking``).

    Accepts the codes themselves, common words (``no``, ``ex``, ``ex-smoker``, ``yes``, ``smoker``) and the numeric
    codes (0 = never, 1 = former, 2 = current).

    Args:
        value: the cell, or empty/``None``.

    Returns:
        The code or ``None`` when missing.

    Raises:
        ValueError: for an unknown code.
    """
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in MISSING_TOKENS:
        return None
    if text in _SMOKING_ALIASES:
        return _SMOKING_ALIASES[text]
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        for code, code_number in CATEGORICAL_CODES["smoking"].items():
            if number == code_number:
                return code
    raise ValueError(f"smoking status {str(value).strip()!r} is not never/former/current (or 0/1/2)")


def parse_clinical_value(name: str, value: Any, decimal_comma: bool = False) -> Any:
    """Typed value of one understood column, from a CSV cell or a request value (string or number).

    Args:
        name: a clinical field, ``bmd`` or ``label``.
        value: the cell or value; missing tokens (:data:`MISSING_TOKENS`) and ``None`` give ``None``.
        decimal_comma: also accept ``1,62`` for numbers (see :func:`parse_number`).

    Returns:
        A float for numeric fields and ``bmd``, ``F``/``M`` for ``sex``, ``never``/``former``/``current`` for
        ``smoking``, stripped text otherwise.

    Raises:
        ValueError: when the value does not parse.
    """
    if name in NUMERIC_FIELDS or name == "bmd":
        return parse_number(value, decimal_comma=decimal_comma)
    if value is None or str(value).strip().lower() in MISSING_TOKENS:
        return None
    if name == "sex":
        return normalise_sex(value)
    if name == "smoking":
        return normalise_smoking(value)
    return str(value).strip()
