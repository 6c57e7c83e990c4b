"""The image guards through the bundles: the hip model gives error rows (not a BMD) for a knee DX, a lateral hip view
and a blank image; training drops the blank study and lists it as ``blank_image``; pseudonymised inference names no
output after a PatientID; a bad bundle argument ends in one line. Real DICOM/PNG files, real bundle configs (untrained
copies, SYNTHETIC images)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monai_bone.bundle import bundle_workflow, default_bundle_dir, quiet_engines, untrained_copy
from monai_bone.bundle.errors import format_argument_error
from monai_bone.data.folds import load_records
from monai_bone.synthetic.dicom_writer import write_dx
from monai_bone.synthetic.phantom import render_phantom
from monai_bone.synthetic.synth import synthesize

SMALL = {"spatial_size": 64, "num_workers": 0, "device": "$torch.device('cpu')"}


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.fixture(scope="module")
def hip(tmp_path_factory) -> dict:
    """A hip folder (3 synthetic studies + a knee DX, a lateral hip view and a blank hip DX) and an untrained bundle."""
    root = tmp_path_factory.mktemp("guards")
    synthesize("hip", 4, root / "cohort", size=64, seed=5, progress=False)
    folder = root / "studies"
    shutil.copytree(root / "cohort" / "dicom", folder)
    pixels = render_phantom("knee", 0.8, 26.0, size=64, seed=1, bits_stored=12).pixels
    write_dx(folder / "odd" / "knee.dcm", pixels, patient_id="X-KNEE", body_part="KNEE", uid_seed="k")
    hip_pixels = render_phantom("hip", 0.8, 26.0, size=64, seed=2, bits_stored=12).pixels
    write_dx(folder / "odd" / "lateral.dcm", hip_pixels, patient_id="X-LAT", body_part="HIP", uid_seed="l",
             extra={"ViewPosition": "LL"})  # fmt: skip
    write_dx(folder / "odd" / "blank.dcm", np.full((64, 64), 1800), patient_id="X-BLANK", body_part="HIP", uid_seed="b")
    (root / "extra.csv").write_text("PatientID,bmd\nX-BLANK,0.81\n")
    from monai_bone.data.datalist import build_datalist

    index = root / "index" / "datalist.json"
    clinical = [root / "cohort" / "clinical.csv", root / "cohort" / "ground_truth.csv", root / "extra.csv"]
    # no locked test split (the index default holds out 20 % of patients): every indexed study is trained/validated
    build_datalist(folder, index, clinical=clinical, task="hip", folds=2, progress=False, image_task=None,
                   test_fraction=0.0)  # fmt: skip
    records = load_records(index)
    bundle = untrained_copy(default_bundle_dir("hip"), root / "bundle" / "hip_bmd_xattn", records, seed=0)
    return {"root": root, "folder": folder, "index": index, "bundle": bundle, "records": records}


def _infer(bundle: Path, input: Path, out: Path, **overrides) -> dict:
    with quiet_engines():
        wf = bundle_workflow(bundle, ("inference.json",), "infer", input=str(input), output_dir=str(out), **SMALL,
                             **overrides)  # fmt: skip
        wf.initialize()
        wf.run()
        wf.finalize()
    return {Path(r["image"]).name: r for r in json.loads((out / "predictions.json").read_text())["predictions"]}


def test_hip_model_gives_error_rows_for_wrong_images(hip, tmp_path):
    rows = _infer(hip["bundle"], hip["folder"], tmp_path / "infer")
    expected = {"knee.dcm": "wrong_body_part", "lateral.dcm": "wrong_view", "blank.dcm": "blank_image"}
    for name, reason in expected.items():
        row = rows[name]
        assert reason in row["error"] and name in row["error"], row
        assert row.get("bmd") is None and row.get("who_class") in (None, "")
    good = [r for n, r in rows.items() if n not in expected]
    assert len(good) == 4 and all(not r.get("error") and np.isfinite(r["bmd"]) for r in good)


def test_training_drops_the_blank_study_as_blank_image(hip):
    assert any(r["image"].endswith("blank.dcm") for r in hip["records"])  # header-only: the index cannot tell
    with quiet_engines():
        wf = bundle_workflow(hip["bundle"], ("train.json",), "train", datalist=str(hip["index"]), epochs=1, **SMALL)
        wf.initialize()
        sizes = {part: len(wf.parser.get_parsed_content(f"{part}#dataset")) for part in ("train", "validate")}
    models = hip["bundle"] / "models"
    rejects = _rows(models / "train_load_rejects.csv") + _rows(models / "val_load_rejects.csv")
    (row,) = [r for r in rejects if r["path"].endswith("blank.dcm")]
    assert row["reason"] == "blank_image" and "blank.dcm" in row["detail"] and "grey levels" in row["detail"]
    assert sum(sizes.values()) == len(hip["records"]) - 1


def test_pseudonymised_inference_names_no_output_after_a_patient_id(tmp_path, monkeypatch):
    from PIL import Image

    dicom, png = tmp_path / "raw_dicom", tmp_path / "raw_png"
    png.mkdir()
    for k in range(2):
        pixels = render_phantom("knee", 0.8, 26.0, size=64, seed=k, bits_stored=12).pixels
        write_dx(dicom / f"MRN7000{k}.dcm", pixels, patient_id=f"MRN7000{k}", body_part="KNEE", uid_seed=f"p{k}")
        Image.fromarray((pixels >> 4).astype(np.uint8)).save(png / f"MRN7100{k}_img.png")
    bundle = untrained_copy(default_bundle_dir("knee"), tmp_path / "knee_bundle", seed=0)
    ids = ("MRN7000", "MRN7100")

    def output_names(out: Path) -> list[str]:
        return [p.relative_to(out).as_posix() for p in out.rglob("*")]

    plain = tmp_path / "plain"
    _infer(bundle, dicom, plain, save_gradcam=True)
    assert any(i in n for n in output_names(plain) for i in ids)  # without the option, names carry the IDs

    monkeypatch.setenv("MONAI_BONE_SALT", "guards-test-salt-1234")
    for source in (dicom, png):
        out = tmp_path / f"pseud_{source.name}"
        rows = _infer(bundle, source, out, save_gradcam=True, pseudonymise=True)
        names = output_names(out)
        assert len([n for n in names if n.startswith("gradcam/")]) == 2, names
        assert [n for n in names if any(i in n for i in ids)] == []
        assert len(rows) == 2 and all(r["patient_id"].startswith("PSN-") and not r.get("error") for r in rows.values())
        datalist = json.loads((out / "inference_datalist.json").read_text())
        assert "pseudonymised" in datalist and all(r["patient_id"].startswith("PSN-") for r in datalist["training"])
    monkeypatch.delenv("MONAI_BONE_SALT")
    with pytest.raises(Exception) as caught:  # no salt: refused with one line naming the fix
        _infer(bundle, dicom, tmp_path / "nosalt", pseudonymise=True)
    assert "bad --salt" in format_argument_error(caught.value)


def test_bad_bundle_arguments_end_in_one_line(hip, tmp_path):
    cases = {
        "datalist": ("train.json", {"datalist": str(tmp_path / "missing.json")}, "missing.json"),
        "input": ("inference.json", {"input": str(tmp_path / "nothing_here")}, "nothing_here"),
        "ckpt_path": ("inference.json", {"input": str(hip["folder"]), "ckpt_path": str(tmp_path / "no.pt")}, "no.pt"),
    }
    (tmp_path / "photo.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    cases["webp"] = ("inference.json", {"input": str(tmp_path / "photo.webp")}, "photo.webp")
    for name, (config, overrides, needle) in cases.items():
        with quiet_engines(), pytest.raises(Exception) as caught:
            wf = bundle_workflow(hip["bundle"], (config,), "infer" if "inference" in config else "train",
                                 output_dir=str(tmp_path / name), **SMALL, **overrides)  # fmt: skip
            wf.initialize()
            wf.run()
        line = format_argument_error(caught.value)
        config_id = "input" if name == "webp" else name
        assert line is not None and "\n" not in line, (name, caught.value)
        assert line.startswith(f"monai-bone: bad --{config_id}: ") and needle in line and "(fix: " in line


def test_bundle_run_prints_one_line_without_traceback(tmp_path):
    bundle = default_bundle_dir("hip")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/train.json"]
    cmd += ["--datalist", str(tmp_path / "missing.json")]
    cmd += ["--pretrained", "null"]  # the bundle defaults to ImageNet weights, which CI cannot download
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=bundle, env=env, capture_output=True, text=True, timeout=300)
    text = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in text, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("monai-bone: bad --datalist: datalist not found") and "monai-bone index" in last


def test_bundle_run_without_reachable_imagenet_weights_prints_one_line(tmp_path):
    """The bundle default (ImageNet weights) offline: one line naming --pretrained, before any data are read."""
    bundle = default_bundle_dir("hip")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/train.json"]
    cmd += ["--datalist", str(tmp_path / "missing.json")]  # never reached: the weights are resolved first
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TORCH_HOME": str(tmp_path / "torch"),  # empty cache
        "MONAI_BONE_WEIGHTS_MIRROR": "http://127.0.0.1:9/",  # nothing listens on the discard port
    }
    done = subprocess.run(cmd, cwd=bundle, env=env, capture_output=True, text=True, timeout=300)
    text = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in text, text[-3000:]
    last = text.strip().splitlines()[-1]
    assert last.startswith("monai-bone: bad --pretrained:") and "--pretrained null" in last, last
