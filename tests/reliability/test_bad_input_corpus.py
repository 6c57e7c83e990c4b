"""Bad input across the whole path: a corpus of broken DICOM files, pydicom's odd test files and a messy clinical CSV
runs through the index (CLI), a pseudonymised index, training datasets and bundle inference.

Checked: zero unhandled exceptions; every file accounted for (index: used + rejected = seen; inference: one row per
input file, an error row for each bad one, a prediction for each good one); every reject, warning and error names
its file; the documented rule of each case (reject reason, correction) is applied and recorded; no planted
PatientName / PatientBirthDate / address reaches any output or log; pseudonymised outputs carry no original ID and
never the salt.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _reliability_corpus import (  # noqa: E402
    PLANTED_BIRTH_DATE,
    PLANTED_NAME,
    bundle_command,
    bundle_copy,
    copy_pydicom_corpus,
    grep_planted,
    make_bad_corpus,
    plant_identifiers,
    run_logged,
    synth_cohort,
    write_model,
)

from monai_bone.cli import main  # noqa: E402

SALT = "reliability-test-salt-9f3a"
N_GOOD = 6


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _messy_clinical_csv(cohort: Path, path: Path) -> dict[str, str]:
    """Semicolon-delimited Latin-1 CSV with decimal commas, a PatientName column, implausible values, an unknown sex
    code, a conflicting duplicate and a malformed line; returns ``{case: PatientID}``."""
    clinical = {r["PatientID"]: r for r in _rows(cohort / "clinical.csv")}
    truth = {r["PatientID"]: r for r in _rows(cohort / "ground_truth.csv")}
    ids = sorted(clinical)
    cases = {"age_300": ids[0], "weight_0": ids[1], "height_cm": ids[2], "age_nan": ids[3], "alcohol_neg": ids[4]}
    cases["sex_unknown"] = ids[5]
    columns = ["PatientID", "PatientName", "age_bmd", "height", "weight", "alcohol", "activity", "diet_score"]
    columns += ["smoking", "sex", "bmd"]
    lines = [";".join(columns)]
    for pid in ids:
        c, t = clinical[pid], truth[pid]
        row = {
            "PatientID": pid,
            "PatientName": PLANTED_NAME + "é",
            "age_bmd": c["age_bmd"].replace(".", ","),
            "height": "",
            "weight": "",
            "alcohol": c["alcohol"],
            "activity": c["activity"],
            "diet_score": c["diet_score"].replace(".", ","),
            "smoking": c["smoking"],
            "sex": "",
            "bmd": t["bmd"].replace(".", ","),
        }
        if pid == cases["age_300"]:
            row["age_bmd"] = "300"
        if pid == cases["weight_0"]:
            row["weight"] = "0"
        if pid == cases["height_cm"]:
            row["height"] = "162"
        if pid == cases["age_nan"]:
            row["age_bmd"] = "NaN"  # a missing-value token (pandas writes NaN for missing): null, no warning
            row["activity"] = "inf"  # not finite: unparseable
        if pid == cases["alcohol_neg"]:
            row["alcohol"] = "-3"
        if pid == cases["sex_unknown"]:
            row["sex"] = "X"
        lines.append(";".join(row[k] for k in columns))
    # duplicate PatientID with a conflicting weight; a line with a missing cell
    lines.append(";".join([ids[0], PLANTED_NAME, "", "", "71", "", "", "", "", "", ""]))
    lines.append(";".join([ids[0], PLANTED_NAME, "", "", "82", "", "", "", "", "", ""]))
    lines.append(f"{ids[1]};{PLANTED_NAME};70")
    # the file that passes the header-only index but has corrupt pixel data gets a clinical row, so it is indexed
    lines.append(";".join(["BAD-PIXELS", PLANTED_NAME, "70", "1,60", "60", "0", "1", "0", "never", "F", "0,8"]))
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return cases


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Build the corpus, run the index (plain and pseudonymised) through the CLI and inference through the bundle."""
    root = tmp_path_factory.mktemp("corpus")
    logs = root / "logs"
    logs.mkdir()
    handler = logging.FileHandler(logs / "library.log", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root_logger = logging.getLogger()
    old_level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.INFO)
    try:
        yield _build(root, logs)
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)
        handler.close()


