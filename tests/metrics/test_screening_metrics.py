"""T-score, WHO class and hip screening metrics against hand-computed and scikit-learn values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from monai_bone.constants import REFERENCE_MEAN, REFERENCE_SD, SCREENING_THRESHOLD, WHO_CLASSES
from monai_bone.metrics import (
    bmd_from_t,
    screening_metrics,
    screening_positive,
    t_score,
    who_class,
    who_class_index,
)


def test_t_score_values_and_types():
    assert t_score(REFERENCE_MEAN) == 0.0
    assert t_score(SCREENING_THRESHOLD) == pytest.approx(-1.0, abs=1e-12)
    assert t_score(1.0, ref_mean=0.9, ref_sd=0.1) == pytest.approx(1.0)
    arr = t_score([0.899, 0.719, 1.139])
    assert isinstance(arr, np.ndarray)
    np.testing.assert_allclose(arr, [-1.0, -2.5, 1.0], atol=1e-12)
    ten = t_score(torch.tensor([0.899, 1.019], dtype=torch.float64))
    assert isinstance(ten, torch.Tensor)
    torch.testing.assert_close(ten, torch.tensor([-1.0, 0.0], dtype=torch.float64))
    assert isinstance(t_score(0.8), float)


def test_bmd_from_t_is_inverse_and_uses_reference():
    assert bmd_from_t(-1.0) == pytest.approx(SCREENING_THRESHOLD)
    assert bmd_from_t(-2.5) == pytest.approx(REFERENCE_MEAN - 2.5 * REFERENCE_SD)
    assert bmd_from_t(-2.5) == pytest.approx(0.719)
    assert bmd_from_t(-2.0, ref_mean=1.0, ref_sd=0.1) == pytest.approx(0.8)
    for b in (0.5, 0.8, 1.3):
        assert bmd_from_t(t_score(b, 0.95, 0.11), 0.95, 0.11) == pytest.approx(b)


@pytest.mark.parametrize("ref", [(1.0, 0.0), (1.0, -0.1), (float("nan"), 0.1), (1.0, float("inf"))])
def test_bad_reference_raises(ref):
    with pytest.raises(ValueError, match="reference"):
        t_score(0.9, *ref)
    with pytest.raises(ValueError, match="reference"):
        bmd_from_t(-1.0, *ref)


@pytest.mark.parametrize(
    "t, expected",
    [
        (0.0, "normal"),
        (-1.0, "normal"),  # T = -1 exactly is normal
        (-1.001, "osteopenia"),
        (-2.0, "osteopenia"),
        (-2.499, "osteopenia"),
        (-2.5, "osteoporosis"),  # T = -2.5 exactly is osteoporosis
        (-2.501, "osteoporosis"),
        (-4.0, "osteoporosis"),
        (1.5, "normal"),
    ],
)
def test_who_class_boundaries(t, expected):
    assert who_class(t) == expected
    assert who_class_index(t) == WHO_CLASSES.index(expected)


def test_who_class_of_threshold_bmd_survives_round_off():
    # (0.899 - 1.019) / 0.12 is -1.0000000000000009 in float64 and a float32 0.899 is 0.89899999
    assert t_score(0.899) < -1.0
    assert who_class(t_score(0.899)) == "normal"
    assert who_class(t_score(float(np.float32(0.899)))) == "normal"
    assert who_class(t_score(0.719)) == "osteoporosis"
    assert who_class(t_score(float(np.float32(0.719)))) == "osteoporosis"
    assert who_class(t_score(0.8989)) == "osteopenia"
    assert who_class(t_score(0.7191)) == "osteopenia"


def test_who_class_arrays_and_nan():
    assert who_class([-0.5, -1.5, -3.0]) == ["normal", "osteopenia", "osteoporosis"]
    np.testing.assert_array_equal(who_class_index(np.array([[-0.5], [-2.5]])), [[0], [2]])
    assert who_class(torch.tensor([-1.0, -2.6])) == ["normal", "osteoporosis"]
    with pytest.raises(ValueError, match="finite"):
        who_class(float("nan"))


def test_screening_positive_strict_and_inclusive():
    np.testing.assert_array_equal(screening_positive([0.899, 0.8989, 0.95, 0.5]), [False, True, False, True])
    np.testing.assert_array_equal(screening_positive(np.float32([0.899])), [False])
    thr = bmd_from_t(-2.5)
    np.testing.assert_array_equal(screening_positive([0.719, 0.7191, 0.7189], thr, inclusive=True), [True, False, True])
    np.testing.assert_array_equal(screening_positive([0.719], thr, inclusive=False), [False])


def test_screening_metrics_hand_computed():
    pred = [0.80, 0.95, 0.85, 0.70]
    true = [0.85, 0.80, 0.95, 0.60]
    # truth positive (true < 0.899): T T F T ; decision (pred < 0.899): T F T T
    m = screening_metrics(pred, true, 0.899)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 0, 1)
    assert m["n"] == 4 and m["n_positive"] == 3
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == 0.0
    assert m["fpr"] == 1.0
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(0.5)
    # scores -pred: positives -0.80, -0.95, -0.70 vs negative -0.85 -> 2 of 3 pairs ranked right
    assert m["auc"] == pytest.approx(2 / 3)


def test_screening_metrics_against_sklearn():
    rng = np.random.default_rng(3)
    true = rng.normal(0.85, 0.12, 60)
    pred = true + rng.normal(0.0, 0.06, 60)
    for thr, inclusive in ((0.899, False), (bmd_from_t(-2.5), True)):
        m = screening_metrics(pred, true, thr, inclusive)
        y = true <= thr if inclusive else true < thr
        d = pred <= thr if inclusive else pred < thr
        assert 0 < y.sum() < y.size
        assert m["auc"] == pytest.approx(roc_auc_score(y, -pred))
        assert m["precision"] == pytest.approx(precision_score(y, d))
        assert m["recall"] == pytest.approx(recall_score(y, d))
        assert m["specificity"] == pytest.approx(recall_score(~y, ~d))
        assert m["f1"] == pytest.approx(f1_score(y, d))
        assert m["accuracy"] == pytest.approx(accuracy_score(y, d))


def test_screening_metrics_undefined_values_are_nan():
    m = screening_metrics([1.0, 1.1], [0.8, 1.2])  # no predicted positive
    assert math.isnan(m["precision"])
    assert m["recall"] == 0.0
    m = screening_metrics([0.8, 1.1], [1.0, 1.2])  # no true positive: AUC undefined
    assert math.isnan(m["auc"]) and math.isnan(m["recall"])


def test_screening_metrics_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        screening_metrics([0.8, 0.9], [0.8])
    with pytest.raises(ValueError, match="NaN"):
        screening_metrics([0.8, float("nan")], [0.8, 0.9])
    with pytest.raises(ValueError, match="at least one"):
        screening_metrics([], [])
    with pytest.raises(ValueError, match="shape"):
        screening_metrics(np.zeros((2, 2)), np.zeros((2, 2)))
