"""Tests of the ``monai-bone synth`` sub-command through ``monai_bone.cli.main``."""

from __future__ import annotations

import json
import logging

import pydicom
import pytest

from monai_bone.cli import main
from monai_bone.constants import SYNTHETIC_NOTE


def test_synth_writes_a_dicom_cohort(tmp_path, caplog):
    out = tmp_path / "hip"
    with caplog.at_level(logging.INFO):
        rc = main(
            ["synth", "--task", "hip", "--n", "5", "--out", str(out), "--size", "64", "--seed", "3", "--no-progress"]
        )
    assert rc == 0
    files = sorted((out / "dicom").rglob("*.dcm"))
    assert len(files) == 5
    assert all(pydicom.dcmread(f).BodyPartExamined == "HIP" for f in files)
    info = json.loads((out / "cohort.json").read_text())
    assert info["synthetic"] is True and info["seed"] == 3 and info["size"] == 64 and info["n"] == 5
    assert (out / "clinical.csv").read_text().startswith(f"# {SYNTHETIC_NOTE}")
    assert (out / "ground_truth.csv").exists()
    # the summary is logged and labelled synthetic: counts, share below 0.899, oracle R^2
    text = caplog.text
    assert "SYNTHETIC" in text and "below 0.899" in text and "oracle R^2" in text


def test_synth_kop_format_writes_class_folders(tmp_path):
    out = tmp_path / "knee"
    args = ["synth", "--task", "knee", "--n", "6", "--out", str(out), "--size", "64", "--format", "kop"]
    assert main([*args, "--classes", "3", "--no-progress"]) == 0
    for name in ("normal", "osteopenia", "osteoporosis"):
        assert len([p for p in (out / name).iterdir() if p.suffix in (".png", ".jpg")]) == 2
    assert not (out / "dicom").exists()
    simple = tmp_path / "simple"
    args = ["synth", "--task", "knee", "--n", "4", "--out", str(simple), "--size", "64", "--format", "kop"]
    assert main([*args, "--preset", "simple", "--no-progress"]) == 0  # 2 classes, grey PNG, as before
    assert sorted(p.name for p in simple.iterdir() if p.is_dir()) == ["normal", "osteoporosis"]
    assert len(list(simple.rglob("*.png"))) == 4 and json.loads((simple / "cohort.json").read_text())["n_classes"] == 2


def test_synth_errors_are_reported_not_raised(tmp_path, caplog):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    with caplog.at_level(logging.ERROR):
        assert main(["synth", "--task", "hip", "--n", "2", "--out", str(out), "--size", "64", "--no-progress"]) == 1
    assert "not empty" in caplog.text
    assert main(["synth", "--task", "hip", "--n", "2", "--out", str(out / "x"), "--format", "kop"]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--task", "hip", "--n", "2", "--out", str(out / "y"), "--size", "16"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["synth", "--task", "spine", "--n", "2", "--out", str(out / "z")])
