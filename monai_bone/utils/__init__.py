"""Small shared utilities: atomic file writes, the JSON sanitiser, per-study number handling, bundle flag parsing."""

from .io import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text
from .jsonsafe import json_safe
from .numbers import as_numbers, format_number, round_finite
from .options import as_bool

__all__ = [
    "as_bool",
    "as_numbers",
    "atomic_write_bytes",
    "atomic_write_csv",
    "atomic_write_json",
    "atomic_write_text",
    "format_number",
    "json_safe",
    "round_finite",
]
