"""BoneReportWriter inside a real SupervisedEvaluator: files, row counts, metric values, plots, DDP gathering."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from _bone_handler_helpers import (
    HIP_TRUE,
    KNEE_BINARY_LABELS,
    KNEE_THREE_LABELS,
    assert_png,
    direct_outputs,
    evaluator,
    hip_records,
    knee_records,
    linear_net,
    pixel_net,
    read_csv,
)
from monai.handlers import from_engine

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.handlers import BoneReportWriter
from monai_bone.metrics import (
    bland_altman,
    bmd_from_t,
    classification_table,
    regression_metrics,
    screening_metrics,
    t_score,
    to_probability,
    who_class,
)

FE = from_engine(["pred", "label"])
HIP_PLOTS = ("roc.png", "pred_vs_true.png", "bland_altman.png", "confusion_matrix.png", "calibration.png")
KNEE_PLOTS = ("roc.png", "confusion_matrix.png", "calibration.png")


def _same(a, b, rel=1e-9):
    """Equal numbers (JSON null stands for NaN), recursively for dicts/lists."""
    if isinstance(b, dict):
        return all(_same(a[k], v, rel) for k, v in b.items())
    if isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b))
    if isinstance(b, float) and math.isnan(b):
        return a is None
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        return a == pytest.approx(b, rel=rel, abs=1e-12)
    return a == b


def test_hip_report_files_rows_and_values(tmp_path):
    records = hip_records()
    net = pixel_net()
    writer = BoneReportWriter(tmp_path, task="hip", synthetic=True, n_bootstrap=40)
    evaluator(net, records, [writer]).run()

    pred = direct_outputs(net, records)[:, 0]
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["task"] == "hip" and report["synthetic"] is True and report["note"] == SYNTHETIC_NOTE
    assert report["n"] == report["n_rows"] == 7 and report["n_errors"] == 0
    reg = regression_metrics(pred, HIP_TRUE)
    for key in ("mse", "mae", "rmse", "r2", "pearson_r", "bias"):
        assert _same(report[key], reg[key]), key
    assert _same(report["bland_altman"], bland_altman(pred, HIP_TRUE))
    assert _same(report["screening"]["low_bmd"], screening_metrics(pred, HIP_TRUE, 0.899))
    osteo = screening_metrics(pred, HIP_TRUE, bmd_from_t(-2.5), inclusive=True)
    assert _same(report["screening"]["osteoporosis"], osteo)
    assert report["screening"]["low_bmd"]["t_score"] == -1.0 and report["screening"]["osteoporosis"]["t_score"] == -2.5
    cm = np.array(report["who"]["confusion_matrix"])
    assert cm.sum() == 7
    true_who, pred_who = who_class(t_score(HIP_TRUE)), who_class(t_score(pred))
    assert report["who"]["accuracy"] == pytest.approx(np.mean([a == b for a, b in zip(true_who, pred_who)]))
    ci = report["confidence_intervals"]
    assert set(ci) == {"mse", "mae", "r2", "low_bmd_auc", "osteoporosis_auc"}
    assert ci["mae"]["low"] <= report["mae"] <= ci["mae"]["high"] and ci["mae"]["n_boot"] == 40

    comments, rows = read_csv(tmp_path / "predictions.csv")
    assert comments == [f"# {SYNTHETIC_NOTE}"]
    assert len(rows) == 7
    assert [r["image"] for r in rows] == [f"/data/study_{i:02d}.dcm" for i in range(7)]
    assert [r["patient_id"] for r in rows] == [f"SYN-H-{i:04d}" for i in range(1, 8)]
    np.testing.assert_allclose([float(r["pred_bmd"]) for r in rows], pred, atol=1e-6)
    np.testing.assert_allclose([float(r["true_bmd"]) for r in rows], HIP_TRUE, atol=1e-6)
    assert [r["true_who_class"] for r in rows] == true_who
    assert [r["pred_who_class"] for r in rows] == pred_who
    assert rows[4]["true_bmd"] == "0.899" and rows[4]["true_who_class"] == "normal"  # T = -1 exactly
    assert rows[2]["true_who_class"] == "osteoporosis" and rows[2]["true_osteoporosis"] == "True"  # T = -2.5
    assert set(rows[0]) == {
        "image", "patient_id", "pred_bmd", "true_bmd", "error_bmd", "pred_t_score", "true_t_score",
        "pred_who_class", "true_who_class", "pred_low_bmd", "true_low_bmd", "pred_osteoporosis", "true_osteoporosis",
    }  # fmt: skip
    assert report["files"]["plots"] == {Path(p).stem: p for p in HIP_PLOTS}
    for name in HIP_PLOTS:
        assert_png(tmp_path / name)


@pytest.mark.parametrize("labels, out", [(KNEE_BINARY_LABELS, 1), (KNEE_THREE_LABELS, 3)])
def test_knee_report_matches_table(tmp_path, labels, out):
    records = knee_records(labels)
    net = linear_net(out)
    writer = BoneReportWriter(tmp_path, task="knee", n_bootstrap=0, prefix="fold0_")
    evaluator(net, records, [writer]).run()

    prob = to_probability(direct_outputs(net, records))
    table = classification_table(prob, labels)
    report = json.loads((tmp_path / "fold0_metrics.json").read_text())
    assert report["synthetic"] is False and "note" not in report
    assert report["n"] == 7 and "confidence_intervals" not in report
    for key, value in table.items():  # float32 network: batches of 3 vs one batch of 7 differ in the last bits
        assert _same(report[key], value, rel=1e-6), key
    comments, rows = read_csv(tmp_path / "fold0_predictions.csv")
    assert comments == [] and len(rows) == 7
    assert [int(r["true_index"]) for r in rows] == labels
    names = table["labels"]
    probs = np.stack([1 - prob, prob], 1) if prob.ndim == 1 else prob
    for c, name in enumerate(names):
        np.testing.assert_allclose([float(r[f"prob_{name}"]) for r in rows], probs[:, c], atol=1e-6)
    pred_class = (prob >= 0.5).astype(int) if prob.ndim == 1 else prob.argmax(1)
    assert [r["pred_class"] for r in rows] == [names[i] for i in pred_class]
    for name in KNEE_PLOTS:
        assert_png(tmp_path / f"fold0_{name}")
    assert not (tmp_path / "fold0_bland_altman.png").exists()


def test_report_error_rows_and_rerun(tmp_path):
    errors = ["", "", "", "unreadable DICOM /data/study_03.dcm: missing pixel data", "", "", ""]
    records = hip_records(errors=errors)
    net = pixel_net()
    writer = BoneReportWriter(tmp_path, task="hip", n_bootstrap=0, plots=False)
    ev = evaluator(net, records, [writer])
    ev.run()
    ev.run()  # a second evaluation (e.g. the next validation round) rewrites, it does not append
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["n_rows"] == 7 and report["n"] == 6 and report["n_errors"] == 1
    keep = [i for i in range(7) if not errors[i]]
    pred = direct_outputs(net, records)[keep, 0]
    assert report["mse"] == pytest.approx(regression_metrics(pred, HIP_TRUE[keep])["mse"])
    _, rows = read_csv(tmp_path / "predictions.csv")
    assert len(rows) == 7
    assert rows[3]["error"].startswith("unreadable DICOM") and rows[3]["pred_bmd"] == ""
    assert rows[3]["patient_id"] == "SYN-H-0004"
    assert all(r["error"] == "" for i, r in enumerate(rows) if i != 3)
    assert not list(tmp_path.glob("*.png"))


def test_report_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="task"):
        BoneReportWriter(tmp_path, task="spine")
    with pytest.raises(ValueError, match="reference"):
        BoneReportWriter(tmp_path, ref_sd=0.0)


def test_hip_report_studies_without_truth_are_listed_not_scored(tmp_path):
    truth = HIP_TRUE.copy()
    truth[1] = np.nan  # BMD unknown for one study
    records = hip_records(truth=truth)
    net = pixel_net()
    evaluator(net, records, [BoneReportWriter(tmp_path, task="hip", n_bootstrap=0, plots=False)]).run()
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["n_rows"] == 7 and report["n"] == 6 and report["n_missing_truth"] == 1
    keep = [0, 2, 3, 4, 5, 6]
    pred = direct_outputs(net, records)[keep, 0]
    assert report["r2"] == pytest.approx(regression_metrics(pred, HIP_TRUE[keep])["r2"])
    _, rows = read_csv(tmp_path / "predictions.csv")
    assert len(rows) == 7 and rows[1]["true_bmd"] == "" and rows[1]["pred_who_class"] != ""


def test_report_rejects_non_finite_predictions(tmp_path):
    records = hip_records([0.8, float("nan"), 0.9])
    with pytest.raises(ValueError, match="no finite 'pred'.*study_01"):
        evaluator(pixel_net(), records, [BoneReportWriter(tmp_path, task="hip")]).run()


def test_handlers_build_from_bundle_config(tmp_path):
    from monai.bundle import ConfigParser

    config = {
        "imports": ["$import monai_bone"],
        "output_dir": str(tmp_path),
        "handlers": [
            {"_target_": "monai_bone.handlers.BoneReportWriter", "output_dir": "@output_dir", "task": "hip",
             "synthetic": True, "n_bootstrap": 0},
            {"_target_": "BonePredictionWriter", "output_dir": "$@output_dir + '/inference'", "task": "hip"},
        ],
        "metrics": {
            "r2": {"_target_": "R2", "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"},
            "auc_t25": {"_target_": "ScreeningAUC", "threshold": "$monai_bone.metrics.bmd_from_t(-2.5)",
                        "inclusive": True, "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"},
        },
    }  # fmt: skip
    parser = ConfigParser(config)
    handlers, metrics = parser.get_parsed_content("handlers"), parser.get_parsed_content("metrics")
    assert isinstance(handlers[0], BoneReportWriter) and handlers[0].synthetic
    ev = evaluator(pixel_net(), hip_records(), handlers, key_metric={"r2": metrics["r2"]}, metrics=metrics)
    ev.run()
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "inference" / "predictions.json").exists()
    assert ev.state.metrics["auc_t25"] == pytest.approx(
        json.loads((tmp_path / "metrics.json").read_text())["screening"]["osteoporosis"]["auc"]
    )
