"""Tests of the synthetic cohort writer (``synthesize``): files, tags, determinism, KOP folders."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian

from monai_bone.constants import (
    CLINICAL_FIELDS,
    DICOM_FIELDS,
    KNEE_LABELS_BINARY,
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    SYNTHETIC_NOTE,
)
from monai_bone.synthetic.cohort import sample_cohort
from monai_bone.synthetic.synth import render_subject, synthesize, write_subject_dx


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _read_csv(path: Path) -> tuple[str, list[dict[str, str]], list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    reader = csv.DictReader(lines[1:])
    rows = list(reader)
    return lines[0], rows, list(reader.fieldnames or [])


@pytest.fixture(scope="module")
def hip_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "hip"
    info = synthesize("hip", 20, out, seed=4, size=64, progress=False)
    return out, info


def test_same_seed_gives_byte_identical_outputs(tmp_path, hip_dir):
    out, _ = hip_dir
    again = tmp_path / "again"
    synthesize("hip", 20, again, seed=4, size=64, progress=False)
    first, second = _hashes(out), _hashes(again)
    assert len(first) == 20 + 4  # images + clinical.csv, ground_truth.csv, realism.csv, cohort.json
    assert first == second
    other = tmp_path / "other"
    synthesize("hip", 20, other, seed=5, size=64, progress=False)
    third = _hashes(other)
    assert third.keys() == first.keys()
    assert all(third[k] != first[k] for k in first)  # every file differs for another seed


def test_kop_same_seed_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    synthesize("knee", 4, a, seed=1, size=64, fmt="kop", progress=False)
    synthesize("knee", 4, b, seed=1, size=64, fmt="kop", progress=False)
    assert _hashes(a) == _hashes(b)


def test_dicom_files_read_back_with_the_listed_tags(hip_dir):
    out, _ = hip_dir
    files = sorted((out / "dicom").rglob("*.dcm"))
    assert len(files) == 20
    cohort = {s.patient_id: s for s in sample_cohort("hip", 20, seed=4).subjects}
    _, realism, _ = _read_csv(out / "realism.csv")
    factors = {row["PatientID"]: row for row in realism}
    photometric, uids = [], set()
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == DigitalXRayImageStorageForPresentation
        assert ds.SOPClassUID == DigitalXRayImageStorageForPresentation
        assert ds.Modality == "DX" and ds.BodyPartExamined == "HIP" and ds.ViewPosition == "AP"
        subject = cohort[ds.PatientID]
        assert path.parent.name == ds.PatientID
        assert re.fullmatch(r"\d{3}Y", ds.PatientAge) and int(ds.PatientAge[:3]) == int(subject.age_xray)
        assert ds.PatientSex == subject.sex
        assert float(ds.PatientSize) == pytest.approx(subject.height)
        assert float(ds.PatientWeight) == pytest.approx(subject.weight)
        assert str(ds.PatientName) == "" and ds.PatientBirthDate == ""
        assert ds.ImageComments == SYNTHETIC_NOTE
        row = factors[ds.PatientID]
        spacing = float(row["pixel_spacing_mm"])  # the field of view varies: 0.1-0.2 mm at 1024 px
        assert 0.1 <= spacing * 64 / 1024 <= 0.2
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([spacing] * 2)
        assert [float(v) for v in ds.ImagerPixelSpacing] == pytest.approx([spacing] * 2)
        assert row["file"] == path.relative_to(out).as_posix() and row["photometric"] == ds.PhotometricInterpretation
        assert ds.BurnedInAnnotation == ("YES" if row["burned_in"] == "1" else "NO")
        assert ds.ImageLaterality == row["laterality"]
        assert 12 <= ds.BitsStored <= 16 and ds.HighBit == ds.BitsStored - 1 and ds.BitsAllocated == 16
        assert ds.StudyDate == "20000101"
        pixels = ds.pixel_array
        assert pixels.shape == (int(row["rows"]), int(row["cols"])) and max(pixels.shape) == 64
        assert int(pixels.max()) <= 2**ds.BitsStored - 1
        assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == 0.0
        assert float(ds.WindowWidth) >= 1  # a DX For Presentation file always carries its VOI transform
        assert ds.VOILUTFunction == row["voi_function"] and ("VOILUTSequence" in ds) == (row["voi_lut"] == "1")
        photometric.append(ds.PhotometricInterpretation)
        uids.update({ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID})
    assert len(uids) == 3 * 20  # all distinct
    assert photometric.count("MONOCHROME1") == 3  # round(0.15 * 20), i.e. 10-20 %
    assert set(photometric) == {"MONOCHROME1", "MONOCHROME2"}


def test_csv_and_json_follow_the_contract(hip_dir):
    out, info = hip_dir
    first, rows, columns = _read_csv(out / "clinical.csv")
    assert first == f"# {SYNTHETIC_NOTE}"
    assert columns == ["PatientID", *[f for f in CLINICAL_FIELDS if f not in DICOM_FIELDS]]
    assert columns == ["PatientID", "age_bmd", "bmi", "alcohol", "activity", "diet_score", "smoking"]
    assert len(rows) == 20
    first, truth, columns = _read_csv(out / "ground_truth.csv")
    assert first == f"# {SYNTHETIC_NOTE}"
    assert columns == ["PatientID", "bmd", "t_score", "who_class", "label"]
    for row in truth:
        bmd = float(row["bmd"])
        assert int(row["label"]) == int(bmd < SCREENING_THRESHOLD)
        assert float(row["t_score"]) == pytest.approx((bmd - REFERENCE_MEAN) / REFERENCE_SD, abs=1e-5)
    saved = json.loads((out / "cohort.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(info))
    assert saved["synthetic"] is True and saved["note"] == SYNTHETIC_NOTE
    assert saved["seed"] == 4 and saved["task"] == "hip" and saved["n"] == 20
    assert "bmd = f + u_visible + e_invisible" in saved["formula"]
    assert 0.8 <= saved["oracle_r2"] <= 0.9 and saved["clinical_r2"] < saved["oracle_r2"] - 0.3
    counts = saved["counts"]
    assert counts["subjects"] == 20 and counts["photometric"] == {"MONOCHROME1": 3, "MONOCHROME2": 17}
    assert counts["below_threshold"] == sum(int(r["label"]) for r in truth)
    assert saved["parameters"]["cohort"]["sigma_invisible"] > 0


def test_monochrome1_file_is_the_inverse_of_monochrome2(tmp_path):
    subject = sample_cohort("hip", 1, seed=9).subjects[0]
    image = render_subject(subject, "hip", size=64, seed=9)
    again = render_subject(subject, "hip", size=64, seed=9)
    np.testing.assert_array_equal(image.pixels, again.pixels)  # one subject renders deterministically
    m2 = write_subject_dx(tmp_path / "m2.dcm", subject, image, task="hip", seed=9, window=True)
    m1 = write_subject_dx(
        tmp_path / "m1.dcm", subject, image, task="hip", seed=9, photometric="MONOCHROME1", window=True, uid_seed="x"
    )
    d2, d1 = pydicom.dcmread(m2), pydicom.dcmread(m1)
    assert d2.PhotometricInterpretation == "MONOCHROME2" and d1.PhotometricInterpretation == "MONOCHROME1"
    assert d1.PresentationLUTShape == "INVERSE" and d2.PresentationLUTShape == "IDENTITY"
    max_value = 2**image.bits_stored - 1
    np.testing.assert_array_equal(d2.pixel_array, image.pixels)
    np.testing.assert_array_equal(d1.pixel_array.astype(np.int64), max_value - image.pixels.astype(np.int64))
    # the window selects the same tissue in both files
    assert float(d1.WindowCenter) == pytest.approx(max_value - float(d2.WindowCenter))
    assert float(d1.WindowWidth) == pytest.approx(float(d2.WindowWidth))
    assert d1.SOPInstanceUID != d2.SOPInstanceUID


@pytest.mark.parametrize("n_classes, folders", [(2, KNEE_LABELS_BINARY), (3, ("normal", "osteopenia", "osteoporosis"))])
def test_kop_format_writes_class_folders(tmp_path, n_classes, folders):
    """The simple preset keeps the plain layout: one grey PNG per subject (the realistic mix: test_synth_realism)."""
    out = tmp_path / "kop"
    info = synthesize("knee", 6, out, seed=2, size=64, fmt="kop", n_classes=n_classes, progress=False, preset="simple")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(folders)
    _, truth, _ = _read_csv(out / "ground_truth.csv")
    labels = {row["PatientID"]: int(row["label"]) for row in truth}
    pngs = sorted(out.rglob("*.png"))
    assert len(pngs) == 6
    for png in pngs:
        assert folders[labels[png.stem]] == png.parent.name
        with Image.open(png) as im:
            assert im.mode == "L" and im.size == (64, 64)
            assert im.text.get("Comment") == SYNTHETIC_NOTE
    assert [len(list((out / f).glob("*.png"))) for f in folders] == [6 // n_classes] * n_classes
    _, rows, columns = _read_csv(out / "clinical.csv")
    assert columns == ["PatientID", *CLINICAL_FIELDS]  # no DICOM header: every clinical field in the CSV
    assert info["format"] == "kop" and not list(out.rglob("*.dcm"))


def test_bad_arguments_and_output_folder_rules(tmp_path):
    with pytest.raises(ValueError, match="for task 'knee'"):
        synthesize("hip", 2, tmp_path / "a", size=64, fmt="kop", progress=False)
    with pytest.raises(ValueError, match="unknown format"):
        synthesize("hip", 2, tmp_path / "a", size=64, fmt="nifti", progress=False)
    with pytest.raises(ValueError, match="at least 64"):
        synthesize("hip", 2, tmp_path / "a", size=32, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="not empty"):
        synthesize("hip", 2, foreign, size=64, progress=False)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        synthesize("hip", 2, foreign, size=64, progress=False, overwrite=True)
    assert (foreign / "keep.txt").read_text() == "user data"
    out = tmp_path / "cohort"
    synthesize("hip", 4, out, seed=0, size=64, progress=False)
    synthesize("hip", 2, out, seed=1, size=64, progress=False, overwrite=True)
    assert len(list((out / "dicom").rglob("*.dcm"))) == 2  # no stale files of the earlier, larger cohort
