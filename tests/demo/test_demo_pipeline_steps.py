"""The demo's named steps (``monai_bone.demo.pipeline``), each on its own: settings, cohort and index, overrides,
inference inputs, trained copy (tiny SYNTHETIC cohort, no training; the whole pipeline: ``tests/cli/test_cli_demo.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_bone.bundle import default_bundle_dir
from monai_bone.demo import DEMO_DEFAULTS, QUICK_SETTINGS
from monai_bone.demo import pipeline as demo


def _given(**kw) -> dict:
    keys = ("n_hip", "n_knee", "epochs", "size", "synth_size", "batch_size", "folds", "n_infer")
    return {k: kw.get(k) for k in keys}


def test_demo_settings_base_explicit_values_and_errors() -> None:
    s = demo.demo_settings(True, _given(epochs=3, synth_size=32), None, 5, "cpu", 2)
    assert s["epochs"] == 3 and s["n_hip"] == QUICK_SETTINGS["n_hip"] and s["synth_size"] == 64  # at least 64 px
    assert (s["seed"], s["device"], s["num_workers"], s["tasks"]) == (5, "cpu", 2, ["hip", "knee"])
    full = demo.demo_settings(False, _given(), ["knee"], 0, None, 0)
    assert full["n_knee"] == DEMO_DEFAULTS["n_knee"] and full["tasks"] == ["knee"]
    with pytest.raises(ValueError, match="n_infer must be >= 1"):
        demo.demo_settings(True, _given(n_infer=0), None, 0, None, 0)
    with pytest.raises(ValueError, match="folds must be >= 2"):
        demo.demo_settings(True, _given(folds=1), None, 0, None, 0)
    with pytest.raises(ValueError, match="n_knee = 3 is too small for 3 folds"):
        demo.demo_settings(True, _given(n_knee=3), ["knee"], 0, None, 0)
    with pytest.raises(ValueError, match="unknown task"):
        demo.demo_settings(True, _given(), ["spine"], 0, None, 0)


def test_train_overrides_follow_the_settings(tmp_path: Path) -> None:
    s = demo.demo_settings(True, _given(), None, 3, "cpu", 0)
    ov = demo.train_overrides("hip", s, tmp_path / "datalist.json", tmp_path)
    assert ov["device"] == "$torch.device('cpu')" and ov["pretrained"] is None and ov["seed"] == 3
    assert ov["roi_size_mm"] is None and ov["roi_landmarks_csv"] is None
    roi = demo.train_overrides("hip", {**s, "device": None, "roi_hip_mm": 30.0}, tmp_path / "d.json", tmp_path)
    assert "device" not in roi and roi["roi_size_mm"] == 30.0
    assert roi["roi_landmarks_csv"] == str(tmp_path / "realism.csv")


def test_cohort_index_inputs_and_trained_copy(tmp_path: Path) -> None:
    s = demo.demo_settings(True, _given(n_knee=6, folds=2), ["knee"], 1, None, 0)
    data = tmp_path / "data" / "knee"
    cohort = demo.synthesise_cohort("knee", s, data)
    assert cohort["n"] == 6 and cohort["n_classes"] == 2 and cohort["format"] == "dicom"
    datalist = demo.index_cohort("knee", s, data)
    doc = json.loads(datalist.read_text())
    assert {int(r["label"]) for r in doc["training"]} <= {0, 1}  # the binary bundle's labels
    inputs = demo.inference_inputs(datalist, 2, tmp_path / "infer")
    val = [Path(r["image"]).name for r in doc["training"] if r.get("split") != "test" and int(r["fold"]) == 0]
    assert sorted(p.name for p in inputs.iterdir()) == sorted(val[:2])
    bundle = demo.trained_copy("knee", s, default_bundle_dir("knee"), tmp_path)
    assert json.loads((bundle / "configs" / "inference.json").read_text())["spatial_size"] == s["size"]
    assert not list((bundle / "models").iterdir())
