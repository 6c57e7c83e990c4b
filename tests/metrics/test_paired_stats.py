"""Patient-level bootstrap, paired bootstrap and DeLong's test (monai_bone.metrics.paired)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from monai_bone.metrics import (
    bootstrap_ci,
    delong_auc_variance,
    delong_test,
    group_bootstrap_indices,
    paired_bootstrap,
    regression_metrics,
)

# Hand-worked example (DeLong et al. 1988 definitions): 3 positives, 3 negatives, two models.
Y = np.array([1, 1, 1, 0, 0, 0])
A = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.2])  # AUC 8/9; V10 = [1, 1, 2/3], V01 = [2/3, 1, 1]
B = np.array([0.6, 0.5, 0.1, 0.55, 0.4, 0.05])  # AUC 6/9; V10 = [1, 2/3, 1/3], V01 = [1/3, 2/3, 1]


def test_delong_variance_hand_computed():
    out = delong_auc_variance(Y, A)
    assert out["auc"] == pytest.approx(8 / 9)
    # S10 = var([1, 1, 2/3]) = 1/27, S01 = var([2/3, 1, 1]) = 1/27; var = S10/3 + S01/3 = 2/81
    assert out["var"] == pytest.approx(2 / 81)


def test_delong_test_hand_computed():
    out = delong_test(Y, A, B)
    assert out["auc_a"] == pytest.approx(8 / 9) and out["auc_b"] == pytest.approx(6 / 9)
    # var_b = (1/9)/3 + (1/9)/3; cov = (1/18)/3 + (1/18)/3; var(diff) = 2/81 + 2/27 - 2 * 1/27 = 2/81
    assert out["var_b"] == pytest.approx(2 / 27)
    assert out["cov"] == pytest.approx(1 / 27)
    assert out["se"] == pytest.approx(math.sqrt(2 / 81))
    assert out["z"] == pytest.approx(math.sqrt(2))
    assert out["p_value"] == pytest.approx(2 * norm.sf(math.sqrt(2)))  # 0.1573
    assert out["p_value"] == pytest.approx(0.157299, abs=1e-6)


def _naive_delong(y, scores):
    """O(m n) definition with ties counted 1/2: the structural components written out."""
    pos, neg = [s[y == 1] for s in scores], [s[y == 0] for s in scores]

    def psi(x, z):
        return (x > z) + 0.5 * (x == z)

    v10 = np.array([[psi(p, neg[k]).mean() for p in pos[k]] for k in range(len(scores))])
    v01 = np.array([[psi(pos[k], q).mean() for q in neg[k]] for k in range(len(scores))])
    return v10.mean(axis=1), np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]


def test_delong_matches_definition_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    a = np.round(y + rng.normal(0, 1, 60), 1)  # rounding makes ties
    b = np.round(0.5 * y + rng.normal(0, 1, 60), 1)
    aucs, cov = _naive_delong(y, [a, b])
    out = delong_test(y, a, b)
    assert out["auc_a"] == pytest.approx(roc_auc_score(y, a)) == pytest.approx(aucs[0])
    assert out["var_a"] == pytest.approx(cov[0, 0]) and out["cov"] == pytest.approx(cov[0, 1])
    assert out["var_b"] == pytest.approx(cov[1, 1])
    assert delong_auc_variance(y, a)["var"] == pytest.approx(cov[0, 0])


def test_delong_rejects_one_class():
    with pytest.raises(ValueError, match="both classes"):
        delong_test(np.ones(4), np.arange(4.0), np.arange(4.0))


def _mse(p, t):
    return float(np.mean((p - t) ** 2))


def test_paired_bootstrap_covers_known_difference():
    covered, trials = 0, 30
    for s in range(trials):
        rng = np.random.default_rng(100 + s)
        true = rng.normal(0.85, 0.13, 200)
        a = true + rng.normal(0, 0.05, 200)  # expected MSE 0.0025
        b = true + rng.normal(0, 0.10, 200)  # expected MSE 0.0100
        out = paired_bootstrap(_mse, a, b, true, n_boot=300, seed=s)
        covered += out["diff_low"] <= -0.0075 <= out["diff_high"]
        assert out["diff"] == pytest.approx(out["a"] - out["b"])
    assert covered >= 0.8 * trials
    assert out["p_value"] < 0.01 and out["rel"] < -50


def test_paired_bootstrap_no_difference_large_p():
    rng = np.random.default_rng(0)
    true = rng.normal(size=150)
    a, b = true + rng.normal(0, 0.3, 150), true + rng.normal(0, 0.3, 150)
    out = paired_bootstrap(_mse, a, b, true, groups=[str(i // 2) for i in range(150)], n_boot=400)
    assert out["diff_low"] < 0 < out["diff_high"] and out["p_value"] > 0.05 and out["unit"] == "patient"


def test_patient_ci_wider_than_image_ci_with_duplicated_patients():
    rng = np.random.default_rng(1)
    true = rng.normal(0.85, 0.13, 60)
    pred = true + rng.normal(0, 0.08, 60)
    # every patient contributes the same image 4 times: 240 rows but only 60 independent patients
    t4, p4, g4 = np.repeat(true, 4), np.repeat(pred, 4), np.repeat(np.arange(60), 4)

    def r2(p, t):
        return regression_metrics(p, t)["r2"]

    image = bootstrap_ci(r2, p4, t4, n_boot=400, seed=0)
    patient = bootstrap_ci(r2, p4, t4, n_boot=400, seed=0, groups=g4)
    assert patient["value"] == image["value"]
    assert (patient["high"] - patient["low"]) > 1.5 * (image["high"] - image["low"])


def test_group_bootstrap_keeps_patients_whole():
    groups = ["a", "a", "b", "c", "c", "c"]
    for idx in group_bootstrap_indices(groups, 6, 50, seed=2):
        drawn = [groups[i] for i in idx]
        for g, size in (("a", 2), ("b", 1), ("c", 3)):
            assert drawn.count(g) % size == 0
