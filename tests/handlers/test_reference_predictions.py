"""Training-fold predictions read for the report's thresholds: both file formats, and clear errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from monai_bone.handlers import reference_predictions as refs
from monai_bone.handlers.reference_predictions import read_reference_predictions


def test_report_and_cv_formats(tmp_path):
    knee = tmp_path / "predictions.csv"
    knee.write_text(
        "# SYNTHETIC\nimage,patient_id,true_index,prob_normal,prob_osteoporosis\n"
        "a.dcm,P1,1,0.2,0.8\nb.dcm,P2,0,0.7,0.3\nc.dcm,P3,,0.5,0.5\nd.dcm,P4,error,,\n"
    )
    pred, true = read_reference_predictions(knee, regression=False, positive_name="osteoporosis", positive_index=1)
    assert pred.tolist() == [0.8, 0.3] and true.tolist() == [1.0, 0.0]  # rows without a value are left out
    oof = tmp_path / "oof_predictions.csv"
    oof.write_text("variant,loss,fold,id,true,pred\nxattn,-,0,P1,0.8,0.85\nost,-,0,P1,0.8,0.9\n")
    pred, true = read_reference_predictions(oof, regression=True, variant="ost")
    assert (pred.tolist(), true.tolist()) == ([0.9], [0.8])


def test_bad_files_name_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv: has neither 'pred, true' nor 'pred_bmd, true_bmd'"):
        read_reference_predictions(bad, regression=True)
    empty = tmp_path / "empty.csv"
    empty.write_text("pred,true\n,\n")
    with pytest.raises(ValueError, match=r"empty\.csv: no row with both"):
        read_reference_predictions(empty, regression=True)
    monkeypatch.setattr(refs, "MAX_REFERENCE_BYTES", 4)
    with pytest.raises(ValueError, match="larger than 4 bytes"):
        read_reference_predictions(empty, regression=True)
    assert np.isnan(refs._float("x"))


def test_three_class_cv_file_keeps_its_zero_one_reference(tmp_path):
    """A 3-class CV file's ``true`` is "osteoporosis vs rest" (0/1): read as is, not compared with class index 2."""
    oof = tmp_path / "oof_predictions.csv"
    oof.write_text(
        "variant,loss,fold,id,true,pred\nhybrid,-,0,P1,1.0,0.7\nhybrid,-,0,P2,0.0,0.2\nhybrid,-,1,P3,0.0,0.4\n"
    )
    kw = {"regression": False, "positive_name": "osteoporosis", "variant": "hybrid"}
    for n_classes in (2, 3):
        pred, true = read_reference_predictions(oof, positive_index=n_classes - 1, n_classes=n_classes, **kw)
        assert (pred.tolist(), true.tolist()) == ([0.7, 0.2, 0.4], [1.0, 0.0, 0.0])
    # a report of the same 3-class model reads its class-index file with the same positive class
    report = tmp_path / "predictions.csv"
    report.write_text(
        "image,true_index,prob_normal,prob_osteopenia,prob_osteoporosis\n"
        "a,2,0.1,0.2,0.7\nb,1,0.3,0.5,0.2\nc,0,0.5,0.1,0.4\n"
    )
    pred, true = read_reference_predictions(report, positive_index=2, n_classes=3, **kw)
    assert (pred.tolist(), true.tolist()) == ([0.7, 0.2, 0.4], [1.0, 0.0, 0.0])
    # the CV reference is the last class: another positive class, or class indices in 'true', are refused
    with pytest.raises(ValueError, match=r"oof_predictions\.csv: a CV file scores the last class \(index 2\)"):
        read_reference_predictions(oof, positive_index=1, n_classes=3, **kw)
    oof.write_text("variant,loss,fold,id,true,pred\nhybrid,-,0,P1,2,0.7\n")
    with pytest.raises(ValueError, match=r"oof_predictions\.csv: column 'true' .* must be 0/1"):
        read_reference_predictions(oof, positive_index=2, n_classes=3, **kw)