def _build(root: Path, logs: Path) -> dict:
    cohort = synth_cohort(root, N_GOOD, seed=1)
    inputs = root / "input"
    good = sorted((cohort / "dicom").rglob("*.dcm"))
    (inputs / "good").mkdir(parents=True)
    for p in good:
        shutil.copyfile(p, inputs / "good" / p.name)
    # header-level field problems: unknown sex code and an absurd age in two DICOM headers
    odd_sex, odd_age = inputs / "good" / good[0].name, inputs / "good" / good[1].name
    for path, keyword, value in ((odd_sex, "PatientSex", "O"), (odd_age, "PatientAge", "300Y")):
        ds = pydicom.dcmread(path)
        setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    # a malformed birth date: pydicom warns quoting the value if anything converts it
    plant_identifiers(inputs / "good" / good[2].name, birth_date=PLANTED_BIRTH_DATE + "XX")
    expected = make_bad_corpus(inputs / "bad", good[0])
    pydicom_names = copy_pydicom_corpus(inputs / "pydicom")
    all_files = sorted(p.relative_to(inputs).as_posix() for p in inputs.rglob("*") if p.is_file())
    clinical = root / "clinical_messy.csv"
    cases = _messy_clinical_csv(cohort, clinical)

    out = root / "index"
    rc_index = main(["index", str(inputs), "--out", str(out / "datalist.json"), "--clinical", str(clinical),
                     "--task", "hip", "--folds", "2", "--no-progress"])  # fmt: skip
    pseud = root / "pseud"
    mapping = root / "private" / "pseudonyms.csv"
    os.environ["MONAI_BONE_SALT"] = SALT
    try:
        rc_pseud = main(["index", str(inputs), "--out", str(pseud / "datalist.json"), "--clinical", str(clinical),
                         "--task", "hip", "--folds", "2", "--no-progress", "--pseudonymise",
                         "--mapping", str(mapping)])  # fmt: skip
    finally:
        del os.environ["MONAI_BONE_SALT"]
    rc_nosalt = main(["index", str(inputs), "--out", str(root / "nosalt" / "datalist.json"), "--no-progress",
                      "--pseudonymise"])  # fmt: skip

    records = json.loads((out / "datalist.json").read_text())["training"]
    bundle = bundle_copy("hip_bmd_xattn", root)
    write_model(bundle, [r for r in records if r["image"].startswith("../input/good/")])
    infer = root / "inference"
    overrides = {"input": inputs, "output_dir": infer, "spatial_size": 64, "batch_size": 4, "num_workers": 0,
                 "save_gradcam": "true"}  # fmt: skip
    start = time.monotonic()
    proc = run_logged(bundle_command(["inference.json"], overrides), bundle, logs / "inference.log")
    return {
        "root": root,
        "inputs": inputs,
        "cohort": cohort,
        "all_files": all_files,
        "expected": expected,
        "pydicom": pydicom_names,
        "clinical": clinical,
        "cases": cases,
        "odd_sex": odd_sex.name,
        "odd_age": odd_age.name,
        "index": out,
        "pseud": pseud,
        "mapping": mapping,
        "rc": (rc_index, rc_pseud, rc_nosalt),
        "bundle": bundle,
        "inference": infer,
        "inference_rc": proc.returncode,
        "inference_s": time.monotonic() - start,
        "logs": logs,
    }


def test_index_accounts_for_every_file(corpus):
    assert corpus["rc"][0] == 0
    out, inputs = corpus["index"], corpus["inputs"]
    records = json.loads((out / "datalist.json").read_text())["training"]
    rejects = _rows(out / "rejects.csv")
    used = {Path(os.path.normpath(out / r["image"])).relative_to(inputs).as_posix() for r in records}
    rejected = {Path(os.path.normpath(out / r["path"])).relative_to(inputs).as_posix() for r in rejects}
    assert not used & rejected
    assert used | rejected == set(corpus["all_files"])  # seen = used + rejected, nothing lost
    for r in rejects:  # every reject names its file, a documented reason and a detail
        assert r["path"] and r["reason"] and r["detail"], r
    by_name = {Path(r["path"]).name: r["reason"] for r in rejects}
    for name, reason in corpus["expected"].items():
        if reason == "used":
            assert f"bad/{name}" in used
        else:
            assert by_name[name] == reason, (name, by_name.get(name))
    assert {f"good/{p.name}" for p in (inputs / "good").iterdir()} <= used
    # pydicom's corpus: all accounted for, the CT/MR/RT/... files refused as not plain radiographs
    reasons = Counter(r["reason"] for r in rejects if "pydicom_" in r["path"])
    assert reasons["not_xray"] > 50 and sum(reasons.values()) + sum("pydicom_" in u for u in used) == len(
        corpus["pydicom"]
    )


