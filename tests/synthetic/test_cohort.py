"""Tests of the synthetic cohort model (no rendering)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_bone.constants import (
    CATEGORICAL_CODES,
    CLINICAL_FIELDS,
    KNEE_LABELS_BINARY,
    KNEE_LABELS_THREE,
    NUMERIC_FIELDS,
    PLAUSIBLE_RANGES,
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    WHO_CLASSES,
)
from monai_bone.synthetic.cohort import (
    bmd_clinical,
    default_params,
    draw_population,
    population_r2,
    sample_cohort,
    t_score_of,
    who_class_index,
)


@pytest.fixture(scope="module")
def big_hip():
    return sample_cohort("hip", 4000, seed=11)


def test_hip_share_below_threshold_and_demographics(big_hip):
    bmd = big_hip.bmd()
    share = float(np.mean(bmd < SCREENING_THRESHOLD))
    assert 0.45 <= share <= 0.65, share
    ages = np.array([s.age_xray for s in big_hip.subjects])
    assert ages.min() >= 71.6 and ages.max() <= 80.6
    female = np.mean([s.sex == "F" for s in big_hip.subjects])
    assert abs(female - 0.489) < 0.03
    assert big_hip.summary()["counts"]["share_below_threshold"] == pytest.approx(share)


def test_fields_are_complete_plausible_and_consistent(big_hip):
    for s in big_hip.subjects[:500]:
        clinical = s.clinical()
        assert list(clinical) == list(CLINICAL_FIELDS)
        for name in NUMERIC_FIELDS:
            lo, hi = PLAUSIBLE_RANGES[name]
            assert lo <= clinical[name] <= hi, (name, clinical[name])
        for name, codes in CATEGORICAL_CODES.items():
            assert clinical[name] in codes
        assert s.bmi == pytest.approx(round(s.weight / s.height**2, 2))
        assert abs(s.age_bmd - s.age_xray) <= 1.5 + 1e-9
        assert s.patient_id.startswith("SYN-H-")
    ids = [s.patient_id for s in big_hip.subjects]
    assert len(set(ids)) == len(ids) and ids[0] == "SYN-H-0001"


def test_bmd_formula_directions():
    p = default_params("hip")
    base = {
        "sex": np.array(["F"]),
        "age_bmd": np.array([75.0]),
        "bmi": np.array([27.0]),
        "height": np.array([1.66]),
        "smoking": np.array(["never"]),
        "activity": np.array([4.5]),
        "alcohol": np.array([0.0]),
        "diet_score": np.array([0.0]),
    }
    f0 = bmd_clinical(base, p)[0]
    assert f0 == pytest.approx(p.b0)

    def changed(**kw):
        return bmd_clinical({**base, **{k: np.array([v]) for k, v in kw.items()}}, p)[0]

    assert changed(age_bmd=80.0) < f0  # falls with age
    assert changed(sex="M") > f0  # higher in men
    assert changed(bmi=32.0) > f0  # higher with BMI
    assert changed(smoking="current") < changed(smoking="former") < f0  # lower with smoking
    assert changed(activity=0.0) < f0  # lower with low activity
    assert changed(alcohol=40.0) < f0  # heavy drinking
    # and in a drawn population: men above women, age negatively correlated
    pop = draw_population(p, 20000, np.random.default_rng(0))
    assert pop["bmd"][pop["sex"] == "M"].mean() > pop["bmd"][pop["sex"] == "F"].mean() + 0.05
    assert np.corrcoef(pop["age_bmd"], pop["bmd_clinical"])[0, 1] < 0


def test_oracle_and_clinical_r2_are_well_defined_and_match_a_large_sample():
    for task in ("hip", "knee"):
        ceil = population_r2(default_params(task))
        assert 0.8 <= ceil["oracle_r2"] <= 0.9, ceil
        assert 0.3 <= ceil["clinical_r2"] <= 0.5, ceil
        assert ceil["oracle_r2"] - ceil["clinical_r2"] > 0.3
        assert ceil == population_r2(default_params(task))  # a property of the parameters, not of a cohort
    # the stated values equal what the best predictors reach on fresh independent subjects
    pop = draw_population(default_params("hip"), 50000, np.random.default_rng(5))
    var = np.var(pop["bmd"])
    oracle = 1 - np.mean((pop["bmd"] - pop["bmd_visible"]) ** 2) / var
    clinical = 1 - np.mean((pop["bmd"] - pop["bmd_clinical"]) ** 2) / var
    ceil = population_r2(default_params("hip"))
    assert oracle == pytest.approx(ceil["oracle_r2"], abs=0.015)
    assert clinical == pytest.approx(ceil["clinical_r2"], abs=0.015)


def test_t_score_and_who_classes_at_the_anchors():
    assert t_score_of(SCREENING_THRESHOLD) == pytest.approx(-1.0)
    assert who_class_index(t_score_of(SCREENING_THRESHOLD)) == 0  # T = -1 is normal
    assert who_class_index(t_score_of(SCREENING_THRESHOLD - 1e-4)) == 1
    assert who_class_index(t_score_of(REFERENCE_MEAN - 2.5 * REFERENCE_SD)) == 2  # T = -2.5 is osteoporosis
    assert who_class_index(t_score_of(REFERENCE_MEAN - 2.5 * REFERENCE_SD + 1e-4)) == 1


def test_hip_labels_and_t_scores_follow_the_contract(big_hip):
    for s in big_hip.subjects[:500]:
        assert s.label == int(s.bmd < SCREENING_THRESHOLD)
        assert s.t_score == pytest.approx((s.bmd - REFERENCE_MEAN) / REFERENCE_SD, abs=1e-6)
        assert s.who_class == WHO_CLASSES[int(who_class_index(s.t_score))]
        assert math.isfinite(s.bmd_clinical)
    # the components carry the stated noise levels
    p = big_hip.params
    err = np.array([s.bmd - s.bmd_visible for s in big_hip.subjects])
    vis = np.array([s.bmd_visible - s.bmd_clinical for s in big_hip.subjects])
    assert np.std(err) == pytest.approx(p.sigma_invisible, rel=0.06)
    assert np.std(vis) == pytest.approx(p.sigma_visible, rel=0.06)


def test_knee_two_classes_are_balanced_without_osteopenia():
    cohort = sample_cohort("knee", 41, seed=2, n_classes=2)
    labels = [s.label for s in cohort.subjects]
    assert labels.count(0) == 21 and labels.count(1) == 20
    assert cohort.labels == KNEE_LABELS_BINARY
    for s in cohort.subjects:
        assert s.who_class != "osteopenia"
        assert KNEE_LABELS_BINARY[s.label] == s.who_class
        assert s.patient_id.startswith("SYN-K-")
    assert cohort.candidates_drawn > 41  # osteopenia (and surplus) candidates were re-drawn
    summary = cohort.summary()
    assert summary["counts"]["label"] == {"normal": 21, "osteoporosis": 20}
    assert 0.5 < summary["reference_accuracy"] <= 1.0


def test_knee_three_classes_quotas():
    cohort = sample_cohort("knee", 10, seed=4, n_classes=3)
    assert cohort.labels == KNEE_LABELS_THREE
    counts = [sum(s.label == i for s in cohort.subjects) for i in range(3)]
    assert counts == [4, 3, 3]
    assert all(KNEE_LABELS_THREE[s.label] == s.who_class for s in cohort.subjects)


def test_seed_determinism():
    a = sample_cohort("hip", 30, seed=7)
    b = sample_cohort("hip", 30, seed=7)
    c = sample_cohort("hip", 30, seed=8)
    assert a.subjects == b.subjects
    assert [s.bmd for s in a.subjects] != [s.bmd for s in c.subjects]
    assert sample_cohort("knee", 12, seed=1).subjects == sample_cohort("knee", 12, seed=1).subjects


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "spine", "n": 3}, "unknown task"),
        ({"task": "hip", "n": 0}, "at least 1"),
        ({"task": "hip", "n": 3, "n_classes": 3}, "knee task only"),
        ({"task": "knee", "n": 3, "n_classes": 4}, "2 or 3"),
        ({"task": "hip", "n": 3, "params": default_params("knee")}, "params are for task"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_cohort(**kwargs)
