"""The realistic synthetic cohort: valid DX (dciodvfy), realism factors at their rates, no trivial image shortcut,
KOP-like export that the index ingests. All data SYNTHETIC; images are rendered small to keep this fast."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from monai_bone.data.datalist import build_datalist
from monai_bone.synthetic.realism import FACTOR_KEYS, RealismRates
from monai_bone.synthetic.synth import synthesize


def _rows(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return list(csv.DictReader(lines[1:]))  # first line: "# <synthetic note>"


@pytest.fixture(scope="module")
def hip200(tmp_path_factory):
    out = tmp_path_factory.mktemp("realistic") / "hip"
    info = synthesize("hip", 200, out, seed=11, size=96, progress=False)
    return out, info


@pytest.fixture(scope="module")
def knee200(tmp_path_factory):
    out = tmp_path_factory.mktemp("realistic") / "knee"
    info = synthesize("knee", 200, out, seed=12, size=96, progress=False)
    return out, info


# --- valid DICOM -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["hip", "knee"])
def test_dx_files_pass_dciodvfy(tmp_path, task):
    """Every generated DX file (MONOCHROME1 and 2, with and without VOI LUT, bilateral, burned-in text) is valid."""
    if shutil.which("dciodvfy") is None:
        if os.environ.get("CI"):
            pytest.fail("dciodvfy (Debian package dicom3tools) is required in CI; see .ci/run")
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    rates = RealismRates(voi_lut=0.5, bilateral=0.5, text=0.5, metal=0.3)
    out = tmp_path / task
    synthesize(task, 14, out, seed=3, size=96, progress=False, rates=rates)
    rows = _rows(out / "realism.csv")
    assert {r["photometric"] for r in rows} == {"MONOCHROME1", "MONOCHROME2"}
    assert {r["voi_lut"] for r in rows} == {"0", "1"} and {r["burned_in"] for r in rows} == {"0", "1"}
    if task == "knee":
        assert {r["laterality"] for r in rows} >= {"B"}
    for row in rows:
        result = subprocess.run(["dciodvfy", str(out / row["file"])], capture_output=True, text=True, timeout=60)
        report = result.stdout + result.stderr
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert errors == [], f"{row['file']}: {errors}"


# --- realism factors at their configured rates (counted from the sidecar) ----------------------------------------


@pytest.mark.parametrize("cohort", ["hip200", "knee200"])
def test_realism_factors_at_configured_rates(request, cohort):
    out, info = request.getfixturevalue(cohort)
    task = info["task"]
    rows = _rows(out / "realism.csv")
    assert len(rows) == 200 and info["counts"]["images"] == 200
    rates = info["parameters"]["realism_rates"]
    assert rates == RealismRates().to_dict()
    n = len(rows)
    for key in FACTOR_KEYS:
        count = sum(int(r[key]) for r in rows)
        assert info["counts"]["realism"][key] == count
        p = 0.0 if key == "bilateral" and task == "hip" else rates[key]
        tolerance = 4.0 * math.sqrt(n * p * (1 - p)) + 1
        assert abs(count - n * p) <= tolerance, (key, count, n * p)
    sigmoid = sum(r["voi_function"] == "SIGMOID" for r in rows)
    assert abs(sigmoid - n * rates["voi_sigmoid"]) <= 4.0 * math.sqrt(n * 0.16) + 1
    # continuous factors vary over their documented ranges
    spacing = np.array([float(r["pixel_spacing_mm"]) for r in rows]) * 96 / 1024
    assert spacing.min() >= 0.1 and spacing.max() <= 0.2 and np.ptp(spacing) > 0.03
    assert np.ptp([float(r["kvp"]) for r in rows]) > 20 and np.ptp([float(r["mas"]) for r in rows]) > 2
    assert len({(r["rows"], r["cols"]) for r in rows}) > 20
    if task == "hip":
        rotation = np.array([float(r["femoral_rotation_deg"]) for r in rows])
        assert rotation.min() < -10 and rotation.max() > 20
    else:
        assert {r["laterality"] for r in rows} == {"L", "R", "B"}
        assert info["n_classes"] == 3 and set(info["counts"]["label"]) == {"normal", "osteopenia", "osteoporosis"}
    grades = {int(r["oa_grade"]) for r in rows if r["osteoarthritis"] == "1"}
    assert grades == {1, 2, 3}


def test_cohort_json_states_the_ceilings(hip200):
    _, info = hip200
    assert info["oracle_r2"] == pytest.approx(info["image_only_r2"])
    assert info["clinical_r2"] < info["oracle_r2"] - 0.3
    sample = info["sample_ceilings"]
    assert set(sample) == {"oracle_r2", "clinical_r2", "image_only_r2"}
    assert 0.6 < sample["oracle_r2"] <= 1 and sample["clinical_r2"] < sample["oracle_r2"]
    assert "image_only_r2 = var(f + u_visible)/var(bmd)" in info["oracle_method"]


# --- no trivial image shortcut -------------------------------------------------------------------------------------


def _image_statistics(path: Path) -> np.ndarray:
    """4x4 block means and SDs plus global percentiles of the image at 64x64, from the DICOM file alone."""
    ds = pydicom.dcmread(path)
    a = ds.pixel_array.astype(np.float32)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        a = a.max() - a
    lo, hi = np.percentile(a, [0.5, 99.5])
    a = np.clip((a - lo) / max(hi - lo, 1.0), 0.0, 1.0)
    a = np.asarray(Image.fromarray(a).resize((64, 64), Image.BILINEAR))
    blocks = a.reshape(4, 16, 4, 16)
    pct = np.percentile(a, [5, 25, 50, 75, 95])
    return np.concatenate([blocks.mean(axis=(1, 3)).ravel(), blocks.std(axis=(1, 3)).ravel(), pct])


def _public_table(out: Path) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, str]]]:
    """Image statistics, clinical fields (DICOM header + clinical.csv) and ground truth, from the written files."""
    clinical = {r["PatientID"]: r for r in _rows(out / "clinical.csv")}
    truth = {r["PatientID"]: r for r in _rows(out / "ground_truth.csv")}
    stats, fields, ids = [], [], []
    for path in sorted((out / "dicom").rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        c = clinical[ds.PatientID]
        fields.append(
            [
                int(ds.PatientAge[:3]),
                float(ds.PatientSize),
                float(ds.PatientWeight),
                ds.PatientSex == "M",
                float(c["age_bmd"]),
                float(c["bmi"]),
                float(c["alcohol"]),
                float(c["activity"]),
                float(c["diet_score"]),
                c["smoking"] == "current",
                c["smoking"] == "former",
            ]
        )
        stats.append(_image_statistics(path))
        ids.append(ds.PatientID)
    return np.array(stats), np.array(fields, dtype=float), {i: truth[i] for i in ids}


def _ridge_r2(x: np.ndarray, y: np.ndarray) -> float:
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    return float(r2_score(y, cross_val_predict(model, x, y, cv=KFold(5, shuffle=True, random_state=0))))


def test_trivial_image_statistics_add_little_over_clinical_on_200_hips(hip200):
    out, _ = hip200
    stats, fields, truth = _public_table(out)
    y = np.array([float(r["bmd"]) for r in truth.values()])
    clinical = _ridge_r2(fields, y)
    both = _ridge_r2(np.hstack([stats, fields]), y)
    assert clinical > 0.1  # the clinical part of the formula is there
    assert both - clinical <= 0.10, (clinical, both)


def test_trivial_image_statistics_auc_on_160_knees(tmp_path):
    out = tmp_path / "knee"
    synthesize("knee", 160, out, seed=13, size=96, n_classes=2, progress=False)
    stats, _, truth = _public_table(out)
    y = np.array([int(r["label"]) for r in truth.values()])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    auc = roc_auc_score(y, cross_val_predict(model, stats, y, cv=cv, method="predict_proba")[:, 1])
    assert auc <= 0.75, auc


# --- KOP-like export ------------------------------------------------------------------------------------------------


def test_kop_export_looks_like_the_public_downloads_and_is_indexed(tmp_path):
    out = tmp_path / "kop"
    info = synthesize("knee", 40, out, seed=5, size=96, fmt="kop", progress=False)
    rows = _rows(out / "realism.csv")
    files = [out / r["file"] for r in rows]
    assert all(f.is_file() for f in files) and len(files) == 41  # 40 subjects + floor(0.03 * 40) duplicate
    assert {f.suffix for f in files} == {".jpg", ".png"}
    modes, sizes = set(), set()
    for f in files:
        with Image.open(f) as im:
            modes.add((im.format, im.mode))
            sizes.add(im.size)
    assert ("JPEG", "RGB") in modes and ("PNG", "L") in modes
    assert len(sizes) > 20
    dups = [r for r in rows if r["duplicate_of"]]
    assert len(dups) == info["counts"]["duplicates"] == 1
    assert Path(dups[0]["file"]).stem == Path(dups[0]["duplicate_of"]).stem + "_dup"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["normal", "osteopenia", "osteoporosis"]
    # the index ingests the mix: every subject's file is used with its class; RGB JPEGs are accepted
    summary = build_datalist(
        out,
        tmp_path / "index" / "datalist.json",
        clinical=[out / "clinical.csv"],
        task="knee",
        folds=3,
        seed=0,
        progress=False,
    )
    doc = json.loads((tmp_path / "index" / "datalist.json").read_text())
    records = [r for key in ("training", "validation", "testing") for r in doc.get(key, [])]
    used = {Path(r["image"]).name for r in records}
    assert {f.name for f in files if "_dup" not in f.stem} <= used
    assert summary.used >= 40