def test_index_records_the_clinical_rules(corpus):
    warnings = _rows(corpus["index"] / "warnings.csv")
    assert all(w["path"] and w["field"] and w["code"] and w["detail"] for w in warnings)
    cases = corpus["cases"]

    def find(pid, field, code):
        return [w for w in warnings if w["patient_id"] == pid and w["field"] == field and w["code"] == code]

    assert find(cases["age_300"], "age_bmd", "implausible")
    assert find(cases["weight_0"], "weight", "implausible")
    (conv,) = find(cases["height_cm"], "height", "unit_converted")
    assert float(conv["corrected"]) == pytest.approx(1.62)
    assert find(cases["age_nan"], "activity", "unparseable") and not find(cases["age_nan"], "age_bmd", "unparseable")
    assert find(cases["alcohol_neg"], "alcohol", "implausible")
    assert find(cases["sex_unknown"], "sex", "unparseable")
    (conflict,) = find(cases["age_300"], "weight", "conflict")
    assert "71" in conflict["original"] and "82" in conflict["original"]
    # header-level problems of the two edited DICOM files
    assert any(w["path"].endswith(corpus["odd_sex"]) and w["code"] == "unknown_code" for w in warnings)
    assert any(w["path"].endswith(corpus["odd_age"]) and w["field"] == "age_xray" for w in warnings)
    # CSV file-level problems: the malformed line and the Latin-1 fallback, naming the CSV
    csv_rows = [w for w in warnings if w["path"].endswith("clinical_messy.csv")]
    assert {(w["field"], w["code"]) for w in csv_rows} == {("row", "skipped"), ("encoding", "note")}
    assert any("clinical_messy.csv:" in w["detail"] for w in csv_rows if w["code"] == "skipped")
    # the implausible and conflicting values were not used
    records = {r["patient_id"]: r for r in json.loads((corpus["index"] / "datalist.json").read_text())["training"]}
    assert records[cases["age_300"]]["age_bmd"] is None
    assert records[cases["height_cm"]]["height"] == pytest.approx(1.62)
    assert records[cases["alcohol_neg"]]["alcohol"] is None
    assert records[cases["age_nan"]]["age_bmd"] is None and records[cases["age_nan"]]["activity"] is None
    # the CSV weight conflict (71 vs 82) is nulled; the header weight is used instead
    assert records[cases["age_300"]]["weight"] not in (71.0, 82.0)


def test_inference_gives_an_error_row_per_bad_study_and_never_stops(corpus):
    log = (corpus["logs"] / "inference.log").read_text()
    assert corpus["inference_rc"] == 0, log[-4000:]
    assert "Traceback" not in log
    doc = json.loads((corpus["inference"] / "predictions.json").read_text())
    rows = doc["predictions"]
    inputs = corpus["inputs"]
    images = [r["image"] for r in rows]
    assert len(images) == len(set(images))
    # one row per input file (used + rejected = seen), except documents beside the images (pydicom's corpus has
    # .json/.txt/.gz/... files): those are accounted for in the index's rejects.csv only
    from monai_bone.handlers.prediction_writer import NON_IMAGE_SUFFIXES

    documents = set(corpus["all_files"]) - set(images)
    assert documents and all(Path(d).suffix.lower() in NON_IMAGE_SUFFIXES for d in documents)
    index_rejects = {
        Path(os.path.normpath(corpus["inference"] / r["path"])).relative_to(inputs).as_posix(): r["reason"]
        for r in _rows(corpus["inference"] / "rejects.csv")
    }
    assert all(index_rejects[d] in ("not_dicom", "not_image") for d in documents)
    assert set(images) | documents == set(corpus["all_files"])
    errors = {r["image"]: r["error"] for r in rows if r.get("error")}
    assert doc["n_errors"] == len(errors) and doc["n"] == len(images)
    for name in corpus["expected"]:
        assert f"bad/{name}" in errors, name
    # the study that passes the header index but cannot be decoded: a load error naming the file, no prediction
    (bad_pixels,) = [r for r in rows if r["image"] == "bad/corrupt_pixels.dcm"]
    assert "corrupt_pixels.dcm" in bad_pixels["error"] and bad_pixels.get("bmd") is None
    for r in rows:
        if r["image"].startswith("good/"):
            assert not r.get("error") and math.isfinite(r["bmd"]), r
        if r.get("error"):
            assert r.get("bmd") is None and (inputs / r["image"]).is_file()
    # Grad-CAM only for studies with a prediction
    cams = list((corpus["inference"] / "gradcam").glob("*.png"))
    assert len(cams) == len(rows) - len(errors)


