"""Inference input (datalist, folder, single file)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from monai_bone.data.inference import inference_records, prepare_inference_datalist
from monai_bone.synthetic.synth import synthesize


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer_cohort")
    synthesize("hip", 3, root / "hip", seed=5, size=64, fmt="dicom", progress=False)
    return root / "hip"


def test_folder_is_indexed_without_labels(cohort, tmp_path):
    records = inference_records(cohort / "dicom", tmp_path / "work", clinical=cohort / "clinical.csv")
    assert len(records) == 3
    assert all(Path(r["image"]).is_file() and Path(r["image"]).resolve().is_relative_to(cohort) for r in records)
    assert all(r.get("bmd") is None for r in records)  # no ground truth joined: nothing to leak
    assert all(r["age_bmd"] is not None for r in records)  # from the clinical CSV
    written = json.loads((tmp_path / "work" / "inference_datalist.json").read_text())
    assert written["synthetic"] is True and {r["fold"] for r in written["training"]} == {0}
    assert (tmp_path / "work" / "rejects.csv").is_file()


def test_datalist_is_used_as_is_and_single_file_works(cohort, tmp_path):
    dl = prepare_inference_datalist(cohort / "dicom", tmp_path / "a")
    assert prepare_inference_datalist(dl, tmp_path / "b") == dl
    assert not (tmp_path / "b").exists()
    one = sorted((cohort / "dicom").rglob("*.dcm"))[0]
    records = inference_records(one, tmp_path / "c")
    assert len(records) == 1 and records[0]["patient_id"] in one.name
    assert records[0]["age_xray"] is not None  # from the DICOM header (PatientAge)


def test_png_file_and_flat_png_folder(tmp_path):
    kop = tmp_path / "kop"
    synthesize("knee", 4, kop, seed=6, size=64, fmt="kop", progress=False, preset="simple")  # grey PNGs
    pngs = sorted(kop.rglob("*.png"))
    one = inference_records(pngs[0], tmp_path / "w1")
    assert len(one) == 1 and one[0]["patient_id"] == pngs[0].stem
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in pngs:
        shutil.copy(p, flat / p.name)
    assert len(inference_records(flat, tmp_path / "w2")) == 4  # no class folders: still indexed, unlabelled
    records = inference_records(kop, tmp_path / "w3")  # KOP class folders: labels carried, not required
    assert sorted(r["label"] for r in records) == [0, 0, 1, 1]


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no inference input given"):
        prepare_inference_datalist("", tmp_path)
    with pytest.raises(FileNotFoundError, match="inference input not found"):
        prepare_inference_datalist(tmp_path / "missing", tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt: not a datalist"):
        prepare_inference_datalist(text, tmp_path / "w")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no usable images"):
        prepare_inference_datalist(empty, tmp_path / "w2")
