"""Bilateral knee images and the ROI localiser: fit and locate on the displayed-left knee (``bilateral=True``).

Toy DICOM "knees" are bright vertical bars (femur + tibia) with the joint centre a bright disc on the bar. A bilateral
image holds two such knees side by side with a dark gap, and the landmark marks the left one (as the synthetic
generator does). A localiser fitted on whole bilateral images with flip augmentation sees the landmark on either knee
and learns the point between them; the bilateral localiser must not.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from monai_bone.data.image_guards import is_bilateral
from monai_bone.engines.localiser import fit_localiser, localiser_errors, localiser_inputs
from monai_bone.networks.nets.landmark import LandmarkNet
from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.localise import LocateRoi, bilateral_view, landmark_input, load_localiser

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _xray_test_files import write_dicom  # noqa: E402

ROWS, COLS = 40, 96


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _knee(arr: np.ndarray, col: float, row: float, rng: np.random.Generator) -> None:
    yy, xx = np.mgrid[: arr.shape[0], : arr.shape[1]]
    arr += 1500 * (np.abs(xx - col) < 6) + 2000 * (((yy - row) ** 2 + (xx - col) ** 2) < 12)


def _image(rng: np.random.Generator, bilateral: bool) -> tuple[np.ndarray, float, float]:
    arr = 300 + 200 * rng.random((ROWS, COLS))
    row, col = float(rng.uniform(8, ROWS - 8)), float(rng.uniform(14, 30))
    _knee(arr, col, row, rng)
    if bilateral:
        _knee(arr, COLS - 1 - col + float(rng.uniform(-3, 3)), float(rng.uniform(8, ROWS - 8)), rng)
    return arr, row, col


def _cohort(tmp_path: Path, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        arr, row, col = _image(rng, bilateral=True)
        path = write_dicom(tmp_path / f"bil{seed}_{i}.dcm", arr.astype(np.uint16), pixel_spacing=(0.5, 0.5))
        records.append({"image": str(path), "roi_row": row, "roi_col": col})
    return records


def test_bilateral_view_keeps_the_left_knee_of_bilateral_images_only():
    rng = np.random.default_rng(0)
    both, _, _ = _image(rng, bilateral=True)
    assert is_bilateral(both)
    img = torch.as_tensor(both, dtype=torch.float32)[None]
    view, split = bilateral_view(img)
    assert split and view.shape == (1, ROWS, COLS // 2)
    torch.testing.assert_close(view, img[..., : COLS // 2])
    one = torch.as_tensor(_image(rng, bilateral=False)[0][:, : COLS // 2], dtype=torch.float32)[None]
    view, split = bilateral_view(one)
    assert not split and view is one


def test_bilateral_locate_maps_back_to_the_left_half():
    net = LandmarkNet(2, 1, 1, channels=(4, 8, 8, 8))
    both = torch.as_tensor(_image(np.random.default_rng(1), bilateral=True)[0], dtype=torch.float32)[None]
    rc = LocateRoi(net, size=32, bilateral=True)(both)
    assert 0.0 <= rc[1] < COLS // 2  # whatever the (untrained) network says, the point lies on the left knee
    half, _ = landmark_input(both[..., : COLS // 2], 32)
    with torch.no_grad():
        expected = net(half[None])[0, 0].double().numpy() * 32 / (32 / (COLS // 2)) - 0.5
    np.testing.assert_allclose(rc, expected, atol=1e-4)


def test_fit_on_bilateral_images_finds_the_left_knee(tmp_path):
    train, held = _cohort(tmp_path, 48, 0), _cohort(tmp_path, 12, 1)
    kw = {"size": 32, "epochs": 30, "batch_size": 8, "channels": (8, 16, 16, 16), "seed": 0}
    fit_localiser(train, tmp_path / "plain.pt", **kw)
    info = fit_localiser(train, tmp_path / "bilateral.pt", bilateral=True, task="knee", **kw)
    assert info["bilateral"] is True and load_localiser(tmp_path / "bilateral.pt")[1]["bilateral"] is True
    assert LocateRoi(tmp_path / "bilateral.pt").bilateral and not LocateRoi(tmp_path / "plain.pt").bilateral
    plain, both = localiser_errors(tmp_path / "plain.pt", held), localiser_errors(tmp_path / "bilateral.pt", held)
    # the knees are ~45 px = 22 mm apart; the plain localiser is pulled between them, the bilateral one is not
    assert both["mean_mm"] < 3.0 and both["mean_mm"] < 0.5 * plain["mean_mm"]
    x, y = localiser_inputs(train[:1], 32, bilateral=True)
    loaded = XrayNormalise()(LoadXray()(train[0]["image"]))
    expected, scale = landmark_input(loaded[..., : COLS // 2], 32)  # the left half is what the localiser sees
    torch.testing.assert_close(x[0], torch.as_tensor(expected))
    assert float(y[0, 0, 1]) == pytest.approx((train[0]["roi_col"] + 0.5) * scale / 32)


def test_landmark_on_the_right_knee_is_refused(tmp_path):
    rec = _cohort(tmp_path, 1, 2)[0]
    rec["roi_col"] = COLS - 10.0
    with pytest.raises(ValueError, match="not on the\\s+displayed-left knee|displayed-left knee"):
        localiser_inputs([rec], 32, bilateral=True)