def test_training_dataset_drops_an_undecodable_study(corpus, tmp_path, caplog):
    from monai.transforms import Compose

    from monai_bone.data.datasets import make_dataset
    from monai_bone.data.folds import load_records
    from monai_bone.transforms import LoadXrayd, XrayNormalised

    records = load_records(corpus["index"] / "datalist.json")
    assert any(r["image"].endswith("corrupt_pixels.dcm") for r in records)
    rejects = tmp_path / "train_load_rejects.csv"
    with caplog.at_level(logging.WARNING):
        ds = make_dataset(records, Compose([LoadXrayd("image"), XrayNormalised("image")]), rejects_path=rejects)
    assert len(ds) == len(records) - 1
    (row,) = _rows(rejects)
    assert row["path"].endswith("corrupt_pixels.dcm") and "corrupt_pixels.dcm" in row["detail"]
    assert row["reason"] == "unreadable_image" and "corrupt_pixels.dcm" in caplog.text


def test_loader_refuses_absurd_sizes_before_decoding(corpus):
    from monai_bone.transforms import LoadXray, XrayReadError

    loader = LoadXray()
    for name in ("huge_10000x10000.dcm", "tiny_3x3.dcm"):
        start = time.perf_counter()
        with pytest.raises(XrayReadError, match=name.replace(".", r"\.") + r".*size rule"):
            loader(corpus["inputs"] / "bad" / name)
        assert time.perf_counter() - start < 5.0  # decoding 10^8 pixels would take far longer


def test_pseudonymised_index(corpus):
    assert corpus["rc"][1] == 0
    assert corpus["rc"][2] == 1  # no salt: refused
    pseud, plain = corpus["pseud"], corpus["index"]
    a = json.loads((plain / "datalist.json").read_text())
    b = json.loads((pseud / "datalist.json").read_text())
    assert "salt not stored" in b["pseudonymised"]
    mapping = {(r["kind"], r["original"]): r["pseudonym"] for r in _rows(corpus["mapping"])}
    for ra, rb in zip(a["training"], b["training"]):
        assert ra["image"] == rb["image"] and ra["fold"] == rb["fold"] and ra["bmd"] == rb["bmd"]  # join intact
        assert rb["patient_id"] == mapping[("PatientID", ra["patient_id"])].strip()
        assert rb["patient_id"].startswith("PSN-") and rb["sop_instance_uid"].startswith("2.25.")
        assert rb["study_instance_uid"] == mapping[("StudyInstanceUID", ra["study_instance_uid"])]
    originals = {r["patient_id"] for r in a["training"]} | {r["sop_instance_uid"] for r in a["training"]}
    originals |= {r["study_instance_uid"] for r in a["training"]} | set(corpus["cases"].values())
    originals.discard(None)
    # image paths are kept as they are (documented): file names made of patient IDs stay visible there
    texts = {"datalist.json": json.dumps([{k: v for k, v in r.items() if k != "image"} for r in b["training"]])}
    for name in ("rejects.csv", "warnings.csv"):
        texts[name] = json.dumps([{k: v for k, v in r.items() if k != "path"} for r in _rows(pseud / name)])
    for name, text in texts.items():
        leaked = sorted(o for o in originals if o in text)
        assert leaked == [], (name, leaked[:5])
    for path in [*pseud.iterdir(), corpus["mapping"], *corpus["logs"].iterdir()]:
        assert SALT not in path.read_text(encoding="utf-8", errors="replace"), path


def test_no_planted_identifier_in_any_output(corpus):
    root = corpus["root"]
    outputs = [root / "index", root / "pseud", root / "private", root / "inference", corpus["logs"]]
    outputs += [corpus["bundle"] / "models"]
    assert grep_planted(outputs) == []
    # the needles are really in the inputs (the grep would find a leak)
    assert grep_planted([corpus["inputs"] / "good", corpus["clinical"]])
