"""Issue 11 items 5-7 in the evaluation report: operating points, calibration/agreement and subgroups in
``metrics.json``, each checked against a direct computation, each carrying split / n_studies / n_patients /
selected_on_split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _bone_handler_helpers import (
    HIP_PRED,
    HIP_TRUE,
    KNEE_BINARY_LABELS,
    direct_outputs,
    evaluator,
    hip_records,
    knee_records,
    linear_net,
    pixel_net,
)

from monai_bone.handlers import BoneReportWriter
from monai_bone.metrics import bland_altman, screening_positive, to_probability
from monai_bone.metrics.operating_points import (
    ON_SCORED_SPLIT,
    brier_ece,
    calibration_line,
    choose_threshold,
    rates_at_cut,
    sensitivity_at_specificity,
)

EVIDENCE = ("split", "n_studies", "n_patients", "selected_on_split")
SEX = ["F", "F", "M", "F", "M", "M", "F"]
AGE = [65.0, 72.0, 78.0, 81.0, 69.0, None, 90.0]
BMI = [22.0, 27.0, 31.0, 24.0, 26.0, 29.0, None]


def _people(prefix: str = "SYN-H") -> list[dict]:
    """Datalist-style records of the helper studies (the report joins them by image path)."""
    return [
        {"image": f"/data/study_{i:02d}.dcm", "patient_id": f"{prefix}-{i + 1:04d}", "sex": s, "age_xray": a, "bmi": b}
        for i, (s, a, b) in enumerate(zip(SEX, AGE, BMI))
    ]


def _run(tmp_path, **kwargs) -> dict:
    writer = BoneReportWriter(tmp_path, task="hip", n_bootstrap=0, plots=False, split="test", **kwargs)
    evaluator(pixel_net(), hip_records(), handlers=[writer]).run()
    return json.loads((tmp_path / "metrics.json").read_text())


def test_hip_subgroups_match_direct_computation(tmp_path):
    m = _run(tmp_path, records=_people(), selected_on_split=False)
    rows = {(r["subgroup"], r["value"]): r for r in m["subgroups"]}
    for sex in ("F", "M"):
        sel = np.array([s == sex for s in SEX])
        row = rows[("sex", sex)]
        assert row["n_studies"] == row["n_patients"] == sel.sum()
        assert row["mae"] == pytest.approx(np.mean(np.abs(HIP_PRED[sel] - HIP_TRUE[sel])))
        assert row["split"] == "test" and row["selected_on_split"] is False
    assert rows[("age_band", ">=80")]["n_studies"] == 2  # 81 and 90; the missing age is left out
    assert sum(r["n_studies"] for k, r in rows.items() if k[0] == "age_band") == 6
    assert rows[("bmi_band", ">=30")]["n_studies"] == 1 and ("bmi_band", None) not in rows


def test_hip_operating_points_chosen_on_the_scored_split_say_so(tmp_path):
    m = _run(tmp_path, records=_people(), selected_on_split=False)
    ops = m["operating_points"]
    assert ops["thresholds_chosen_on"] == ON_SCORED_SPLIT
    assert {k: ops[k] for k in EVIDENCE} == {
        "split": "test",
        "n_studies": 7,
        "n_patients": 7,
        "selected_on_split": False,
    }
    low = ops["targets"]["low_bmd"]
    positive = screening_positive(HIP_TRUE, 0.899)
    cut = choose_threshold(-HIP_PRED, positive, "youden")
    assert low["youden"]["threshold_bmd"] == pytest.approx(-cut)
    assert (low["youden"]["sensitivity"], low["youden"]["specificity"]) == pytest.approx(
        rates_at_cut(-HIP_PRED, positive, cut)
    )
    sens90 = choose_threshold(-HIP_PRED, positive, "sensitivity", 0.9)
    assert low["sens90"]["threshold_bmd"] == pytest.approx(-sens90) and low["sens90"]["sensitivity"] >= 0.9
    for spec in (80, 90):
        assert low[f"sens_at_spec{spec}"] == pytest.approx(sensitivity_at_specificity(-HIP_PRED, positive, spec / 100))
    assert low["fixed"]["sensitivity"] == m["screening"]["low_bmd"]["sensitivity"]
    assert low["n_positive"] == positive.sum()
    # calibration and agreement, with the same evidence fields
    cal = calibration_line(HIP_PRED, HIP_TRUE)
    # (the network computes in float32: predictions equal HIP_PRED to ~1e-7)
    assert m["calibration"]["slope"] == pytest.approx(cal["slope"], rel=1e-4)
    assert m["calibration"]["intercept"] == pytest.approx(cal["intercept"], rel=1e-4)
    assert m["bland_altman"]["bias"] == pytest.approx(bland_altman(HIP_PRED, HIP_TRUE)["bias"], rel=1e-4)
    assert m["bland_altman"]["bias_low"] < m["bland_altman"]["bias"] < m["bland_altman"]["bias_high"]
    assert {"loa_lower_low", "loa_upper_high", "proportional_slope", "proportional_p"} <= set(m["bland_altman"])
    assert all(m["calibration"][k] == m[k] for k in EVIDENCE)


def test_hip_thresholds_chosen_on_training_fold_predictions(tmp_path):
    # predictions on the training folds: a model that reads 0.05 g/cm^2 low there
    rng = np.random.default_rng(0)
    ref_true = rng.uniform(0.6, 1.1, 40)
    ref_pred = ref_true - 0.05 + rng.normal(0, 0.03, 40)
    csv = tmp_path / "oof_predictions.csv"
    lines = ["# SYNTHETIC", "variant,fold,id,true,pred"]
    lines += [f"xattn,{i % 3},P{i},{t:.5f},{p:.5f}" for i, (t, p) in enumerate(zip(ref_true, ref_pred))]
    lines += [f"ost,{i % 3},P{i},{t:.5f},0.9" for i, t in enumerate(ref_true)]
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="several variants"):
        _run(tmp_path / "a", threshold_predictions=csv)
    m = _run(tmp_path / "b", threshold_predictions=csv, threshold_variant="xattn", selected_on_split=False)
    ops = m["operating_points"]
    assert ops["thresholds_chosen_on"] == "training folds (oof_predictions.csv)"
    ref_t, ref_p = np.round(ref_true, 5), np.round(ref_pred, 5)
    for key, (thr, inclusive) in {"low_bmd": (0.899, False), "osteoporosis": (0.719, True)}.items():
        target = ops["targets"][key]
        cut = choose_threshold(-ref_p, screening_positive(ref_t, thr, inclusive), "youden")
        assert target["youden"]["threshold_bmd"] == pytest.approx(-cut)
        scored = rates_at_cut(-HIP_PRED, screening_positive(HIP_TRUE, thr, inclusive), cut)
        assert (target["youden"]["sensitivity"], target["youden"]["specificity"]) == pytest.approx(scored)
    with pytest.raises(ValueError, match="no such file"):
        BoneReportWriter(tmp_path, task="hip", threshold_predictions=tmp_path / "missing.csv")


def test_knee_calibration_operating_points_and_class_subgroups(tmp_path):
    records = knee_records(KNEE_BINARY_LABELS)
    net = linear_net(1)
    writer = BoneReportWriter(tmp_path, task="knee", n_bootstrap=0, plots=False, split="val", selected_on_split=True)
    evaluator(net, records, handlers=[writer]).run()
    m = json.loads((tmp_path / "metrics.json").read_text())
    prob = to_probability(direct_outputs(net, records), logits=True).reshape(-1)
    y = np.array(KNEE_BINARY_LABELS)
    ref = brier_ece(prob, y == 1)
    assert m["calibration"]["brier"] == pytest.approx(ref["brier"]) and m["calibration"]["ece"] == pytest.approx(
        ref["ece"]
    )
    assert m["calibration"]["selected_on_split"] is True and m["calibration"]["split"] == "val"
    ops = m["operating_points"]
    assert ops["thresholds_chosen_on"] == ON_SCORED_SPLIT and ops["n_studies"] == 7
    target = ops["targets"]["osteoporosis"]
    assert target["youden"]["threshold"] == pytest.approx(choose_threshold(prob, y == 1, "youden"))
    assert target["sens_at_spec80"] == pytest.approx(sensitivity_at_specificity(prob, y == 1, 0.8))
    assert target["fixed"]["sensitivity"] == m["sensitivity"]
    rows = {(r["subgroup"], r["value"]): r for r in m["subgroups"]}
    for c, name in enumerate(("normal", "osteoporosis")):
        sel = y == c
        assert rows[("class", name)]["n_studies"] == sel.sum()
        assert rows[("class", name)]["accuracy"] == pytest.approx(np.mean((prob[sel] >= 0.5) == (y[sel] == 1)))
    assert not any(k[0] == "sex" for k in rows)  # no records given: no clinical subgroups, nothing invented


def test_report_markdown_says_what_the_numbers_are(tmp_path):
    m = _run(tmp_path, records=_people(), selected_on_split=True)
    text = (tmp_path / "report.md").read_text()
    assert m["files"]["markdown"] == "report.md"
    assert "**optimistic: model selected on this split**" in text
    assert f"Thresholds chosen on: **{ON_SCORED_SPLIT}**" in text
    assert "split `test`, 7 studies / 7 patients, selected_on_split: true" in text
    youden = m["operating_points"]["targets"]["low_bmd"]["youden"]
    assert f"| low_bmd | youden: {youden['rule']} | {youden['threshold_bmd']:.4g} |" in text
    female = next(r for r in m["subgroups"] if r["subgroup"] == "sex" and r["value"] == "F")
    assert f"| sex | F | 4 / 4 | {female['mae']:.4g} |" in text
    assert "Bland–Altman: bias" in text and "| mse |" in text
