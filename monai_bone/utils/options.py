"""Parsing of bundle options given on the command line (``python -m monai.bundle run --resume false``)."""

from __future__ import annotations

from typing import Any

__all__ = ["as_bool"]

_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0", "none", ""}


def as_bool(value: Any, name: str = "option") -> bool:
    """Interpret a bundle flag: booleans as they are, ``"true"``/``"false"`` (any case), ``yes/no``, ``on/off``, 1/0.

    ``monai.bundle run`` passes ``--flag false`` through as the *string* ``"false"``, which Python would take as true;
    bundle configs read their flags through this function.

    Args:
        value: the option value.
        name: the option name, for the error message.

    Returns:
        The boolean.

    Raises:
        ValueError: for anything else (e.g. ``"maybe"``).
    """
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"--{name} must be true or false, got {value!r}")
