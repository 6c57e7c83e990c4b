"""The one JSON sanitiser of monai-bone: reports, summaries and writers pass their documents through it.

``json.dump`` writes ``NaN``/``Infinity`` (not JSON) and fails on NumPy scalars, arrays and tensors; every written
``*.json`` therefore goes through :func:`json_safe` first. Torch is recognised by duck typing, so this module does not
import it (the CLI's start-up stays light).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["json_safe"]


def json_safe(obj: Any) -> Any:
    """Recursively convert ``obj`` into plain JSON values.

    Mappings become dicts with string keys, lists/tuples lists, NumPy scalars/arrays and torch tensors Python numbers
    and lists, paths strings, and non-finite floats (NaN, ±inf) ``None``.

    Args:
        obj: any nesting of the above.

    Returns:
        A value ``json.dumps(..., allow_nan=False)`` accepts (other objects pass through unchanged).
    """
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor
        return json_safe(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
