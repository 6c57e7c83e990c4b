"""Operating points chosen without the scored labels; calibration and agreement (metrics.operating_points)."""

from __future__ import annotations

import numpy as np
import pytest

from monai_bone.metrics.operating_points import (
    bland_altman_ci,
    brier_ece,
    calibration_line,
    choose_threshold,
    cross_fitted_operating_points,
    sensitivity_at_specificity,
)


def test_thresholds_on_known_scores():
    score = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    positive = score > 0.5
    assert choose_threshold(score, positive) == 0.6  # Youden: the perfect cut
    cut = choose_threshold(score, positive, "sensitivity", 0.75)
    assert cut == 0.7 and (score[positive] >= cut).mean() >= 0.75
    assert sensitivity_at_specificity(score, positive, 0.9) == 1.0
    noisy = np.array([0.1, 0.2, 0.7, 0.4, 0.6, 0.3, 0.8, 0.9])
    assert sensitivity_at_specificity(noisy, positive, 1.0) == 0.5  # 0.8, 0.9 above every negative
    with pytest.raises(ValueError, match="rule"):
        choose_threshold(score, positive, "f1")


def test_cross_fitted_thresholds_never_use_the_held_out_labels():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.3
    score = y + rng.normal(0, 0.8, 200)
    folds = np.arange(200) % 4
    out = cross_fitted_operating_points(score, y, folds)
    flipped = y.copy()
    flipped[folds == 0] = ~flipped[folds == 0]  # other labels in fold 0 only
    again = cross_fitted_operating_points(score, flipped, folds)
    # fold 0's threshold is chosen on folds 1-3, whose labels did not change: its calls are identical
    cut0 = choose_threshold(score[folds != 0], y[folds != 0])
    assert cut0 == choose_threshold(score[folds != 0], flipped[folds != 0])
    assert out["youden"]["sensitivity"] != again["youden"]["sensitivity"]  # the scoring uses the truth, of course
    assert out["sens90"]["sensitivity"] >= 0.8 and 0 <= out["youden"]["specificity"] <= 1


def test_calibration_and_agreement():
    rng = np.random.default_rng(1)
    true = rng.normal(0.85, 0.13, 300)
    assert calibration_line(true, true) == pytest.approx({"slope": 1.0, "intercept": 0.0}, abs=1e-9)
    shrunk = 0.85 + 0.5 * (true - 0.85)  # predictions shrunk toward the mean: slope 2
    assert calibration_line(shrunk, true)["slope"] == pytest.approx(2.0)
    pred = true + 0.1 + rng.normal(0, 0.05, 300)
    ba = bland_altman_ci(pred, true)
    assert ba["bias_low"] < 0.1 < ba["bias_high"] and ba["loa_lower_low"] < ba["loa_lower"] < ba["loa_lower_high"]
    assert abs(ba["proportional_slope"]) < 0.15  # only the small artefact of the shared noise
    assert bland_altman_ci(shrunk, true)["proportional_p"] < 1e-6  # difference falls with the mean
    assert brier_ece([0.0, 1.0, 1.0], [0, 1, 1]) == {"brier": 0.0, "ece": 0.0, "n_bins": 10}
    assert brier_ece([0.8] * 10, [1] * 4 + [0] * 6)["ece"] == pytest.approx(0.4)
