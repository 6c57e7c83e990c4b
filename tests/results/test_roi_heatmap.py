"""ROI mode (``roi_size_mm``): the Grad-CAM overlay, the heat-map Secondary Capture and the SR region are drawn on the
window the network's crop came from, not stretched over the whole radiograph (SYNTHETIC data, untrained weights)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import torch
from _results_test_utils import make_bundles, run_inference, synth_dicom

from monai_bone.handlers import explain
from monai_bone.handlers.explain_roi import place_in_window
from monai_bone.networks.nets.landmark import LandmarkNet
from monai_bone.results import read_sr_values
from monai_bone.results.heatmap import heat_to_source
from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.localise import LocateRoi
from monai_bone.transforms.roi import image_spacing_mm, roi_box

ROI_MM = 60.0  # ~20 px of the ~170 mm wide 64 px synthetic radiographs: a window well inside the image


def _write_localiser(path: Path) -> Path:
    """An untrained localiser file in the format of ``monai_bone.engines.localiser.fit_localiser``."""
    torch.manual_seed(3)
    net = LandmarkNet(2, 1, 1, channels=(4, 4, 8, 8))
    torch.save({"state_dict": net.state_dict(), "size": 32, "channels": [4, 4, 8, 8], "landmarks": ["roi"]}, path)
    return path


def _expected_box(localiser: Path, image: Path) -> tuple[int, int, int, int]:
    img = XrayNormalise()(LoadXray()(str(image)))
    return roi_box(LocateRoi(str(localiser))(img), image_spacing_mm(img), ROI_MM)


def _inside(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    r0, c0, h, w = box
    mask = np.zeros(shape, dtype=bool)
    mask[max(r0, 0) : max(r0 + h, 0), max(c0, 0) : max(c0 + w, 0)] = True
    return mask


def test_place_in_window_puts_the_crop_map_on_its_window_and_clips_at_the_edge():
    heat = np.arange(16, dtype=np.float32).reshape(4, 4) + 1
    out = place_in_window(heat, (10, 12), (2, 3, 4, 4))
    assert np.array_equal(out[2:6, 3:7], heat) and out.sum() == heat.sum()  # same size: copied as is
    edge = place_in_window(heat, (10, 12), (-2, 10, 4, 4))  # half above, half right of the image
    assert np.array_equal(edge[0:2, 10:12], heat[2:4, 0:2]) and edge.sum() == heat[2:4, 0:2].sum()
    whole = heat_to_source(np.ones((8, 8)), (10, 12), 8)  # whole-image input: spread over the image
    roi = heat_to_source(np.ones((8, 8)), (10, 12), 8, (2, 3, 4, 4))
    assert (whole > 0).all() and (roi > 0).sum() == 16


def test_roi_inference_draws_gradcam_heatmap_and_sr_region_on_the_crop_window(tmp_path, monkeypatch):
    src = synth_dicom(tmp_path, "hip", 3, seed=11)
    bundle = make_bundles(tmp_path, src)["hip"]
    localiser = _write_localiser(bundle / "models" / "localiser.pt")
    drawn: dict[str, tuple] = {}
    overlay = explain._overlay_png

    def spy(image, cam, title, box=None):
        drawn[title + str(len(drawn))] = (np.array(image), np.array(cam), box)
        return overlay(image, cam, title, box)

    monkeypatch.setattr(explain, "_overlay_png", spy)
    run_inference(bundle, src, tmp_path / "out", write_sr=True, save_gradcam=True, roi_size_mm=ROI_MM)

    doc = json.loads((tmp_path / "out" / "dicom" / "dicom_outputs.json").read_text())
    assert len(doc["studies"]) == 3 and len(drawn) == 3
    coloured_inside = 0
    for entry in doc["studies"]:
        header = pydicom.dcmread(entry["image"], stop_before_pixels=True)
        shape = (int(header.Rows), int(header.Columns))
        box = _expected_box(localiser, Path(entry["image"]))
        inside = _inside(shape, box)
        assert 0 < inside.sum() < 0.5 * inside.size  # the window is a small part of the image
        # the heat-map SC: colour (R, G, B not all equal) only inside the crop's window
        rgb = pydicom.dcmread(entry["heatmap"]).pixel_array.astype(int)
        assert rgb.shape[:2] == shape
        colour = (rgb[..., 0] != rgb[..., 1]) | (rgb[..., 1] != rgb[..., 2])
        assert not colour[~inside].any(), f"{entry['image']}: heat drawn outside the ROI window {box}"
        coloured_inside += int(colour[inside].any())
        # the SR's measurement region lies on the window
        region = read_sr_values(entry["sr"])["region"]
        r0, c0, h, w = box
        assert region is not None
        assert (region[:, 0] >= max(c0, 0)).all() and (region[:, 0] <= min(c0 + w, shape[1])).all()
        assert (region[:, 1] >= max(r0, 0)).all() and (region[:, 1] <= min(r0 + h, shape[0])).all()
    assert coloured_inside >= 1
    # the Grad-CAM PNGs: the whole radiograph, the map placed on the window (zero outside), the window outlined
    files = sorted(src.rglob("*.dcm"))
    boxes = {_expected_box(localiser, p) for p in files}
    shapes = {tuple(pydicom.dcmread(p, stop_before_pixels=True)[t].value for t in ("Rows", "Columns")) for p in files}
    for image, cam, box in drawn.values():
        assert box in boxes and image.shape in shapes and cam.shape == image.shape
        assert not cam[~_inside(image.shape, box)].any() and cam.max() > 0
