"""ROI localiser: LandmarkNet + fit_localiser + LocateRoid on small DICOM files whose landmark is a bright disc."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_bone.data.landmarks import attach_landmarks, read_landmarks
from monai_bone.engines.localiser import ensure_localiser, fit_localiser, localiser_errors
from monai_bone.networks.nets.landmark import LandmarkNet, soft_argmax_2d
from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.localise import LocateRoi, LocateRoid, RoiInputd, landmark_input, load_localiser

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transforms"))
from _xray_test_files import write_dicom  # noqa: E402


def _cohort(tmp_path, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        rows, cols = int(rng.integers(40, 56)), int(rng.integers(40, 56))
        r, c = float(rng.uniform(10, rows - 10)), float(rng.uniform(10, cols - 10))
        yy, xx = np.mgrid[:rows, :cols]
        arr = 400 + 300 * rng.random((rows, cols)) + 3000 * (((yy - r) ** 2 + (xx - c) ** 2) < 16)
        path = write_dicom(tmp_path / f"img{seed}_{i}.dcm", arr.astype(np.uint16), pixel_spacing=(0.5, 0.5))
        records.append({"image": str(path), "roi_row": r, "roi_col": c})
    return records


def test_soft_argmax_finds_the_peak_and_net_shapes():
    logits = torch.full((1, 1, 8, 16), -50.0)
    logits[0, 0, 2, 12] = 50.0
    np.testing.assert_allclose(soft_argmax_2d(logits)[0, 0].numpy(), [2.5 / 8, 12.5 / 16], atol=1e-4)
    net = LandmarkNet(2, 1, 2, channels=(4, 8, 8, 8))
    assert net(torch.zeros(3, 1, 32, 32)).shape == (3, 2, 2)
    assert net.heatmaps(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match="spatial_dims"):
        LandmarkNet(3)


def test_landmark_input_maps_back_to_image_pixels():
    img = torch.zeros(1, 30, 60)
    x, scale = landmark_input(img, 32)
    assert x.shape == (1, 32, 32) and scale == pytest.approx(32 / 60)
    assert float(x[0, 20:].abs().sum()) == 0.0  # padding below the 16-row image


def test_localiser_learns_the_landmark(tmp_path):
    train, held_out = _cohort(tmp_path, 48, 0), _cohort(tmp_path, 12, 1)
    path = tmp_path / "localiser.pt"
    info = fit_localiser(train, path, size=32, epochs=30, batch_size=8, channels=(8, 16, 16, 16), seed=0)
    assert info["n_train"] == 48 and path.is_file() and (tmp_path / "localiser.pt.json").is_file()
    err = localiser_errors(path, held_out)
    # a constant guess at each image's centre is ~6 mm off on these images; the localiser must do far better
    centre = np.mean([np.hypot((r["roi_row"] - 24) * 0.5, (r["roi_col"] - 24) * 0.5) for r in held_out])
    assert err["n"] == 12 and err["mean_mm"] < 0.5 * centre and err["mean_mm"] < 3.0
    net, settings = load_localiser(path)
    assert settings["size"] == 32 and isinstance(net, LandmarkNet)
    d = LocateRoid("image", path, overwrite=False)({"image": torch.zeros(1, 40, 40), "roi": (1.0, 2.0)})
    assert tuple(d["roi"]) == (1.0, 2.0)  # kept: overwrite=False
    rc = LocateRoi(path)(torch.zeros(1, 40, 40))
    assert rc.shape == (2,) and np.all(np.isfinite(rc))


def test_bad_localiser_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no ROI localiser"):
        load_localiser(tmp_path / "none.pt")
    torch.save({"weights": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a monai-bone ROI localiser"):
        load_localiser(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="multiple of 16"):
        fit_localiser([{"image": "x"}], tmp_path / "x.pt", size=30)


def test_landmarks_from_realism_csv(tmp_path):
    csv = tmp_path / "realism.csv"
    csv.write_text(
        "# SYNTHETIC DATA\nPatientID,file,roi_row,roi_col\nA,dicom/A/A_AP.dcm,10.5,20.25\nB,dicom/B/B_AP.dcm,,\n"
    )
    assert read_landmarks(csv) == {"dicom/A/A_AP.dcm": (10.5, 20.25)}
    recs = [{"image": str(tmp_path / "dicom/A/A_AP.dcm")}, {"image": "dicom/B/B_AP.dcm"}]
    out = attach_landmarks(recs, csv)
    assert out[0]["roi_row"] == 10.5 and out[0]["roi_col"] == 20.25 and "roi_row" not in out[1]
    assert "roi_row" not in recs[0]  # inputs untouched
    (tmp_path / "other.csv").write_text("file,x\n")
    with pytest.raises(ValueError, match="other.csv: needs the columns"):
        read_landmarks(tmp_path / "other.csv")


def test_ensure_localiser_fits_once_reports_held_out_error_and_feeds_roi_input(tmp_path):
    train, held_out = _cohort(tmp_path, 32, 2), _cohort(tmp_path, 6, 3)
    path = tmp_path / "models" / "localiser.pt"
    with pytest.raises(FileNotFoundError, match="no training record carries a landmark"):
        ensure_localiser(path, [{"image": r["image"]} for r in train])
    kw = {"size": 32, "epochs": 2, "batch_size": 8, "channels": (4, 8, 8, 8)}
    assert ensure_localiser(path, train, held_out=held_out, **kw) == str(path)
    summary = json.loads((tmp_path / "models" / "localiser.pt.json").read_text())
    assert summary["n_train"] == 32 and summary["held_out"]["n"] == 6 and summary["held_out"]["mean_mm"] >= 0
    stamp = path.stat().st_mtime_ns
    ensure_localiser(path, [], **kw)  # an existing file is reused, never refitted
    assert path.stat().st_mtime_ns == stamp
    img = XrayNormalise()(LoadXray()(train[0]["image"]))
    roi = RoiInputd("image", 16, roi_size_mm=6.0, localiser=path)({"image": img})
    assert roi["image"].shape == (1, 16, 16) and np.all(np.isfinite(roi["roi"]))
    np.testing.assert_allclose(roi["image"].meta["spacing"], [6.0 / 16, 6.0 / 16])
    whole = RoiInputd("image", 16)({"image": img})
    assert whole["image"].shape == (1, 16, 16) and "roi" not in whole
    with pytest.raises(ValueError, match="no ROI localiser"):
        RoiInputd("image", 16, roi_size_mm=6.0)
