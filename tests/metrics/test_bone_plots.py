"""Evaluation plots: valid, deterministic PNGs; synthetic tagging; input checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monai_bone.metrics import (
    plot_bland_altman,
    plot_calibration,
    plot_confusion_matrix,
    plot_pred_vs_true,
    plot_roc,
)

RNG = np.random.default_rng(0)
TRUE = RNG.normal(0.85, 0.12, 30)
PRED = TRUE + RNG.normal(0, 0.05, 30)


def _png_ok(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert min(im.size) >= 300
    return data


PLOTS = {
    "roc": lambda p, syn: plot_roc({"BMD < 0.899": (-PRED, TRUE < 0.899)}, p, synthetic=syn),
    "pred_vs_true": lambda p, syn: plot_pred_vs_true(PRED, TRUE, p, {"screening": 0.899}, synthetic=syn),
    "bland_altman": lambda p, syn: plot_bland_altman(PRED, TRUE, p, synthetic=syn),
    "confusion": lambda p, syn: plot_confusion_matrix(
        [[5, 1, 0], [2, 7, 1], [0, 3, 9]], ["a", "b", "c"], p, synthetic=syn
    ),
    "calibration_prob": lambda p, syn: plot_calibration(
        RNG.uniform(0, 1, 40), RNG.integers(0, 2, 40), p, n_bins=5, synthetic=syn
    ),
    "calibration_regression": lambda p, syn: plot_calibration(PRED, TRUE, p, strategy="quantile", synthetic=syn),
}


@pytest.mark.parametrize("kind", sorted(PLOTS))
def test_plot_writes_valid_deterministic_png(tmp_path, kind):
    a = PLOTS[kind](tmp_path / f"{kind}.png", False)
    assert a == tmp_path / f"{kind}.png"
    first = _png_ok(a)
    if kind != "calibration_prob":  # that one draws fresh random inputs on each call
        again = PLOTS[kind](tmp_path / f"{kind}_again.png", False)
        assert again.read_bytes() == first, "same inputs must give the same file"
    syn = _png_ok(PLOTS[kind](tmp_path / f"{kind}_syn.png", True))
    assert syn != first, "the synthetic tag must change the figure"
    assert not list(tmp_path.glob("*.tmp")), "atomic write left a temporary file"


def test_roc_with_one_class_and_empty_inputs(tmp_path):
    _png_ok(plot_roc({"all negative": ([0.1, 0.2], [False, False])}, tmp_path / "roc.png"))
    _png_ok(plot_calibration([], [], tmp_path / "cal.png"))
    _png_ok(plot_pred_vs_true([], [], tmp_path / "pvt.png"))


def test_plot_input_errors(tmp_path):
    with pytest.raises(ValueError, match="does not match"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "cm.png")
    with pytest.raises(ValueError, match="strategy"):
        plot_calibration([0.1], [1], tmp_path / "cal.png", strategy="kmeans")
    with pytest.raises(ValueError, match="n_bins"):
        plot_calibration([0.1], [1], tmp_path / "cal.png", n_bins=0)
