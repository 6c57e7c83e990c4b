"""Subgroup metrics of CV rows (monai_bone.cv.subgroups)."""

from __future__ import annotations

import numpy as np
import pytest

from monai_bone.cv import FoldPrediction, VariantResult
from monai_bone.cv.subgroups import subgroup_of, subgroup_rows


def test_bands_and_missing_fields():
    assert subgroup_of({"sex": "F", "age_xray": 79.9, "bmi": 30.0}) == {
        "sex": "F",
        "age_band": "70-80",
        "bmi_band": ">=30",
    }
    assert subgroup_of({"age_bmd": 65}) == {"sex": None, "age_band": "<70", "bmi_band": None}


def test_subgroup_rows_split_by_sex_with_exact_metrics():
    true = np.array([0.7, 0.8, 0.9, 1.0, 0.75, 0.95])
    pred = true + np.array([0.1, 0.1, 0.1, 0.1, 0.0, 0.0])  # women off by 0.1, men exact
    ids = ["a", "b", "c", "d", "e", "f"]
    res = VariantResult("x", "x", "baseline", folds=[FoldPrediction(0, pred, true, ids)])
    people = {i: {"sex": "F" if i in "abcd" else "M", "age_xray": 75.0} for i in ids}
    rows = {(r["subgroup"], r["value"]): r for r in subgroup_rows("hip", res, people)}
    assert rows[("sex", "F")]["n"] == 4 and rows[("sex", "F")]["mae"] == pytest.approx(0.1)
    assert rows[("sex", "M")]["mae"] == 0.0 and rows[("sex", "M")]["r2"] == 1.0
    assert rows[("age_band", "70-80")]["n"] == 6 and ("bmi_band", None) not in rows
