"""The one JSON sanitiser (monai_bone.utils.json_safe) and the per-study number helpers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_bone.utils import as_numbers, json_safe, round_finite


def test_json_safe_gives_strict_json():
    doc = {
        1: np.float32(0.5),
        "nan": float("nan"),
        "inf": [np.inf, -math.inf],
        "arr": np.array([[1, 2], [3, 4]], dtype=np.int64),
        "t": torch.tensor([0.25, float("nan")]),
        "path": Path("/a/b.json"),
        "tuple": (np.int16(3), True, None, "x"),
    }
    out = json_safe(doc)
    assert out == {
        "1": 0.5,
        "nan": None,
        "inf": [None, None],
        "arr": [[1, 2], [3, 4]],
        "t": [0.25, None],
        "path": "/a/b.json",
        "tuple": [3, True, None, "x"],
    }
    json.dumps(out, allow_nan=False)  # strict JSON: raises on NaN/inf
    assert type(out["arr"][0][0]) is int and type(out["1"]) is float


def test_as_numbers_and_round_finite():
    assert as_numbers(None).size == 0
    assert as_numbers(torch.tensor([[1.5], [2.0]])).tolist() == [1.5, 2.0]
    assert as_numbers(3).dtype == np.float64
    with pytest.raises(ValueError, match="expected a number"):
        as_numbers("abc")
    assert round_finite(0.12345678) == 0.123457 and math.isnan(round_finite(float("inf")))
