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
