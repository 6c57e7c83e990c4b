"""``monai-bone index`` through ``monai_bone.cli.main``: DICOM cohort with two CSVs, synthetic KOP folders, errors."""

from __future__ import annotations

import csv
import json
import logging

import pytest
from monai.data import load_decathlon_datalist

from monai_bone.cli import main
from monai_bone.constants import KNEE_LABELS_BINARY
from monai_bone.synthetic.synth import synthesize


def _truth(path):
    with open(path, newline="") as f:
        return {r["PatientID"]: r for r in csv.DictReader(line for line in f if not line.startswith("#"))}


@pytest.fixture(scope="module")
def hip(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_hip")
    synthesize("hip", 6, out, seed=3, size=64, progress=False)
    return out


@pytest.fixture(scope="module")
def kop(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_kop")
    synthesize("knee", 8, out, seed=4, size=64, fmt="kop", n_classes=2, progress=False)
    return out


def test_index_hip_dicom_with_two_csvs(hip, tmp_path, capsys):
    out = tmp_path / "run" / "datalist.json"
    argv = ["index", str(hip / "dicom"), "--out", str(out), "--task", "hip", "--folds", "3", "--seed", "1"]
    argv += ["--clinical", str(hip / "clinical.csv"), "--clinical", str(hip / "ground_truth.csv")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "files seen 6 = used 6 + rejected 0" in captured.out
    assert "6/6" in captured.err  # tqdm progress bar
    doc = json.loads(out.read_text())
    assert doc["task"] == "hip" and doc["num_folds"] == 3 and doc["seed"] == 1 and doc["synthetic"] is True
    truth = _truth(hip / "ground_truth.csv")
    records = load_decathlon_datalist(out, data_list_key="training")
    assert {r["patient_id"]: r["bmd"] for r in records} == {k: float(v["bmd"]) for k, v in truth.items()}
    assert all(r["age_bmd"] is not None and r["age_xray"] is not None and r["smoking"] for r in records)
    lines = (out.parent / "rejects.csv").read_text().splitlines()
    assert lines == [f"# monai-bone index run {doc['run_id']}", "path,reason,detail"]


def test_index_synthetic_kop_folders(kop, tmp_path, capsys):
    out = tmp_path / "kop_index" / "datalist.json"
    assert main(["index", str(kop), "--out", str(out), "--task", "knee", "--folds", "2", "--no-progress"]) == 0
    assert "files seen 12 = used 8 + rejected 4" in capsys.readouterr().out
    with open(out.parent / "rejects.csv", newline="") as f:
        rejects = {r["path"].rsplit("/", 1)[-1]: r["reason"] for r in csv.DictReader(f.readlines()[1:])}
    csvs = ("clinical.csv", "ground_truth.csv", "realism.csv", "cohort.json")
    assert rejects == dict.fromkeys(csvs, "not_image")
    doc = json.loads(out.read_text())
    assert doc["source_kind"] == "kop" and doc["labels"] == list(KNEE_LABELS_BINARY)
    assert doc["synthetic"] is True  # PNG comment chunks carry the synthetic note
    truth = _truth(kop / "ground_truth.csv")
    records = doc["training"]
    # image folders without a patient_id column: the patient is the file's path inside the source (class/stem)
    assert {r["patient_id"]: r["label"] for r in records} == {
        f"{KNEE_LABELS_BINARY[int(v['label'])]}/{k}": int(v["label"]) for k, v in truth.items()
    }
    assert all(r["modality"] is None and r["age_xray"] is None for r in records)

    # with the cohort's CSVs: they are inputs (not counted), labels agree with the folders, fields are filled
    out2 = tmp_path / "kop_index2" / "datalist.json"
    argv = ["index", str(kop), "--out", str(out2), "--task", "knee", "--folds", "2", "--no-progress"]
    argv += ["--clinical", str(kop / "clinical.csv"), "--clinical", str(kop / "ground_truth.csv")]
    assert main(argv) == 0
    assert "files seen 10 = used 8 + rejected 2" in capsys.readouterr().out  # realism.csv, cohort.json
    records = json.loads(out2.read_text())["training"]
    assert all(r["age_xray"] is not None and r["sex"] in ("F", "M") for r in records)
    with open(out2.parent / "warnings.csv", newline="") as f:
        assert [r for r in csv.DictReader(f.readlines()[1:]) if r["field"] == "label"] == []


def test_index_errors_return_1(hip, tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        code = main(["index", str(hip / "dicom"), "--out", str(tmp_path / "dl.json"), "--folds", "50", "--no-progress"])
    assert code == 1 and "50 folds" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(["index", str(tmp_path / "missing"), "--out", str(tmp_path / "dl.json")]) == 1
    assert "does not exist" in caplog.text
