"""The image-guard rules: body part / view against the task, blank images, bilateral knees (SYNTHETIC images)."""

from __future__ import annotations

import numpy as np
import pytest

from monai_bone.data.image_guards import (
    bilateral_score,
    blank_image_problem,
    check_body_part_view,
    is_bilateral,
    parse_tag_list,
    split_halves,
)
from monai_bone.synthetic.bilateral_phantom import render_bilateral_knee, render_wide_single_knee
from monai_bone.synthetic.phantom import render_phantom
from monai_bone.synthetic.realism import RealismRates

SINGLE = RealismRates(bilateral=0.0)  # realistic knees, one per image


def _reasons(findings):
    return [f.reason for f in findings if f.reason]


@pytest.mark.parametrize(
    "task,part,view,reasons",
    [
        ("hip", "HIP", "AP", []),
        ("hip", "pelvis", "pa", []),
        ("hip", "KNEE", "AP", ["wrong_body_part"]),
        ("hip", "CHEST", "AP", ["wrong_body_part"]),
        ("hip", "HIP", "LL", ["wrong_view"]),
        ("hip", "HIP", "LAT", ["wrong_view"]),
        ("hip", "KNEE", "RLO", ["wrong_body_part", "wrong_view"]),
        ("knee", "KNEE", "AP", []),
        ("knee", "HIP", "AP", ["wrong_body_part"]),
        ("knee", "LEG", "AP", []),  # ambiguous: kept with a warning
        ("knee", None, None, []),  # missing tags: allowed with warnings
    ],
)
def test_body_part_and_view_rule(task, part, view, reasons):
    findings = check_body_part_view(task, part, view)
    assert _reasons(findings) == reasons
    for f in findings:
        assert f.detail and (f.value is None or f.value.upper() in f.detail)


def test_missing_and_ambiguous_tags_warn_and_maps_are_configurable():
    notes = check_body_part_view("knee", "LEG", "")
    assert [(f.field, f.reason) for f in notes] == [("body_part", None), ("view", None)]
    assert "LEG" in notes[0].detail and "ViewPosition" in notes[1].detail
    assert _reasons(check_body_part_view("hip", "LHIP", "AP")) == ["wrong_body_part"]
    assert _reasons(check_body_part_view("hip", "LHIP", "AP", body_parts=parse_tag_list("HIP, lhip"))) == []
    assert _reasons(check_body_part_view("hip", "HIP", "LL", views=("AP", "LL"))) == []
    with pytest.raises(ValueError, match="unknown task"):
        check_body_part_view("spine", "HIP", "AP")


def test_blank_rule_refuses_degenerate_images_and_keeps_phantoms():
    rng = np.random.default_rng(0)
    assert "near-constant" in blank_image_problem(np.full((64, 64), 1234.0), 12)
    assert blank_image_problem(2000.0 + rng.integers(-3, 4, (64, 64)), 12) is not None  # noise of a few levels
    faint = 1000.0 + np.tile(np.linspace(0, 0.009 * 65535, 128), (128, 1)).round()  # 0.9 % of a 16-bit range
    assert "1% of 2^16" in blank_image_problem(faint, 16)
    assert blank_image_problem(faint, 8) is None  # the same spread is plenty at 8 bits
    saturated = np.full((100, 100), 4095.0)  # burnt out: black and white, 3 % of grey in between
    saturated[:50] = 0.0
    saturated[50, :] = saturated[51, :] = saturated[52, :] = np.linspace(1, 4094, 100)
    assert "saturated" in blank_image_problem(saturated, 12)
    assert blank_image_problem(np.full((1, 32, 32), np.nan)) == "the image has non-finite pixel values"
    # a rescaled image is counted in stored grey levels: slope 0.01 turns 10 levels into 0.1 units
    assert blank_image_problem(np.tile(np.arange(0, 1000) * 0.01, (8, 1)), 12, rescale_slope=0.01) is None
    for seed in range(6):  # synthetic hip and knee phantoms of every bit depth are kept
        task, bits = ("hip", "knee")[seed % 2], (8, 10, 12, 14, 15, 16)[seed]
        image = render_phantom(task, 0.8, 26.0, size=96, seed=seed, bits_stored=bits)
        assert blank_image_problem(image.pixels, bits) is None, (task, bits)


def test_bilateral_rule_on_synthetic_bilateral_and_single_knees():
    n = 12
    bilateral = [render_bilateral_knee(s, size=128) for s in range(n)]
    assert sum(is_bilateral(b) for b in bilateral) >= n - 1
    assert sum(is_bilateral(4095 - b, monochrome1=True) for b in bilateral) >= n - 1
    singles = [render_phantom("knee", 0.8, 27.0, size=128, seed=100 + s, rates=SINGLE).pixels for s in range(n)]
    assert sum(is_bilateral(s) for s in singles) == 0
    assert sum(is_bilateral(render_wide_single_knee(200 + s, size=128)) for s in range(n)) <= 1
    assert bilateral_score(np.zeros((10, 30))) == 0.0
    halves = split_halves(bilateral[0][None])
    assert halves["left"].shape[-1] + halves["right"].shape[-1] == bilateral[0].shape[-1]
    assert not is_bilateral(halves["left"][0]) and not is_bilateral(halves["right"][0])


def test_index_fold_scorer_gives_sklearn_folds():
    """The index's plain-float ``_find_best_fold`` reproduces sklearn's StratifiedGroupKFold exactly (ties included)."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    from monai_bone.data.fold_assign import _stratified_group_kfold

    rng = np.random.default_rng(0)
    checked = 0
    for trial in range(25):
        n, k, classes = int(rng.integers(20, 200)), int(rng.integers(2, 11)), int(rng.integers(1, 9))
        groups, y = rng.integers(0, max(k, n // 2), n), rng.integers(0, classes, n)
        if len(set(groups.tolist())) < k:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "least populated class has only k members"
            stock = list(StratifiedGroupKFold(k, shuffle=True, random_state=trial).split(np.zeros(n), y, groups))
            ours = list(_stratified_group_kfold(k, trial).split(np.zeros(n), y, groups))
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(stock, ours)), trial
        checked += 1
    assert checked >= 20
