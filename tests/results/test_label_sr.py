"""MONAI Label infer task with ``"sr": true``: the SR file comes back with the JSON, valid and equal to it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _results_test_utils import dciodvfy_errors, make_bundles, synth_dicom

from monai_bone.results import read_sr_values

pytestmark = pytest.mark.skipif(importlib.util.find_spec("monailabel") is None, reason="MONAI Label not installed")


def test_infer_task_returns_sr(tmp_path):
    from monai_bone.label.infer_task import BoneInferTask
    from monai_bone.label.predictor import BundlePredictor
    from monai_bone.label.request import PredictionError

    hip_src = synth_dicom(tmp_path, "hip", 2, seed=21)
    bundles = make_bundles(tmp_path, hip_src)
    task = BoneInferTask(BundlePredictor(bundles["hip"], device="cpu", overrides={"spatial_size": 64}))
    image = str(sorted(hip_src.rglob("*.dcm"))[0])
    assert task({"image": image})[0] is None
    path, result = task({"image": image, "sr": True})
    assert Path(path).is_file() and result["sr"]["file"] == Path(path).name
    assert dciodvfy_errors(Path(path)) == []
    values = read_sr_values(path)
    assert values["BMD-FN-EST"] == pytest.approx(result["bmd"], abs=1e-6)
    assert values["WHO-CAT"].lower() == result["who_class"] and values["SYNTH"] == "Yes"
    png = tmp_path / "x.png"
    import numpy as np
    from PIL import Image

    from monai_bone.synthetic.phantom import render_phantom

    # a real (non-blank) knee image: the input guards refuse a constant one as blank_image before any SR is made
    pixels = render_phantom("knee", 0.8, 26.0, size=64, seed=3, bits_stored=12).pixels
    Image.fromarray((pixels >> 4).astype(np.uint8)).save(png)
    knee = BoneInferTask(BundlePredictor(bundles["knee"], device="cpu", overrides={"spatial_size": 64}))
    with pytest.raises(PredictionError, match="needs a DICOM input"):
        knee({"image": str(png), "sr": True})
