"""BundlePredictor: one-study predictions equal the bundle's own inference.json run, hip clinical params, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pydicom
import pytest
from _label_test_utils import SERVE_OVERRIDES

from monai_bone.bundle import export_bundle
from monai_bone.constants import CLINICAL_FIELDS, SYNTHETIC_NOTE
from monai_bone.label import BundlePredictor, PredictionError


@pytest.fixture(scope="module")
def predictors(served) -> dict[str, BundlePredictor]:
    return {t: BundlePredictor(b, device="cpu", overrides=SERVE_OVERRIDES) for t, b in served["bundles"].items()}


def test_hip_prediction_equals_bundle_inference(served, predictors) -> None:
    for f in served["files"]["hip"]:
        got = predictors["hip"].predict(f)
        ref = served["expected"]["hip"][f.name]
        assert abs(got["bmd"] - ref["bmd"]) <= 1e-5
        assert abs(got["t_score"] - ref["t_score"]) <= 1e-5
        assert got["who_class"] == ref["who_class"] and got["screening_positive"] == ref["screening_positive"]
        assert got["prediction"][0]["label"] == ref["who_class"]
        assert got["synthetic"] is True and got["note"] == SYNTHETIC_NOTE
        # header fields come from the DICOM header, the rest are missing (the model's missing-field path)
        assert {got["clinical_source"][k] for k in ("age_xray", "sex", "height", "weight")} == {"dicom"}
        assert got["clinical_source"]["bmi"] == "derived"
        assert set(got["missing_fields"]) == {"age_bmd", "alcohol", "activity", "diet_score", "smoking"}
        assert set(got["field_attention"]) == set(CLINICAL_FIELDS)
        assert math.isclose(sum(got["field_attention"].values()), 1.0, abs_tol=1e-4)


def test_knee_prediction_equals_bundle_inference(served, predictors) -> None:
    for f in served["files"]["knee"]:
        got = predictors["knee"].predict(f)
        ref = served["expected"]["knee"][f.name]
        assert got["class_name"] == ref["class_name"]
        for label, p in got["probabilities"].items():
            assert abs(p - ref[f"prob_{label}"]) <= 1e-5
        scores = [p["score"] for p in got["prediction"]]
        assert scores == sorted(scores, reverse=True) and got["prediction"][0]["label"] == got["class_name"]
        assert math.isclose(sum(scores), 1.0, abs_tol=1e-5)


def test_request_clinical_values_fill_missing_fields(served, predictors) -> None:
    f = served["files"]["hip"][0]
    base = predictors["hip"].predict(f)
    given = {"age_bmd": 71, "clinical": {"alcohol": "2", "smoking": "ex", "height": 172}}
    got = predictors["hip"].predict(f, given)
    assert set(got["missing_fields"]) == {"activity", "diet_score"}
    assert got["clinical"]["smoking"] == "former" and got["clinical"]["alcohol"] == 2.0
    assert got["clinical"]["height"] == pytest.approx(1.72)  # cm converted, as the index does
    assert got["clinical_source"]["height"] == "request" and got["clinical_source"]["age_bmd"] == "request"
    assert any("taken as cm" in w for w in got["warnings"])
    assert got["bmd"] != base["bmd"]  # the values reach the model


def test_exported_zip_serves_the_same_predictions(served, predictors, tmp_path) -> None:
    archive = tmp_path / "knee.zip"
    export_bundle(served["bundles"]["knee"], archive)
    from_zip = BundlePredictor(archive, device="cpu", overrides=SERVE_OVERRIDES, work_dir=tmp_path / "unpacked")
    f = served["files"]["knee"][0]
    assert from_zip.predict(f)["probabilities"] == predictors["knee"].predict(f)["probabilities"]
    assert (tmp_path / "unpacked" / "knee" / "models" / "model.pt").is_file()


def test_unusable_requests_raise_prediction_errors_with_status(served, predictors, tmp_path) -> None:
    hip = predictors["hip"]
    cases = {
        served["files"]["ct"]: (422, "not_xray"),
        served["files"]["text"]: (415, "not a DICOM file"),
        tmp_path / "missing.dcm": (404, "not found"),
    }
    for path, (status, text) in cases.items():
        with pytest.raises(PredictionError, match=text) as err:
            hip.predict(path)
        assert err.value.status == status
    with pytest.raises(PredictionError, match="'weight'") as err:
        hip.predict(served["files"]["hip"][0], {"weight": "heavy"})
    assert err.value.status == 400
    # pixel data that cannot be decoded: the loader's error, as 422, naming the file
    src = served["files"]["hip"][0]
    ds = pydicom.dcmread(src)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    bad = tmp_path / "short.dcm"
    ds.save_as(bad, enforce_file_format=True)
    with pytest.raises(PredictionError) as err:
        hip.predict(bad)
    assert err.value.status == 422 and "short.dcm" in str(err.value)


def test_series_folder_and_untrained_bundle(served, predictors, tmp_path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    src = served["files"]["knee"][1]
    (series / "1.2.3.dcm").write_bytes(src.read_bytes())
    assert predictors["knee"].predict(series)["probabilities"] == predictors["knee"].predict(src)["probabilities"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictionError, match="no instance") as err:
        predictors["knee"].predict(tmp_path / "empty")
    assert err.value.status == 404
    untrained = Path(served["bundles"]["knee"]).parent.parent / "no_weights"
    (untrained / "configs").mkdir(parents=True)
    (untrained / "configs" / "inference.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="models/model.pt not found"):
        BundlePredictor(untrained)


def test_png_knee_image_equals_bundle_inference(served, predictors, tmp_path) -> None:
    """A KOP-style PNG (the knee paper's format) through the predictor and through inference.json on a flat folder."""
    from _label_test_utils import run_bundle_inference

    from monai_bone.synthetic.synth import synthesize

    synthesize("knee", 2, tmp_path / "kop", size=96, seed=5, fmt="kop", progress=False, preset="simple")  # PNGs
    flat = tmp_path / "flat"
    flat.mkdir()
    for png in (tmp_path / "kop").rglob("*.png"):
        (flat / png.name).write_bytes(png.read_bytes())
    expected = run_bundle_inference(served["bundles"]["knee"], flat, tmp_path / "ref")
    assert len(expected) == 2
    for png in sorted(flat.glob("*.png")):
        got = predictors["knee"].predict(png)
        for label, p in got["probabilities"].items():
            assert abs(p - expected[png.name][f"prob_{label}"]) <= 1e-5
        assert got["synthetic"] is True
