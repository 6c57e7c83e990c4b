"""The evaluation report's maths as pure functions: operating-point summary and subgroup tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_bone.metrics import (
    ON_SCORED_SPLIT,
    choose_threshold,
    operating_point_summary,
    rates_at_cut,
    sensitivity_at_specificity,
    subgroup_table,
)


def test_operating_point_summary_on_reference_vs_scored_split():
    rng = np.random.default_rng(1)
    y = rng.random(60) < 0.4
    score = y * 1.0 + rng.normal(0, 0.8, 60)
    ref_y = rng.random(80) < 0.4
    ref_score = ref_y * 1.0 + 0.5 + rng.normal(0, 0.8, 80)  # shifted: its cuts differ from the scored split's

    own = operating_point_summary(score, y, fixed_cut=0.5)
    assert own["thresholds_chosen_on"] == ON_SCORED_SPLIT
    assert own["youden"]["threshold"] == choose_threshold(score, y, "youden")
    assert (own["fixed"]["sensitivity"], own["fixed"]["specificity"]) == rates_at_cut(score, y, 0.5)
    assert own["sens90"]["sensitivity"] >= 0.9
    assert own["sens_at_spec80"] == sensitivity_at_specificity(score, y, 0.8)
    assert own["n_positive"] == y.sum() and own["n_negative"] == (~y).sum()

    ref = operating_point_summary(score, y, reference=(ref_score, ref_y), reference_name="training folds")
    assert ref["thresholds_chosen_on"] == "training folds" and "fixed" not in ref
    cut = choose_threshold(ref_score, ref_y, "youden")
    assert ref["youden"]["threshold"] == cut != own["youden"]["threshold"]
    assert (ref["youden"]["sensitivity"], ref["youden"]["specificity"]) == rates_at_cut(score, y, cut)
    assert ref["sens_at_spec90"] == own["sens_at_spec90"]  # a readout of the scored ROC: no threshold chosen

    one_class = operating_point_summary(score, np.ones(60, bool))
    assert math.isnan(one_class["youden"]["threshold"]) and math.isnan(one_class["youden"]["sensitivity"])


def test_subgroup_table_counts_patients_and_matches_direct_metrics():
    true = np.array([0.7, 0.8, 0.95, 1.0, 0.75, 0.95])
    pred = true + np.array([0.1, -0.1, 0.05, 0.0, 0.0, 0.0])
    groups = [{"sex": s, "age_band": a} for s, a in zip("FFFMMM", ["<70", "<70", None, ">=80", ">=80", "<70"])]
    rows = {(r["subgroup"], r["value"]): r for r in subgroup_table("hip", pred, true, groups, list("aabcde"))}
    f = rows[("sex", "F")]
    assert (f["n_studies"], f["n_patients"]) == (3, 2)  # patient "a" has two studies
    assert f["mae"] == pytest.approx(np.mean(np.abs(pred[:3] - true[:3])))
    assert rows[("sex", "M")]["r2"] == pytest.approx(1.0)
    assert rows[("age_band", "<70")]["n_studies"] == 3 and ("age_band", None) not in rows
    knee = subgroup_table("knee", [0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1], [{"class": c} for c in ("o", "n", "n", "o")])
    by = {r["value"]: r for r in knee}
    assert by["o"]["accuracy"] == 0.5 and by["n"]["accuracy"] == 0.5 and math.isnan(by["o"]["auc"])
    with pytest.raises(ValueError, match="unknown task"):
        subgroup_table("spine", [1.0], [1.0], [{"sex": "F"}])
