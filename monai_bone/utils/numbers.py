"""Numbers as handlers and tables see them: per-study values as float vectors, rounding, one text format."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["as_numbers", "format_number", "is_finite_number", "round_finite"]


def as_numbers(x: Any) -> np.ndarray:
    """Flatten a per-study value (tensor, array, number, list, ``None``) into a float64 vector.

    Args:
        x: the value; ``None`` gives an empty vector. Torch tensors are recognised by duck typing.

    Returns:
        A 1-D float64 array.

    Raises:
        ValueError: when ``x`` is not numeric.
    """
    if x is None:
        return np.zeros(0)
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"expected a number or numeric tensor per study, got {type(x).__name__} {x!r:.80}.") from e


def is_finite_number(x: Any) -> bool:
    """True for a finite Python ``int``/``float`` (not a bool); False for None, NaN, inf, text and other types."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def round_finite(x: float, digits: int = 6) -> float:
    """``x`` rounded to ``digits`` decimals; non-finite values become NaN."""
    return round(float(x), digits) if math.isfinite(x) else float("nan")


def format_number(v: Any, spec: str = ".3f") -> str:
    """``v`` formatted with ``spec``, or ``"n/a"`` when it is missing, not a number or not finite (every table)."""
    return "n/a" if not isinstance(v, numbers.Real) or not math.isfinite(v) else format(float(v), spec)
