"""Tests of the phantom radiograph renderer (``"simple"`` preset; the realistic default has its own tests below)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

from monai_bone.synthetic.cohort import sample_cohort
from monai_bone.synthetic.phantom import FIELD_OF_VIEW_MM, render_phantom, visible_density
from monai_bone.synthetic.synth import render_subject


def _bone_contrast(image) -> float:
    """Simple texture/density statistic: trabecular-core mean minus soft-tissue mean over the 0.5-99.5 % range."""
    p = image.pixels.astype(np.float64)
    lo, hi = np.percentile(p, [0.5, 99.5])
    return float((p[image.masks["trabecular"]].mean() - p[image.masks["soft"]].mean()) / (hi - lo))


@pytest.mark.parametrize("task", ["hip", "knee"])
@pytest.mark.parametrize("size", [64, 96])
def test_output_format(task, size):
    img = render_phantom(task, 0.85, 27.0, size=size, seed=3, return_masks=True, preset="simple")
    assert img.pixels.shape == (size, size) and img.pixels.dtype == np.uint16
    assert 12 <= img.bits_stored <= 16
    assert int(img.pixels.max()) <= 2**img.bits_stored - 1
    assert img.pixels.std() > 0
    assert img.pixel_spacing_mm == pytest.approx((FIELD_OF_VIEW_MM[task] / size,) * 2, rel=1e-5)
    assert img.laterality in ("R", "L")
    center, width = img.window
    assert width >= 1 and 0 <= center <= 2**img.bits_stored - 1
    for name in ("bone", "trabecular", "soft"):
        mask = img.masks[name]
        assert mask.shape == (size, size) and mask.dtype == bool and mask.any()
    assert not (img.masks["bone"] & img.masks["soft"]).any()
    # bone is bright (MONOCHROME2 convention)
    assert img.pixels[img.masks["trabecular"]].mean() > img.pixels[img.masks["soft"]].mean()


@pytest.mark.parametrize("preset", ["realistic", "simple"])
def test_deterministic_for_a_seed_and_different_across_seeds(preset):
    a = render_phantom("hip", 0.8, 25.0, size=64, seed=[1, 2, 3], preset=preset)
    b = render_phantom("hip", 0.8, 25.0, size=64, seed=[1, 2, 3], preset=preset)
    c = render_phantom("hip", 0.8, 25.0, size=64, seed=[1, 2, 4], preset=preset)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.params == b.params
    assert not np.array_equal(a.pixels, c.pixels)


def test_bits_stored_argument_and_sizes_scale_anatomy():
    img = render_phantom("knee", 0.9, 24.0, size=128, seed=0, bits_stored=16)
    assert img.bits_stored == 16
    small = render_phantom("knee", 0.9, 24.0, size=64, seed=0, return_masks=True, preset="simple")
    large = render_phantom("knee", 0.9, 24.0, size=128, seed=0, return_masks=True, preset="simple")
    # same pose -> the bone covers the same fraction of the field at both sizes
    assert small.masks["bone"].mean() == pytest.approx(large.masks["bone"].mean(), abs=0.02)


@pytest.mark.parametrize("task", ["hip", "knee"])
def test_density_follows_bmd_for_a_fixed_pose(task):
    values = [
        _bone_contrast(render_phantom(task, b, 27.0, size=96, seed=5, return_masks=True, preset="simple"))
        for b in (0.6, 0.85, 1.1)
    ]
    assert values[0] < values[1] < values[2], values
    d_lo, d_hi = visible_density(0.6), visible_density(1.1)
    assert d_lo["bv_tv"] < d_hi["bv_tv"] and d_lo["cortex_factor"] < d_hi["cortex_factor"]
    assert d_lo["spacing_factor"] > d_hi["spacing_factor"]


def test_texture_statistic_is_learnable_on_100_hip_images():
    """Simple preset: the bone-contrast statistic of the rendered bone region correlates with BMD (r > 0.5)."""
    cohort = sample_cohort("hip", 100, seed=3)
    stats = [
        _bone_contrast(render_subject(s, "hip", size=128, seed=3, return_masks=True, preset="simple"))
        for s in cohort.subjects
    ]
    r = np.corrcoef(stats, cohort.bmd())[0, 1]
    assert r > 0.5, r


def _texture_scale_ratio(image) -> float:
    """Log ratio of fine- to coarse-scale band energy inside the trabecular mask (a trabecular-spacing measure)."""
    p = image.pixels.astype(np.float64)
    lo, hi = np.percentile(p, [0.5, 99.5])
    p = (p - lo) / (hi - lo)
    fine = ndi.gaussian_filter(p, 0.7) - ndi.gaussian_filter(p, 1.4)
    coarse = ndi.gaussian_filter(p, 1.4) - ndi.gaussian_filter(p, 2.8)
    m = image.masks["trabecular"]
    return float(np.log((fine[m] ** 2).mean() / (coarse[m] ** 2).mean()))


def test_realistic_bmd_acts_through_texture_not_brightness():
    """Realistic preset: a trabecular-spacing statistic follows BMD, the bone-minus-soft brightness does not."""
    cohort = sample_cohort("hip", 100, seed=3)
    images = [render_subject(s, "hip", size=128, seed=3, return_masks=True) for s in cohort.subjects]
    r_texture = np.corrcoef([_texture_scale_ratio(im) for im in images], cohort.bmd())[0, 1]
    r_brightness = np.corrcoef([_bone_contrast(im) for im in images], cohort.bmd())[0, 1]
    assert r_texture > 0.3, r_texture
    assert abs(r_brightness) < 0.2, r_brightness


@pytest.mark.parametrize("task", ["hip", "knee"])
def test_realistic_output_format(task):
    spacings, shapes = set(), set()
    for seed in range(12):
        img = render_phantom(task, 0.85, 27.0, size=96, seed=seed, return_masks=True)
        rows, cols = img.pixels.shape
        assert max(rows, cols) == 96 and img.pixels.dtype == np.uint16
        assert int(img.pixels.max()) <= 2**img.bits_stored - 1 and img.pixels.std() > 0
        factors = img.params["realism"]
        assert (factors["rows"], factors["cols"]) == (rows, cols)
        # the detector spacing of a 1024-px image is 0.1-0.2 mm; smaller renders are binned from it
        assert 0.1 <= img.pixel_spacing_mm[0] * 96 / 1024 <= 0.2
        assert img.laterality in (("R", "L", "B") if task == "knee" else ("R", "L"))
        assert img.masks["bone"].shape == (rows, cols) and img.masks["trabecular"].any()
        assert img.pixels[img.masks["trabecular"]].mean() > img.pixels[img.masks["soft"]].mean()
        if img.voi_lut is not None:
            assert img.voi_lut.shape == (2**img.bits_stored,)
        # the ROI landmark (femoral neck midpoint / knee joint centre) lies on the bone or in the joint space
        r, c = round(factors["roi_row"]), round(factors["roi_col"])
        if 0 <= r < rows and 0 <= c < cols:
            near = img.masks["bone"][max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4]
            assert near.any(), (seed, r, c)
        spacings.add(img.pixel_spacing_mm)
        shapes.add((rows, cols))
    assert len(spacings) > 6 and len(shapes) > 6  # field of view and aspect ratio vary


@pytest.mark.parametrize("seed", range(4))
def test_realistic_soft_tissue_lowers_bone_contrast(seed):
    """Realistic preset: with the same pose and exposure a thicker (higher-BMI) body overlaps the bone and scatters
    more, so the bone stands out less."""
    thin = render_phantom("hip", 0.85, 18.0, size=96, seed=seed, return_masks=True)
    obese = render_phantom("hip", 0.85, 40.0, size=96, seed=seed, return_masks=True)
    assert _bone_contrast(obese) < _bone_contrast(thin)


def test_soft_tissue_follows_bmi():
    thin = render_phantom("hip", 0.85, 18.0, size=96, seed=2, return_masks=True, preset="simple")
    obese = render_phantom("hip", 0.85, 40.0, size=96, seed=2, return_masks=True, preset="simple")
    # with the same pose the lateral skin line moves out of the field: more of the image is body
    body_thin = thin.masks["soft"] | thin.masks["bone"]
    body_obese = obese.masks["soft"] | obese.masks["bone"]
    assert body_obese.sum() > body_thin.sum()


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("spine", 0.8, 25.0), {}, "unknown task"),
        (("hip", 0.8, 25.0), {"size": 32}, "at least 64"),
        (("hip", float("nan"), 25.0), {}, "finite"),
        (("hip", 0.8, 25.0), {"bits_stored": 20}, "bits_stored"),
        (("hip", 0.8, 25.0), {"preset": "fancy"}, "preset"),
    ],
)
def test_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        render_phantom(*args, **kwargs)
