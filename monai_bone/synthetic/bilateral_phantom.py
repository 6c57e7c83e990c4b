"""SYNTHETIC bilateral knee radiographs (both knees side by side) and wide single knees, for measuring the bilateral
rule of :mod:`monai_bone.data.image_guards` (``benchmarks/bench_guards.py``) and for the tests.

A bilateral image is two square knee phantoms of :func:`monai_bone.synthetic.phantom.render_phantom` (``simple`` preset,
independent seeds and BMDs,
the second mirrored as a left knee appears) placed side by side with an air gap of 0-15 % of the side length; a wide
single knee is one phantom padded on both sides with air (background) to 1.25-1.6 times its width -- the hard
negative for the rule's aspect-ratio step.
"""

from __future__ import annotations

import numpy as np

from monai_bone.synthetic.phantom import render_phantom

__all__ = ["render_bilateral_knee", "render_wide_single_knee"]


def _knee(rng: np.random.Generator, size: int, seed: int, bits: int) -> np.ndarray:
    image = render_phantom(
        "knee",
        float(rng.uniform(0.6, 1.1)),
        float(rng.uniform(20.0, 35.0)),
        size=size,
        seed=seed,
        bits_stored=bits,
        preset="simple",  # square single knees; the realistic preset varies the aspect and draws bilateral knees itself
    )
    return image.pixels


def render_bilateral_knee(seed: int, size: int = 256, bits_stored: int = 12) -> np.ndarray:
    """Two synthetic knees side by side: ``uint16`` array ``(size, 2 * size + gap)``, MONOCHROME2 convention.

    Args:
        seed: seed of the BMD/BMI draws, the gap and both phantoms.
        size: side length of each knee in pixels (>= 64).
        bits_stored: BitsStored of the phantoms.
    """
    rng = np.random.default_rng(seed)
    right = _knee(rng, size, seed * 2 + 1, bits_stored)
    left = _knee(rng, size, seed * 2 + 2, bits_stored)[:, ::-1]
    gap = int(rng.uniform(0.0, 0.15) * size)
    air = min(int(right.min()), int(left.min()))
    return np.concatenate([right, np.full((size, gap), air, dtype=np.uint16), left], axis=1)


def render_wide_single_knee(seed: int, size: int = 256, bits_stored: int = 12) -> np.ndarray:
    """One synthetic knee padded with air to a wide image: ``uint16`` ``(size, 1.25-1.6 x size)``, MONOCHROME2."""
    rng = np.random.default_rng(seed)
    knee = _knee(rng, size, seed * 2 + 1, bits_stored)
    pad = int(rng.uniform(0.25, 0.6) * size)
    shift = int(rng.uniform(0.2, 0.8) * pad)
    air = int(knee.min())
    return np.concatenate(
        [np.full((size, shift), air, dtype=np.uint16), knee, np.full((size, pad - shift), air, dtype=np.uint16)], axis=1
    )
