"""build_datalist: accounting of every file, clinical join and corrections, labels, patient-disjoint stratified folds,
no direct identifiers in any output, and pydicom's bundled test corpus as real-world input."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from monai.data import load_decathlon_datalist
from PIL import Image

from monai_bone.constants import CLINICAL_FIELDS, KNEE_LABELS_THREE, SYNTHETIC_NOTE
from monai_bone.data.clinical_records import resolve_label
from monai_bone.data.datalist import build_datalist
from monai_bone.data.dicom_pixels import check_decodable
from monai_bone.data.fold_assign import assign_folds, bmd_strata
from monai_bone.data.folds import DATALIST_KEY
from monai_bone.synthetic.dicom_writer import write_dx
from monai_bone.synthetic.synth import synthesize

PHI_NAME = "Quillfeather^Zyxwandra"
PHI_BIRTH = "19230405"
PHI = {"PatientName": PHI_NAME, "PatientBirthDate": PHI_BIRTH}
BASE_KEYS = ["image", "patient_id", "sop_instance_uid", "study_instance_uid", "modality", "photometric"]


def _dx(path, patient_id, body_part="HIP", uid_seed="t", extra=None, **kwargs):
    # distinct pixels per file (seeded by its path): identical images with different labels are conflicting duplicates
    noise = np.random.default_rng(zlib.crc32(str(path).encode())).integers(0, 400, (6, 5))
    pixels = (np.arange(24 * 20).reshape(24, 20) % 1000 + np.kron(noise, np.ones((4, 4)))).astype(np.uint16)
    return write_dx(path, pixels, patient_id=patient_id, body_part=body_part, uid_seed=uid_seed, extra=extra, **kwargs)


def _csv(path, header, rows, comment=None):
    lines = ([f"# {comment}"] if comment else []) + [",".join(header)] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _by_name(rows):
    return {Path(r["path"]).name: r for r in rows}


@pytest.fixture(scope="module")
def hip_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("hip_cohort")
    synthesize("hip", 8, out, seed=1, size=64, progress=False)
    return out


def test_mixed_folder_accounting(tmp_path, hip_cohort, caplog):
    src = tmp_path / "mixed"
    shutil.copytree(hip_cohort / "dicom", src)
    ct = _dx(tmp_path / "tmp_ct.dcm", "SYN-H-0001", extra=PHI, synthetic=False)
    ds = pydicom.dcmread(ct)
    ds.Modality, ds.SOPClassUID = "CT", pydicom.uid.CTImageStorage
    ds.save_as(src / "ct_scan.dcm", enforce_file_format=True)
    (src / "readme.txt").write_text("Scanner export notes\n")
    data = _dx(tmp_path / "tmp_trunc.dcm", "SYN-H-0002", uid_seed="trunc", extra=PHI).read_bytes()
    (src / "cut.dcm").write_bytes(data[: len(data) - 300])
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(src / "preview.png")
    _dx(src / "norow.dcm", "NOROW-1", extra=PHI, age_years=70, sex="M")
    _dx(src / "phi_used.dcm", "PHI-1", extra=PHI, age_years=77, sex="F", height_m=1.6, weight_kg=58)
    (src / "zz_copy").mkdir()
    shutil.copy(src / "SYN-H-0003" / "SYN-H-0003_AP.dcm", src / "zz_copy" / "dup.dcm")
    extra_csv = _csv(tmp_path / "extra.csv", ["PatientID", "bmd"], [["PHI-1", 0.85]], comment=SYNTHETIC_NOTE)
    out = tmp_path / "index" / "datalist.json"
    clinical = [hip_cohort / "clinical.csv", hip_cohort / "ground_truth.csv", extra_csv]
    with caplog.at_level(logging.DEBUG):
        summary = build_datalist(src, out, clinical=clinical, task="hip", folds=3, seed=0, progress=False)

    assert (summary.seen, summary.used, summary.rejected) == (15, 9, 6)
    assert summary.reasons == {
        "not_xray": 1,
        "not_dicom": 2,
        "no_pixel_data": 1,
        "no_clinical_row": 1,
        "duplicate_sop_uid": 1,
    }
    rejects = _by_name(_read_csv(out.parent / "rejects.csv"))
    assert {k: v["reason"] for k, v in rejects.items()} == {
        "ct_scan.dcm": "not_xray",
        "readme.txt": "not_dicom",
        "preview.png": "not_dicom",
        "cut.dcm": "no_pixel_data",
        "norow.dcm": "no_clinical_row",
        "dup.dcm": "duplicate_sop_uid",
    }
    assert "Modality CT" in rejects["ct_scan.dcm"]["detail"]
    assert "text file" in rejects["readme.txt"]["detail"]
    assert "PNG" in rejects["preview.png"]["detail"]
    assert "truncated" in rejects["cut.dcm"]["detail"]
    assert "NOROW-1" in rejects["norow.dcm"]["detail"]
    assert "SYN-H-0003_AP.dcm" in rejects["dup.dcm"]["detail"]
    assert all(Path(out.parent, r["path"]).exists() for r in rejects.values())

    doc = json.loads(out.read_text())
    assert doc["task"] == "hip" and doc["num_folds"] == 3 and doc["seed"] == 0 and doc[DATALIST_KEY]
    assert doc["synthetic"] is True and doc["note"] == SYNTHETIC_NOTE
    assert doc["clinical_fields"] == list(CLINICAL_FIELDS)
    records = doc[DATALIST_KEY]
    expected_keys = [*BASE_KEYS, "bmd", *CLINICAL_FIELDS, "fold", "split"]
    assert all(list(r) == expected_keys for r in records)
    truth = {r["PatientID"]: float(r["bmd"]) for r in _read_csv_skip_comment(hip_cohort / "ground_truth.csv")}
    truth["PHI-1"] = 0.85
    assert {r["patient_id"]: r["bmd"] for r in records} == truth
    phi_rec = next(r for r in records if r["patient_id"] == "PHI-1")
    assert (phi_rec["age_xray"], phi_rec["sex"], phi_rec["height"], phi_rec["weight"]) == (77.0, "F", 1.6, 58.0)
    assert phi_rec["bmi"] == pytest.approx(58 / 1.6**2, abs=0.01) and phi_rec["smoking"] is None
    assert {r["fold"] for r in records if r["split"] == "train"} == {0, 1, 2}
    assert all(r["fold"] is None for r in records if r["split"] == "test")

    loaded = load_decathlon_datalist(out, data_list_key=DATALIST_KEY)
    assert len(loaded) == 9 and all(os.path.isfile(r["image"]) for r in loaded)

    # no direct identifier anywhere: datalist, rejects, warnings, logs
    texts = [out.read_text(), (out.parent / "rejects.csv").read_text(), (out.parent / "warnings.csv").read_text()]
    texts.append(caplog.text)
    for text in texts:
        assert PHI_NAME not in text and PHI_BIRTH not in text
        assert "Quillfeather" not in text
    assert "files seen 15 = used 9 + rejected 6" in caplog.text


def _read_csv_skip_comment(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_clinical_merge_corrections_and_warnings(tmp_path):
    src = tmp_path / "src"
    _dx(src / "p1.dcm", "P1", age_years=75.6, sex="F", height_m=1.62, weight_kg=61.5)
    _dx(src / "p2.dcm", "P2", age_years=70, sex="M", extra={"PatientSize": "162", "PatientWeight": "300"})
    _dx(src / "p3.dcm", "P3", age_years=80)
    _dx(src / "p4.dcm", "P4", age_years=72, height_m=1.70, weight_kg=70)
    _dx(src / "p5.dcm", "P5", age_years=72)
    _dx(src / "p6.dcm", "P6", age_years=72)
    table = _csv(
        tmp_path / "c.csv",
        ["PatientID", "sex", "weight", "height", "bmi", "alcohol", "age_bmd", "bmd"],
        [
            ["P1", "M", 70, "", "", 1, 76, 0.9],
            ["P2", "", "", "", "", 0, 71, 0.8],
            ["P3", "F", 60, 165, 50, "", 81, 0.7],
            ["P4", "", "", "", "", 2, "", 0.95],
            ["P4", "", "", "", "", 5, "", 0.95],
            ["P5", "", "", "", "", "", "", 5.0],
            ["P6", "", "", "", "", "", "", ""],
        ],
    )
    out = tmp_path / "dl.json"
    summary = build_datalist(src, out, clinical=[table], task="hip", folds=2, progress=False)
    assert (summary.used, summary.reasons) == (4, {"missing_label": 2})
    rejects = _by_name(_read_csv(tmp_path / "rejects.csv"))
    assert "implausible" in rejects["p5.dcm"]["detail"] and "P5" in rejects["p5.dcm"]["detail"]
    assert "no (or a conflicting) 'bmd'" in rejects["p6.dcm"]["detail"]
    records = {r["patient_id"]: r for r in json.loads(out.read_text())[DATALIST_KEY]}
    p1, p2, p3, p4 = (records[k] for k in ("P1", "P2", "P3", "P4"))
    assert (p1["sex"], p1["weight"], p1["height"], p1["age_xray"]) == ("M", 70.0, 1.62, 75.0)  # CSV wins
    assert p1["bmi"] == pytest.approx(70 / 1.62**2, abs=0.01)
    assert (p2["height"], p2["weight"], p2["bmi"]) == (1.62, None, None)
    assert (p3["height"], p3["bmi"], p3["sex"]) == (1.65, 50.0, "F")
    assert p4["alcohol"] is None and p4["bmi"] == pytest.approx(70 / 1.7**2, abs=0.01)

    warnings = defaultdict(set)
    for row in _read_csv(tmp_path / "warnings.csv"):
        warnings[row["patient_id"]].add((row["field"], row["code"], row["source"].split(":")[0]))
    assert warnings["P1"] == {
        ("sex", "disagreement", "csv"),
        ("weight", "disagreement", "csv"),
        ("bmi", "derived", "derived"),
    }
    assert warnings["P2"] == {("height", "unit_converted", "dicom"), ("weight", "implausible", "dicom")}
    assert warnings["P3"] == {("height", "unit_converted", "csv"), ("bmi", "disagreement", "csv")}
    assert warnings["P4"] == {("alcohol", "conflict", "csv"), ("bmi", "derived", "derived")}
    assert "P5" not in warnings and "P6" not in warnings  # warnings only for used files
    assert json.loads(out.read_text())["synthetic"] is True  # write_dx files are labelled synthetic


def test_knee_labels_from_csv(tmp_path):
    src = tmp_path / "src"
    for k in range(1, 7):
        _dx(src / f"k{k}.dcm", f"K{k}", body_part="KNEE" if k != 3 else "LEG", age_years=60)
    table = _csv(
        tmp_path / "c.csv",
        ["PatientID", "label"],
        [["K1", "normal"], ["K2", 1], ["K3", "Osteoporosis"], ["K4", 2], ["K5", 7]],
    )
    out = tmp_path / "dl.json"
    summary = build_datalist(src, out, clinical=table, task="knee", folds=2, progress=False)
    assert summary.reasons == {"missing_label": 1, "no_clinical_row": 1}
    doc = json.loads(out.read_text())
    assert doc["labels"] == list(KNEE_LABELS_THREE)  # "2" present → three classes
    assert {r["patient_id"]: r["label"] for r in doc[DATALIST_KEY]} == {"K1": 0, "K2": 1, "K3": 2, "K4": 2}
    assert all("bmd" not in r for r in doc[DATALIST_KEY])
    rejects = _by_name(_read_csv(tmp_path / "rejects.csv"))
    assert "'7'" in rejects["k5.dcm"]["detail"] and rejects["k6.dcm"]["reason"] == "no_clinical_row"
    body = [r for r in _read_csv(tmp_path / "warnings.csv") if r["field"] == "body_part"]
    assert [(r["patient_id"], r["original"]) for r in body] == [("K3", "LEG")]  # ambiguous body part: kept, warned


def test_inference_datalist_without_clinical_csv(tmp_path):
    src = tmp_path / "src"
    for k in range(4):
        _dx(src / f"{k}.dcm", f"I{k}", age_years=65 + k, sex="F", height_m=1.6, weight_kg=60 + k)
    out = tmp_path / "dl.json"
    summary = build_datalist(src, out, folds=2, progress=False)
    assert (summary.used, summary.rejected, summary.labelled, summary.task) == (4, 0, False, None)
    doc = json.loads(out.read_text())
    assert doc["task"] is None and "labels" not in doc
    for r in doc[DATALIST_KEY]:
        assert list(r) == [*BASE_KEYS, *CLINICAL_FIELDS, "fold", "split"]
        assert r["bmi"] == pytest.approx(r["weight"] / 1.6**2, abs=0.01) and r["age_bmd"] is None
    # a task without a label source is still an inference datalist: no missing_label rejects, bmd null
    summary = build_datalist(src, out, task="hip", folds=2, progress=False)
    assert summary.used == 4 and not summary.labelled
    assert all(r["bmd"] is None for r in json.loads(out.read_text())[DATALIST_KEY])


def _fold_cohort(tmp_path, task, n_patients=30, n_double=10):
    src = tmp_path / "src"
    rows = []
    rng = np.random.default_rng(0)
    for k in range(n_patients):
        pid = f"F{k:03d}"
        for image in range(2 if k < n_double else 1):
            _dx(src / pid / f"{image}.dcm", pid, body_part=task.upper(), uid_seed=f"img{image}", age_years=70)
        value = round(float(rng.uniform(0.6, 1.2)), 3) if task == "hip" else k % 2
        rows.append([pid, value])
    column = "bmd" if task == "hip" else "label"
    table = _csv(tmp_path / "c.csv", ["PatientID", column], rows)
    return src, table


@pytest.mark.parametrize("task", ["hip", "knee"])
def test_folds_patient_disjoint_and_stratified(tmp_path, task):
    src, table = _fold_cohort(tmp_path, task)
    out = tmp_path / "dl.json"
    summary = build_datalist(src, out, clinical=table, task=task, folds=3, seed=5, progress=False, test_fraction=0)
    assert (summary.used, summary.patients) == (40, 30)
    records = json.loads(out.read_text())[DATALIST_KEY]
    folds_of = defaultdict(set)
    for r in records:
        folds_of[r["patient_id"]].add(r["fold"])
    assert all(len(f) == 1 for f in folds_of.values())  # a patient never spans two folds
    assert sum(summary.fold_sizes.values()) == 40 and min(summary.fold_sizes.values()) >= 10
    if task == "hip":
        strata = bmd_strata([r["bmd"] for r in records], 5)  # what the index uses for 30 patients / 3 folds
    else:
        strata = [r["label"] for r in records]
    overall = Counter(strata)
    for fold in range(3):
        in_fold = Counter(s for s, r in zip(strata, records) if r["fold"] == fold)
        size = sum(in_fold.values())
        for stratum, count in overall.items():
            expected = count * size / len(records)
            assert abs(in_fold[stratum] - expected) <= 2.0, (fold, stratum, in_fold, overall)
    again = tmp_path / "again.json"
    build_datalist(src, again, clinical=table, task=task, folds=3, seed=5, progress=False, test_fraction=0)
    assert [r["fold"] for r in json.loads(again.read_text())[DATALIST_KEY]] == [r["fold"] for r in records]


def test_too_few_patients_and_nothing_usable(tmp_path):
    src = tmp_path / "src"
    _dx(src / "a.dcm", "A", uid_seed="1")
    _dx(src / "b.dcm", "A", uid_seed="2")
    _dx(src / "c.dcm", "B")
    with pytest.raises(ValueError, match=r"2 patient\(s\).*3 folds"):
        build_datalist(src, tmp_path / "out" / "dl.json", folds=3, progress=False)
    assert (tmp_path / "out" / "rejects.csv").exists() and not (tmp_path / "out" / "dl.json").exists()
    assert build_datalist(src, tmp_path / "out" / "dl.json", folds=2, progress=False).patients == 2
    assert build_datalist(src, tmp_path / "out" / "one.json", folds=1, progress=False).fold_sizes == {0: 3}

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("nothing here")
    with pytest.raises(ValueError, match=r"no usable images.*not_dicom 1"):
        build_datalist(junk, tmp_path / "junk_out" / "dl.json", folds=1, progress=False)
    assert _read_csv(tmp_path / "junk_out" / "rejects.csv")[0]["reason"] == "not_dicom"


def test_argument_errors(tmp_path):
    src = tmp_path / "src"
    _dx(src / "a.dcm", "A")
    with pytest.raises(ValueError, match="task"):
        build_datalist(src, tmp_path / "dl.json", task="spine")
    with pytest.raises(ValueError, match="folds"):
        build_datalist(src, tmp_path / "dl.json", folds=0)
    with pytest.raises(ValueError, match="PatientName"):
        build_datalist(src, tmp_path / "dl.json", key="PatientName")
    with pytest.raises(ValueError, match="is a folder"):
        build_datalist(src, tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        build_datalist(src, tmp_path / "dl.json", clinical=tmp_path / "missing.csv")


def test_resolve_label_and_assign_folds_helpers():
    assert resolve_label("Osteoporosis", ("normal", "osteoporosis")) == 1
    assert resolve_label(1.0, ("normal", "osteoporosis")) == 1
    for bad in ("osteopenia", 2, "1.5"):
        with pytest.raises(ValueError, match="label"):
            resolve_label(bad, ("normal", "osteoporosis"))
    assert bmd_strata([0.5, None, 0.9, 1.2], 2) == [0, -1, 1, 1]
    groups = ["a", "a", "b", "c", "d", "d"]
    folds = assign_folds(groups, [0, 0, 1, 0, 1, 1], 2, seed=0)
    assert folds[0] == folds[1] and folds[4] == folds[5] and set(folds) == {0, 1}
    # no class has 3 members: falls back to grouped, unstratified folds
    assert sorted(set(assign_folds(["a", "b", "c"], [0, 1, 1], 3, seed=0))) == [0, 1, 2]
    with pytest.raises(ValueError, match="folds"):
        assign_folds(["a"], [0], 2)


def test_vectorised_fold_search_matches_sklearn():
    """The faster fold scoring gives exactly scikit-learn's StratifiedGroupKFold folds."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    from monai_bone.data.fold_assign import _stratified_group_kfold

    rng = np.random.default_rng(7)
    compared = 0
    for trial in range(40):
        n, k, n_classes = int(rng.integers(12, 150)), int(rng.integers(2, 8)), int(rng.integers(2, 6))
        groups, y = rng.integers(0, max(k, n // 2), n), rng.integers(0, n_classes, n)
        if len(set(groups)) < k or min(Counter(y).values()) < 1:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                stock = StratifiedGroupKFold(k, shuffle=True, random_state=trial).split(np.zeros(n), y, groups)
                stock = [sorted(test) for _, test in stock]
            except ValueError:
                continue
            ours = [sorted(test) for _, test in _stratified_group_kfold(k, trial).split(np.zeros(n), y, groups)]
        assert ours == stock, trial
        compared += 1
    assert compared >= 20


def _decodes_as_single_grayscale(path: Path) -> bool:
    """Independent oracle: does pydicom fully decode this file to one grayscale frame?"""
    try:
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
    except Exception:
        return False
    return arr.ndim == 2 and ds.get("SamplesPerPixel", 1) == 1


def test_pydicom_test_corpus(tmp_path, caplog):
    """Every bundled pydicom test file is accounted for; plain radiographs (CR/DX) that decode are used.

    Stable expectations (pydicom 3.0): the three uncompressed MONOCHROME1 CR images of ``dicomdirtests/77654033``
    are used; CT_small/MR_small/rtplan are ``not_xray``; README.txt/zipMR.gz/ExplVR_LitEndNoMeta.dcm are ``not_dicom``.
    (This corpus has no compressed CR/DX file; compressed DX files are covered in test_dicom_header.py.)
    """
    files = [Path(f) for f in pydicom.data.get_testdata_files() if os.path.isfile(f)]
    root = Path(os.path.commonpath(files))
    src = tmp_path / "corpus"
    for f in files:
        dst = src / f.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst)
    out = tmp_path / "index" / "dl.json"
    with caplog.at_level(logging.DEBUG):
        summary = build_datalist(src, out, folds=1, progress=False)
    assert summary.seen == len(files) == summary.used + summary.rejected

    rejects = {r["path"]: r for r in _read_csv(out.parent / "rejects.csv")}
    records = json.loads(out.read_text())[DATALIST_KEY]
    used = {Path(out.parent, r["image"]).resolve().relative_to(src.resolve()).as_posix() for r in records}
    rejected = {Path(out.parent, p).resolve().relative_to(src.resolve()).as_posix() for p in rejects}
    assert used.isdisjoint(rejected) and len(used) + len(rejected) == len(files)
    assert all(r["detail"].strip() for r in rejects.values())

    for cr in ("CR1/6154", "CR2/6247", "CR3/6278"):
        assert f"dicomdirtests/77654033/{cr}" in used
    assert {r["modality"] for r in records} <= {"CR", "DX", "RG"}
    assert json.loads(out.read_text())["synthetic"] is False

    reason_of = {Path(p).name: r for p, r in rejects.items()}
    for name, reason, word in [
        ("CT_small.dcm", "not_xray", "CT"),
        ("MR_small.dcm", "not_xray", "MR"),
        ("rtplan.dcm", "not_xray", "RTPLAN"),
        ("README.txt", "not_dicom", "text"),
        ("zipMR.gz", "not_dicom", "gzip"),
        ("ExplVR_LitEndNoMeta.dcm", "not_dicom", "DICOM"),
    ]:
        assert reason_of[name]["reason"] == reason and word in reason_of[name]["detail"], reason_of[name]
    for row in rejects.values():
        if row["reason"] == "not_xray":
            assert "Modality" in row["detail"] or "SOP class" in row["detail"]

    # oracle: a CR/DX file that pydicom decodes to one grayscale frame must be used (compressed ones need a decoder)
    for f in files:
        rel = f.relative_to(root).as_posix()
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            continue
        if ds.get("Modality") in ("CR", "DX") and _decodes_as_single_grayscale(f):
            ts = str(ds.file_meta.TransferSyntaxUID)
            assert check_decodable(ts) is None and rel in used, rel

    # real patient names/birth dates of the corpus never reach the outputs
    names = set()
    for r in records:
        ds = pydicom.dcmread(Path(out.parent, r["image"]), stop_before_pixels=True)
        names |= {str(ds.get("PatientName", "")), str(ds.get("PatientBirthDate", ""))} - {""}
    assert names  # e.g. the CR files carry a name
    outputs = out.read_text() + (out.parent / "rejects.csv").read_text() + (out.parent / "warnings.csv").read_text()
    for value in names:
        assert value not in outputs and value not in caplog.text
