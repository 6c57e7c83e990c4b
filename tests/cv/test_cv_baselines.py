"""OST index and clinical-only baselines: formula, per-fold fit, missing-value handling."""

from __future__ import annotations

import numpy as np
import pytest

from monai_bone.cv.baselines import ClinicalBaseline, OSTBaseline, clinical_matrix, ost_index


def _cohort(n: int, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    rng = np.random.default_rng(seed)
    records, bmd = [], []
    for i in range(n):
        age, weight, sex = rng.uniform(65, 85), rng.normal(72, 12), rng.choice(["F", "M"])
        records.append(
            {
                "age_xray": age if i % 9 else None,
                "weight": weight if i % 7 else None,
                "sex": sex,
                "smoking": rng.choice(["never", "former", "current"]) if i % 5 else None,
                "bmi": weight / 1.68**2 if i % 7 else None,
                "height": None,  # missing in every record
            }
        )
        bmd.append(0.85 + 0.004 * (weight - 72) - 0.008 * (age - 75) + 0.07 * (sex == "M") + rng.normal(0, 0.03))
    return records, np.array(bmd)


def test_ost_index_formula() -> None:
    np.testing.assert_allclose(ost_index([70.0, 50.0], [75.0, 80.0]), [-1.0, -6.0])
    assert np.isnan(ost_index(np.nan, 70.0))


def test_ost_baseline_fit_and_missing() -> None:
    records, bmd = _cohort(80)
    model = OSTBaseline().fit(records[:60], bmd[:60])
    assert model.slope > 0  # heavier and younger -> higher BMD
    pred = model.predict(records[60:])
    assert pred.shape == (20,) and np.all(np.isfinite(pred))
    no_weight = {"age_xray": 70.0, "weight": None}
    assert model.predict([no_weight])[0] == pytest.approx(bmd[:60].mean())
    age_bmd_only = {"age_bmd": 70.0, "weight": 80.0}  # falls back to the age at the DXA scan
    assert model.predict([age_bmd_only])[0] == pytest.approx(model.intercept + model.slope * 2.0)
    with pytest.raises(ValueError, match="at least two"):
        OSTBaseline().fit([{"weight": None}] * 3, [0.8, 0.9, 1.0])
    with pytest.raises(RuntimeError, match="before fit"):
        OSTBaseline().predict(records)


def test_clinical_matrix_codes_and_nan() -> None:
    m = clinical_matrix([{"sex": "M", "smoking": "former", "weight": "70"}, {"sex": "X"}], ("sex", "smoking", "weight"))
    np.testing.assert_array_equal(m[0], [1.0, 1.0, 70.0])
    assert np.isnan(m[1]).all()


@pytest.mark.parametrize("kind", ["ridge", "gbm"])
def test_clinical_baseline_learns_signal(kind: str) -> None:
    records, bmd = _cohort(200, seed=1)
    model = ClinicalBaseline(kind).fit(records[:150], bmd[:150])
    pred = model.predict(records[150:])
    assert pred.shape == (50,) and np.all(np.isfinite(pred))
    assert np.corrcoef(pred, bmd[150:])[0, 1] > 0.5
    assert "height" not in [model.fields[c] for c in model.columns]  # all-missing field unused, not imputed


def test_clinical_baseline_errors() -> None:
    with pytest.raises(ValueError, match="model must be one of"):
        ClinicalBaseline("svm")
    with pytest.raises(ValueError, match="NaN"):
        ClinicalBaseline().fit([{"age_xray": 70.0}], [float("nan")])
    with pytest.raises(ValueError, match="empty"):
        ClinicalBaseline().fit([], [])
