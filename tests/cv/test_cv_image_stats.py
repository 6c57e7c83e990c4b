"""The trivial image baseline (monai_bone.cv.image_stats): 39 statistics, learns an intensity signal, no leakage."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monai_bone.cv.image_stats import GRID, N_FEATURES, ImageStatsBaseline, image_statistics


def _png(path, left: float, right: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    img = np.zeros((64, 64))
    img[:, :32], img[:, 32:] = left, right
    img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255)
    img[0, 0], img[-1, -1] = 0, 255  # fixed range: the normaliser's percentile clip keeps the levels comparable
    Image.fromarray(img.astype(np.uint8)).save(path)
    return str(path)


def test_statistics_layout(tmp_path):
    f = image_statistics(_png(tmp_path / "a.png", 40, 200), size=64)
    assert N_FEATURES == 39 and f.shape == (N_FEATURES,)
    means = f[: GRID * GRID].reshape(GRID, GRID)
    assert (means[:, 2:] > means[:, :2] + 0.3).all()  # right half brighter, in every block row
    with pytest.raises(ValueError, match="multiple of"):
        image_statistics(tmp_path / "a.png", size=30)


def test_baseline_learns_a_brightness_signal(tmp_path):
    rng = np.random.default_rng(1)
    records, bmd = [], []
    for i in range(30):
        b = float(rng.uniform(0.6, 1.2))
        records.append({"image": _png(tmp_path / f"{i}.png", 40, 60 + 150 * (b - 0.6), seed=i), "age_xray": 70.0})
        bmd.append(b)
    hip = ImageStatsBaseline("hip").fit(records[:20], bmd[:20])
    pred = hip.predict(records[20:])
    assert np.corrcoef(pred, bmd[20:])[0, 1] > 0.9
    knee = ImageStatsBaseline("knee").fit(records[:20], [float(b > 0.9) for b in bmd[:20]])
    prob = knee.predict(records[20:])
    assert ((prob >= 0.5) == (np.array(bmd[20:]) > 0.9)).mean() >= 0.8
    with pytest.raises(ValueError, match="both classes"):
        ImageStatsBaseline("knee").fit(records[:3], [1.0, 1.0, 1.0])
