"""The bundles' real evaluate path (train.json + evaluate.json, tiny) writes issue 11 items 5-7 into metrics.json:
operating points, calibration/agreement and subgroups, checked against a direct computation from the written
per-study predictions and the datalist records."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from monai_bone.bundle import bundle_workflow, train_and_predict
from monai_bone.data.datalist import DATALIST_KEY, build_datalist
from monai_bone.metrics.operating_points import (
    ON_SCORED_SPLIT,
    brier_ece,
    calibration_line,
    choose_threshold,
    rates_at_cut,
    sensitivity_at_specificity,
)
from monai_bone.metrics.screening import screening_positive
from monai_bone.metrics.subgroups import subgroup_of
from monai_bone.synthetic.synth import synthesize

pytestmark = pytest.mark.timeout(900)

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
TINY = {"spatial_size": 32, "batch_size": 4, "val_batch_size": 4, "num_workers": 0, "pretrained": "null"}
EVIDENCE = ("split", "n_studies", "n_patients", "selected_on_split")


def _trained(root: Path, task: str, bundle: str) -> tuple[Path, Path, list[dict]]:
    synthesize(task, 20, root, seed=8, size=64, n_classes=2, progress=False)
    datalist = root / "datalist.json"
    clinical = [root / "clinical.csv", root / "ground_truth.csv"]
    build_datalist(root / "dicom", datalist, clinical=clinical, task=task, folds=3, seed=8, progress=False)
    run = root / "fit"
    train_and_predict(BUNDLES / bundle, datalist, [0], run, {"epochs": 1, **TINY, "val_interval": 1}, True)
    return datalist, run / "models", json.loads(datalist.read_text())[DATALIST_KEY]


def _evaluate(bundle: str, datalist: Path, ckpt_dir: Path, out: Path, **extra) -> dict:
    wf = bundle_workflow(
        BUNDLES / bundle,
        ("train.json", "evaluate.json"),
        "train",
        datalist=str(datalist),
        ckpt_dir=str(ckpt_dir),
        output_dir=str(out),
        n_bootstrap=0,
        **TINY,
        **extra,
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    return json.loads((out / "metrics.json").read_text())


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO("\n".join(ln for ln in path.read_text().splitlines() if ln[:1] != "#"))))


def test_hip_evaluate_writes_operating_points_calibration_and_subgroups(tmp_path):
    bundle = "hip_bmd_xattn"
    datalist, ckpt, records = _trained(tmp_path / "hip", "hip", bundle)
    m = _evaluate(bundle, datalist, ckpt, tmp_path / "test")
    test = [r for r in records if r["split"] == "test"]
    assert m["split"] == "test" and m["selected_on_split"] is False and m["n_studies"] == len(test)
    rows = _rows(tmp_path / "test" / "predictions.csv")
    pred = np.array([float(r["pred_bmd"]) for r in rows])
    true = np.array([float(r["true_bmd"]) for r in rows])

    ops = m["operating_points"]
    assert ops["thresholds_chosen_on"] == ON_SCORED_SPLIT
    assert {k: ops[k] for k in EVIDENCE} == {k: m[k] for k in EVIDENCE}
    low = ops["targets"]["low_bmd"]
    positive = screening_positive(true, 0.899)
    assert 0 < positive.sum() < positive.size  # the seeded cohort has both classes on the test split
    cut = choose_threshold(-pred, positive, "youden")
    assert low["youden"]["threshold_bmd"] == pytest.approx(-cut, abs=2e-6)  # CSV rounds to 6 decimals
    assert low["sens_at_spec80"] == pytest.approx(sensitivity_at_specificity(-pred, positive, 0.8))
    assert {"fixed", "youden", "sens90", "sens_at_spec80", "sens_at_spec90"} <= set(low)
    assert set(ops["targets"]) == {"low_bmd", "osteoporosis"}

    cal = calibration_line(pred, true)
    assert m["calibration"]["slope"] == pytest.approx(cal["slope"], rel=1e-3, abs=1e-4)
    assert {k: m["calibration"][k] for k in EVIDENCE} == {k: m[k] for k in EVIDENCE}
    ba = m["bland_altman"]
    assert ba["bias"] == pytest.approx(float(np.mean(pred - true)), abs=1e-5)
    assert {"bias_low", "bias_high", "loa_lower_low", "loa_upper_high", "proportional_p"} <= set(ba)

    by_image = {str((datalist.parent / r["image"]).resolve()): subgroup_of(r) for r in test}
    sexes = [by_image[str((datalist.parent / r["image"]).resolve())]["sex"] for r in rows]
    sub = {(r["subgroup"], r["value"]): r for r in m["subgroups"]}
    for sex in set(sexes):
        sel = np.array([s == sex for s in sexes])
        assert sub[("sex", sex)]["n_studies"] == sel.sum()
        assert sub[("sex", sex)]["mae"] == pytest.approx(np.mean(np.abs(pred[sel] - true[sel])), abs=1e-5)
        assert sub[("sex", sex)]["split"] == "test" and sub[("sex", sex)]["selected_on_split"] is False
    assert any(k[0] == "age_band" for k in sub) and any(k[0] == "bmi_band" for k in sub)

    # thresholds chosen on the training folds' predictions (here this model's predictions on its training folds)
    train = _evaluate(bundle, datalist, ckpt, tmp_path / "train", eval_part="train")
    assert train["split"] == "train" and train["selected_on_split"] is True
    ref = _rows(tmp_path / "train" / "predictions.csv")
    ref_pred = np.array([float(r["pred_bmd"]) for r in ref])
    ref_true = np.array([float(r["true_bmd"]) for r in ref])
    m2 = _evaluate(
        bundle, datalist, ckpt, tmp_path / "test2", threshold_predictions=str(tmp_path / "train" / "predictions.csv")
    )
    assert m2["operating_points"]["thresholds_chosen_on"] == "training folds (predictions.csv)"
    cut = choose_threshold(-ref_pred, screening_positive(ref_true, 0.899), "youden")
    youden = m2["operating_points"]["targets"]["low_bmd"]["youden"]
    assert youden["threshold_bmd"] == pytest.approx(-cut)
    # the training-fold cut applied to the test predictions (away from the 6-decimal CSV rounding at the cut)
    if np.min(np.abs(pred + cut)) > 1e-5:
        assert youden["sensitivity"] == pytest.approx(rates_at_cut(-pred, positive, cut)[0])


def test_knee_evaluate_writes_brier_ece_operating_points_and_class_subgroups(tmp_path):
    bundle = "knee_osteoporosis_hybrid_attention"
    datalist, ckpt, records = _trained(tmp_path / "knee", "knee", bundle)
    m = _evaluate(bundle, datalist, ckpt, tmp_path / "test")
    rows = _rows(tmp_path / "test" / "predictions.csv")
    prob = np.array([float(r["prob_osteoporosis"]) for r in rows])
    y = np.array([int(r["true_index"]) for r in rows])
    ref = brier_ece(prob, y == 1)
    assert m["calibration"]["brier"] == pytest.approx(ref["brier"], abs=1e-5)
    assert m["calibration"]["ece"] == pytest.approx(ref["ece"], abs=1e-5)
    assert {k: m["calibration"][k] for k in EVIDENCE} == {k: m[k] for k in EVIDENCE}
    ops = m["operating_points"]
    assert ops["thresholds_chosen_on"] == ON_SCORED_SPLIT and m["split"] == "test"
    target = ops["targets"]["osteoporosis"]
    assert {"fixed", "youden", "sens90", "sens_at_spec80", "sens_at_spec90"} <= set(target)
    sub = {(r["subgroup"], r["value"]): r for r in m["subgroups"]}
    for c, name in enumerate(("normal", "osteoporosis")):
        if (y == c).any():
            assert sub[("class", name)]["n_studies"] == (y == c).sum()
