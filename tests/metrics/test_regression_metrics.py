"""Regression metrics, Bland-Altman statistics and the bootstrap helper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from monai_bone.metrics import bland_altman, bootstrap_ci, regression_metrics


def test_regression_metrics_hand_computed():
    m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m["n"] == 3
    assert m["mse"] == pytest.approx(1 / 3)
    assert m["mae"] == pytest.approx(1 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    # SS_tot = (1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2 = 42/9 ; SS_res = 1
    assert m["r2"] == pytest.approx(1 - 9 / 42)
    assert m["bias"] == pytest.approx(-1 / 3)


def test_regression_metrics_against_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    true = rng.normal(0.85, 0.12, 50)
    pred = 0.8 * true + 0.15 + rng.normal(0, 0.05, 50)
    m = regression_metrics(torch.tensor(pred)[:, None], true[:, None])
    assert m["mse"] == pytest.approx(mean_squared_error(true, pred))
    assert m["mae"] == pytest.approx(mean_absolute_error(true, pred))
    assert m["r2"] == pytest.approx(r2_score(true, pred))
    assert m["pearson_r"] == pytest.approx(pearsonr(pred, true)[0])


def test_regression_metrics_degenerate_and_bad_input():
    m = regression_metrics([0.8, 0.9], [0.85, 0.85])
    assert math.isnan(m["r2"]) and math.isnan(m["pearson_r"])
    assert m["mae"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="differ in length"):
        regression_metrics([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        regression_metrics([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        regression_metrics([], [])


def test_bland_altman_hand_computed():
    ba = bland_altman([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    # differences 0, 0, -1: mean -1/3, sample SD sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3)
    sd = math.sqrt(1 / 3)
    assert ba["bias"] == pytest.approx(-1 / 3)
    assert ba["sd"] == pytest.approx(sd)
    assert ba["loa_lower"] == pytest.approx(-1 / 3 - 1.96 * sd)
    assert ba["loa_upper"] == pytest.approx(-1 / 3 + 1.96 * sd)
    assert bland_altman([1.0, 2.0], [1.5, 2.0], limits=2.0)["loa_upper"] == pytest.approx(-0.25 + 2 * math.sqrt(0.125))
    assert math.isnan(bland_altman([1.0], [2.0])["sd"])


def test_bootstrap_ci_of_the_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, 400)
    ci = bootstrap_ci(np.mean, x, n_boot=400, seed=7)
    assert ci["value"] == pytest.approx(x.mean())
    assert ci["low"] < ci["value"] < ci["high"]
    half = (ci["high"] - ci["low"]) / 2
    assert half == pytest.approx(1.96 * x.std(ddof=1) / math.sqrt(x.size), rel=0.25)
    assert ci["n_valid"] == 400 and ci["level"] == 0.95
    assert bootstrap_ci(np.mean, x, n_boot=50, seed=7) == bootstrap_ci(np.mean, x, n_boot=50, seed=7)


def test_bootstrap_ci_paired_and_nan_resamples():
    pred = np.array([0.7, 0.8, 0.9, 1.0, 1.1])
    true = pred + 0.01
    ci = bootstrap_ci(lambda p, t: regression_metrics(p, t)["mae"], pred, true, n_boot=30)
    assert ci["low"] == pytest.approx(0.01) and ci["high"] == pytest.approx(0.01)  # paired: error is always 0.01

    def first_or_nan(a):
        return float(a[0]) if a[0] > 0 else float("nan")

    ci = bootstrap_ci(first_or_nan, np.array([-1.0, 1.0]), n_boot=200, seed=0)
    assert 0 < ci["n_valid"] < 200
    assert ci["low"] == ci["high"] == 1.0


def test_bootstrap_ci_bad_input():
    with pytest.raises(ValueError, match="at least one array"):
        bootstrap_ci(np.mean)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(np.mean, [1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(np.mean, [1.0, 2.0], level=1.0)
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_ci(lambda a, b: 0.0, [1.0, 2.0], [1.0])
