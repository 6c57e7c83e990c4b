"""The index applies the image guards: wrong body part / view rejected, missing tags warned, bilateral knees warned
or split into two studies; ``--folds`` below 2 refused. Real DICOM files written with pydicom (SYNTHETIC pixels)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from monai_bone.cli import main
from monai_bone.data.datalist import build_datalist
from monai_bone.synthetic.bilateral_phantom import render_bilateral_knee
from monai_bone.synthetic.dicom_writer import write_dx
from monai_bone.synthetic.phantom import render_phantom
from monai_bone.synthetic.realism import RealismRates

SINGLE = RealismRates(bilateral=0.0)  # realistic knees, one per image


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _phantom(task: str, seed: int):
    # one knee per image: the realistic preset draws bilateral knees for 30 % of knee images by default
    return render_phantom(task, 0.8, 26.0, size=64, seed=seed, bits_stored=12, rates=SINGLE).pixels


def _csv(path: Path, rows: list[tuple[str, object]], column: str) -> Path:
    path.write_text("PatientID," + column + "\n" + "".join(f"{k},{v}\n" for k, v in rows))
    return path


def test_hip_index_rejects_knee_and_lateral_views_and_warns_on_missing_tags(tmp_path):
    src = tmp_path / "src"
    rows = []
    for k in range(4):
        write_dx(src / f"hip{k}.dcm", _phantom("hip", k), patient_id=f"H{k}", body_part="HIP", uid_seed=f"h{k}")
        rows.append((f"H{k}", 0.8 + 0.01 * k))
    write_dx(src / "knee.dcm", _phantom("knee", 9), patient_id="K1", body_part="KNEE", uid_seed="k")
    write_dx(
        src / "lat.dcm",
        _phantom("hip", 7),
        patient_id="L1",
        body_part="HIP",
        uid_seed="l",
        extra={"ViewPosition": "LL"},
    )
    write_dx(
        src / "noview.dcm",
        _phantom("hip", 8),
        patient_id="N1",
        body_part="HIP",
        uid_seed="n",
        extra={"ViewPosition": "", "BodyPartExamined": ""},
    )
    rows += [("K1", 0.8), ("L1", 0.8), ("N1", 0.8)]
    table = _csv(tmp_path / "c.csv", rows, "bmd")
    out = tmp_path / "idx" / "datalist.json"
    summary = build_datalist(src, out, clinical=table, task="hip", folds=2, progress=False)
    assert summary.reasons == {"wrong_body_part": 1, "wrong_view": 1}
    rejects = {Path(r["path"]).name: r for r in _rows(out.parent / "rejects.csv")}
    assert rejects["knee.dcm"]["reason"] == "wrong_body_part" and "KNEE" in rejects["knee.dcm"]["detail"]
    assert rejects["lat.dcm"]["reason"] == "wrong_view" and "LL" in rejects["lat.dcm"]["detail"]
    notes = [r for r in _rows(out.parent / "warnings.csv") if r["path"].endswith("noview.dcm")]
    assert {r["field"] for r in notes} == {"body_part", "view"}  # missing tags: kept, with a warning each
    assert "N1" in {r["patient_id"] for r in json.loads(out.read_text())["training"]}
    # a site map that accepts the lateral view keeps it
    again = build_datalist(src, tmp_path / "idx2" / "dl.json", clinical=table, task="hip", folds=2, views=["AP", "LL"],
                           progress=False)  # fmt: skip
    assert again.reasons == {"wrong_body_part": 1}


def _knee_source(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "knees"
    rows = []
    for k in range(4):
        write_dx(src / f"single{k}.dcm", _phantom("knee", k), patient_id=f"S{k}", body_part="KNEE", uid_seed=f"s{k}")
        rows.append((f"S{k}", k % 2))
    for k in range(2):
        pixels = render_bilateral_knee(k, size=64)
        write_dx(src / f"both{k}.dcm", pixels, patient_id=f"B{k}", body_part="KNEE", uid_seed=f"b{k}")
        rows.append((f"B{k}", k % 2))
    return src, _csv(tmp_path / "knee.csv", rows, "label")


def test_knee_index_warns_about_bilateral_images_and_splits_them_when_asked(tmp_path):
    src, table = _knee_source(tmp_path)
    out = tmp_path / "warn" / "datalist.json"
    summary = build_datalist(src, out, clinical=table, task="knee", folds=2, progress=False)
    assert (summary.used, summary.rejected) == (6, 0)
    flagged = {Path(r["path"]).name for r in _rows(out.parent / "warnings.csv") if r["field"] == "bilateral"}
    assert flagged == {"both0.dcm", "both1.dcm"}  # detected, named, kept as one study each
    assert len(json.loads(out.read_text())["training"]) == 6

    out = tmp_path / "split" / "datalist.json"
    summary = build_datalist(src, out, clinical=table, task="knee", folds=2, bilateral="split", progress=False)
    assert (summary.seen, summary.used, summary.rejected) == (6, 6, 0)
    records = json.loads(out.read_text())["training"]
    assert len(records) == 8 and all({"split_from", "image_half"} <= set(r) for r in records)
    halves = [r for r in records if r["split_from"]]
    assert sorted((Path(r["split_from"]).name, r["image_half"]) for r in halves) == [
        ("both0.dcm", "left"), ("both0.dcm", "right"), ("both1.dcm", "left"), ("both1.dcm", "right")
    ]  # fmt: skip
    for pid in ("B0", "B1"):
        mine = [r for r in halves if r["patient_id"] == pid]
        assert len({r["fold"] for r in mine}) == 1 and len({r["image"] for r in mine}) == 2  # same fold, own images
    from monai_bone.transforms import LoadXray

    for r in halves:  # each half is a readable single-knee image
        image = LoadXray()(out.parent / r["image"])
        assert image.shape[-1] < image.shape[-2] * 1.2


def test_outputs_inside_the_source_are_not_indexed_again(tmp_path):
    src, table = _knee_source(tmp_path)
    out = src / "datalist.json"  # the index's files (lock, halves, CSVs) land inside the source folder
    first = build_datalist(src, out, clinical=table, task="knee", folds=2, bilateral="split", progress=False)
    assert len(list((src / "bilateral").glob("*.png"))) == 4
    assert sorted(p.name for p in src.iterdir() if p.name.startswith(".")) == []  # no lock or temporary file left
    second = build_datalist(src, out, clinical=table, task="knee", folds=2, bilateral="split", progress=False)
    assert (second.seen, second.used, second.rejected) == (first.seen, first.used, first.rejected) == (6, 6, 0)


def test_index_cli_refuses_fewer_than_two_folds(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["index", str(tmp_path), "--out", str(tmp_path / "dl.json"), "--folds", "1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--folds" in err and "use 2 or more" in err and "Traceback" not in err
    assert not (tmp_path / "dl.json").exists()
