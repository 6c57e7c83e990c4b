"""inference.json with ``write_sr: true``: one dciodvfy-valid SR per study whose values equal the predictions CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pydicom
import pytest
from _results_test_utils import dciodvfy_errors, make_bundles, run_inference, synth_dicom

from monai_bone.results import read_sr_values


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("sr")
    hip_src, knee_src = synth_dicom(root, "hip", 3, seed=5), synth_dicom(root, "knee", 2, seed=6)
    bundles = make_bundles(root, hip_src)
    hip = run_inference(bundles["hip"], hip_src, root / "hip_out", write_sr=True, save_gradcam=True)
    knee = run_inference(bundles["knee"], knee_src, root / "knee_out", write_sr=True)
    return {"root": root, "hip": hip, "knee": knee, "bundles": bundles, "src": {"hip": hip_src, "knee": knee_src}}


def _by_sop(task_dir: Path) -> dict[str, dict]:
    doc = json.loads((task_dir / "dicom" / "dicom_outputs.json").read_text())
    return {Path(r["image"]).name: r for r in doc["studies"]}


@pytest.mark.parametrize("task", ["hip", "knee"])
def test_sr_valid_and_equal_to_csv(outputs, task):
    out_dir = outputs["root"] / f"{task}_out"
    lines = (out_dir / "predictions.csv").read_text().splitlines()
    assert lines[0].startswith("# SYNTHETIC")
    rows = {Path(r["image"]).name: r for r in csv.DictReader(io.StringIO("\n".join(lines[1:])))}
    written = _by_sop(out_dir)
    assert set(written) == set(rows) and len(rows) == (3 if task == "hip" else 2)
    for name, row in rows.items():
        entry = written[name]
        sr_path = Path(entry["sr"])
        assert sr_path.parent == out_dir / "dicom" and sr_path.is_file()
        assert dciodvfy_errors(sr_path) == []
        sr = pydicom.dcmread(sr_path)
        src = pydicom.dcmread(next(outputs["src"][task].rglob(name)), stop_before_pixels=True)
        assert sr.StudyInstanceUID == src.StudyInstanceUID and sr.PatientID == src.PatientID
        assert sr.SeriesInstanceUID != src.SeriesInstanceUID
        assert (
            sr.CurrentRequestedProcedureEvidenceSequence[0]
            .ReferencedSeriesSequence[0]
            .ReferencedSOPSequence[0]
            .ReferencedSOPInstanceUID
            == src.SOPInstanceUID
        )
        values = read_sr_values(sr_path)
        assert values["SYNTH"] == "Yes" and any("SYNTHETIC" in c for c in values["comments"])
        assert any("Not a diagnostic device" in c for c in values["comments"])
        alg = values["algorithm"]
        meta = json.loads((outputs["bundles"][task] / "configs" / "metadata.json").read_text())
        assert alg["version"] == meta["version"] and alg["parameters"][0].startswith("weights_sha256=")
        assert len(alg["parameters"][0].split("=")[1]) == 64
        if task == "hip":
            assert values["BMD-FN-EST"] == pytest.approx(float(row["bmd"]), abs=1e-4)
            assert values["BMD-FN-EST:unit"] == "g/cm2" and values["T-FN-EST:unit"] == "{T-score}"
            assert values["T-FN-EST"] == pytest.approx(float(row["t_score"]), abs=1e-4)
            assert values["WHO-CAT"].lower() == row["who_class"]
            assert values["SCREEN"] == ("Positive" if row["screening_positive"] == "True" else "Negative")
            assert values["REF-MEAN"] == pytest.approx(1.019) and values["REF-SD"] == pytest.approx(0.12)
            # Grad-CAM was on: the measurement group is attached to a region on the source image, heat map SC exists
            region = values["region"]
            assert region is not None and region.shape == (5, 2)
            assert (region[:, 0] <= src.Columns).all() and (region[:, 1] <= src.Rows).all() and (region >= 0).all()
            assert dciodvfy_errors(Path(entry["heatmap"])) == []
            sc = pydicom.dcmread(entry["heatmap"])
            assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
            assert sc.StudyInstanceUID == src.StudyInstanceUID and "SYNTHETIC" in sc.SeriesDescription
            assert (sc.Rows, sc.Columns) == (src.Rows, src.Columns)
        else:
            assert values["KNEE-PROB"] == pytest.approx(float(row["probability"]), abs=1e-4)
            assert values["KNEE-CLS"].lower() == row["class_name"]
            assert values["region"] is None and "heatmap" not in entry


def test_sr_rerun_same_uids(outputs, tmp_path):
    """Same model, same image: the same SR UID (a PACS replaces rather than duplicates)."""
    run_inference(outputs["bundles"]["knee"], outputs["src"]["knee"], tmp_path / "again", write_sr=True)
    first = {k: v["sr_uid"] for k, v in _by_sop(outputs["root"] / "knee_out").items()}
    second = {k: v["sr_uid"] for k, v in _by_sop(tmp_path / "again").items()}
    assert first == second


def test_sr_off_by_default(outputs, tmp_path):
    run_inference(outputs["bundles"]["knee"], outputs["src"]["knee"], tmp_path / "plain")
    assert not (tmp_path / "plain" / "dicom").exists()
