"""RoiCrop / RoiCropd: a crop of fixed physical size (mm from PixelSpacing) around a landmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _xray_test_files import write_dicom
from monai.data import MetaTensor

from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.roi import RoiCrop, RoiCropd, image_spacing_mm, roi_box


def _image(rows: int = 60, cols: int = 80, spacing=(0.5, 0.25)) -> MetaTensor:
    arr = torch.arange(rows * cols, dtype=torch.float32).reshape(1, rows, cols)
    meta = {"PixelSpacing": np.asarray(spacing), "filename_or_obj": "x.dcm"}
    return MetaTensor(arr, meta=meta)


def test_crop_covers_size_mm_at_the_landmark():
    img = _image()
    # 10 mm = 20 rows at 0.5 mm and 40 cols at 0.25 mm; no resampling when spatial_size matches
    out = RoiCrop(10.0, (20, 40))(img, (30, 40))
    r0, c0, h, w = (int(v) for v in out.meta["roi_box"])
    assert (h, w) == (20, 40)
    assert torch.equal(out.as_tensor(), img.as_tensor()[:, r0 : r0 + h, c0 : c0 + w])
    assert r0 + (h - 1) / 2 == pytest.approx(30, abs=0.5) and c0 + (w - 1) / 2 == pytest.approx(40, abs=0.5)
    np.testing.assert_allclose(out.meta["spacing"], [0.5, 0.25])
    np.testing.assert_allclose(out.meta["PixelSpacing"], [0.5, 0.25])


def test_resampled_crop_has_new_spacing_and_keeps_a_bright_spot_centred():
    img = _image(100, 100, (0.2, 0.2)) * 0
    img[0, 48:52, 58:62] = 1.0  # spot centred at (49.5, 59.5)
    out = RoiCrop(8.0, 16)(img, (49.5, 59.5))  # 8 mm = 40 px -> 16 px
    assert out.shape == (1, 16, 16)
    np.testing.assert_allclose(out.meta["spacing"], [0.5, 0.5])
    rr, cc = np.unravel_index(int(out[0].argmax()), (16, 16))
    assert abs(rr - 7.5) <= 1 and abs(cc - 7.5) <= 1
    assert float(out.sum()) == pytest.approx(16 * (16 / 40) ** 2, rel=0.15)  # anti-aliased: mass preserved


def test_window_leaving_the_image_is_zero_padded():
    img = _image() + 1.0
    out = RoiCrop(10.0, (20, 40))(img, (0, 0))
    assert float(out[0, 0, 0]) == 0.0 and float(out[0, -1, -1]) > 0
    assert roi_box((0, 0), (0.5, 0.25), 10.0) == (int(out.meta["roi_box"][0]), int(out.meta["roi_box"][1]), 20, 40)


def test_missing_spacing_needs_a_fallback():
    img = MetaTensor(torch.zeros(1, 20, 20), meta={"filename_or_obj": "a.png", "PixelSpacing": [np.nan, np.nan]})
    with pytest.raises(ValueError, match="a.png: no PixelSpacing"):
        RoiCrop(5.0, 8)(img, (10, 10))
    assert image_spacing_mm(img, fallback_mm=0.3) == (0.3, 0.3)
    assert RoiCrop(5.0, 8, fallback_spacing_mm=0.5)(img, (10, 10)).shape == (1, 8, 8)


def test_bad_arguments_and_landmarks():
    with pytest.raises(ValueError, match="size_mm"):
        RoiCrop(0.0, 8)
    with pytest.raises(ValueError, match="spatial_size"):
        RoiCrop(5.0, 0)
    with pytest.raises(ValueError, match="x.dcm: ROI centre must be finite"):
        RoiCrop(5.0, 8)(_image(), (float("nan"), 3))


def test_dictionary_reads_centre_key_or_row_col_keys(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", np.tile(np.arange(40, dtype=np.uint16) * 50, (30, 1)))  # 0.2 x 0.25 mm
    img = XrayNormalise()(LoadXray()(str(path)))
    crop = RoiCropd("image", size_mm=4.0, spatial_size=(20, 16))
    by_cols = crop({"image": img, "roi_row": 15.0, "roi_col": 20.0})
    by_key = crop({"image": img, "roi": (15.0, 20.0), "roi_row": 1.0, "roi_col": 1.0})  # centre_key wins
    assert by_cols["image"].shape == (1, 20, 16)
    assert torch.equal(by_cols["image"].as_tensor(), by_key["image"].as_tensor())
    with pytest.raises(KeyError, match="a.dcm: no ROI landmark"):
        crop({"image": img})
