"""Phantom radiograph renderer: hip AP and knee AP images whose bone texture follows a given BMD. SYNTHETIC.

:func:`render_phantom` has two presets. The default ``"realistic"`` one (:mod:`monai_bone.synthetic.phantom_real`)
reuses the anatomy below but lets BMD act only through bone structure and varies acquisition, processing, pose,
findings and field of view per image (:mod:`monai_bone.synthetic.realism`). The ``"simple"`` preset is the model
described here (fixed square field, BMD also visible in brightness): fast and easy, kept for speed tests.

The simple renderer draws a projection (log-attenuation) image, bone bright (MONOCHROME2 convention):

* **Anatomy** as analytic solids projected along the beam. A bone part is a capsule (shaft, neck, fibula) or an
  ellipsoid (femoral head, trochanters, condyles, tibial plateau, patella, pelvis); its projected path length is
  ``2 sqrt(r^2 - d^2)`` split into a cortical shell (outer minus inner solid, inner radius ``r (1 - cortex)``) and a
  trabecular core. Parts of one bone are merged by maximum, separate bones (pelvis, patella, fibula) add up.
  Hip AP: femoral head, neck, greater and lesser trochanter, shaft, acetabular roof / ilium with the joint space,
  ischiopubic ring with the obturator foramen. Knee AP: femoral shaft, metaphysis and both condyles, patella,
  tibial plateau with eminence and shaft, fibular head and shaft.
* **Bone density** from ``bmd_visible`` (g/cm^2, see :mod:`monai_bone.synthetic.cohort`): cortical thickness factor
  ``clip(1 + 2.5 (v - 0.85), 0.35, 1.8)``, trabecular volume fraction ``clip(0.22 + 0.55 (v - 0.85), 0.04, 0.5)``
  and trabecular spacing ``2.0 mm x clip(1 + 1.2 (0.85 - v), 0.7, 1.6)``. The trabecular pattern is band-pass
  filtered noise ``N`` (log-normal radial band at the spacing, oriented along the femoral neck or the limb axis); the
  connected network around its zero level set, ``|N| < w`` with ``P(|N| < w) = bv_tv`` (soft edge), is the bone
  tissue: low BMD -> thin, widely spaced trabeculae and a thin cortex.
* **Soft tissue** path length from BMI (body depth ``~ (BMI/25)^0.8``; the lateral skin line moves out of the field
  with BMI).
* **Nuisance**: laterality (left images are mirrored), pose (rotation ~N(0, 4 deg) clipped to 10 deg, scale
  U(0.9, 1.1), shift ~N(0, 0.03) of the field), heel-effect gradient, quantum noise growing with attenuation,
  exposure-dependent noise level, optional collimation borders, random detector window (which fraction of the
  integer range the image occupies) and BitsStored in {12, 14, 15, 16}.

The physical field of view is fixed (hip 220 mm, knee 200 mm), so anatomy scales with ``size`` and PixelSpacing is
``fov / size``. At small test sizes the trabecular wavelength is clamped to >= 3 pixels so the texture stays visible
(not physically exact there). Rendering is vectorised numpy/scipy: each part is evaluated only inside its bounding
box, the texture is one real FFT; about 0.1-0.2 s for a 1024^2 hip on one core.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtri

from monai_bone.synthetic.anatomy import (
    BITS_CHOICES,
    BITS_PROBS,
    FIELD_OF_VIEW_MM,
    MU_BONE,
    MU_SOFT,
    Canvas,
    PhantomImage,
    capsule,
    ellipsoid,
    smoothstep,
    trabecular_field,
    visible_density,
)
from monai_bone.synthetic.phantom_real import render_realistic

__all__ = ["FIELD_OF_VIEW_MM", "PRESETS", "PhantomImage", "render_phantom", "visible_density"]

#: Phantom presets: ``"realistic"`` (default, :mod:`monai_bone.synthetic.phantom_real`) and ``"simple"`` (this module's
#: renderer: fixed square field, BMD visible in brightness -- fast and easy, for speed tests).
PRESETS: tuple[str, ...] = ("realistic", "simple")


def _draw_hip(cv: Canvas, kc: float, jitter: np.ndarray) -> float:
    """Right hip AP (head medial = image right). Returns the neck axis angle (image radians) for the texture."""
    j = jitter
    head = (0.12 + 0.01 * j[0], -0.14 + 0.01 * j[1])
    rh = 0.105 * (1 + 0.04 * j[2])
    base = (-0.07, -0.02)
    # femur (one bone: parts merged by maximum)
    ellipsoid(cv, head, rh, rh, 0.05 * kc, core=True)
    capsule(cv, base, head, 0.078, 0.064, 0.12 * kc, core=True)  # neck
    ellipsoid(cv, (-0.165, -0.075), 0.07, 0.10, 0.06 * kc, angle=0.2, core=True)  # greater trochanter
    ellipsoid(cv, (-0.10, 0.01), 0.11, 0.11, 0.06 * kc, core=True)  # intertrochanteric region
    ellipsoid(cv, (-0.02, 0.12), 0.04, 0.035, 0.12 * kc, depth=0.035)  # lesser trochanter
    capsule(cv, (-0.11, 0.0), (-0.085, 0.32), 0.092, 0.070, min(0.22 * kc, 0.6), weight=(1.0, 0.1))  # prox. shaft
    capsule(cv, (-0.085, 0.32), (-0.06, 0.80), 0.070, 0.066, min(0.32 * kc, 0.6), weight=0.1)  # shaft
    # pelvis (separate bones: added)
    joint = rh + 0.014

    def socket(u, v):
        return smoothstep(np.sqrt((u - head[0]) ** 2 + (v - head[1]) ** 2) - joint, 0.006)

    ellipsoid(cv, (0.30, -0.31), 0.30, 0.23, 0.18 * kc, depth=0.03, other=True, cut=socket)  # acetabular roof/ilium

    def foramen(u, v):
        return smoothstep(np.sqrt(((u - 0.30) / 0.08) ** 2 + ((v - 0.16) / 0.11) ** 2) - 1.0, 0.05)

    ellipsoid(cv, (0.29, 0.10), 0.16, 0.21, 0.2 * kc, depth=0.035, other=True, cut=foramen)  # ischiopubic ring
    return math.atan2(head[1] - base[1], head[0] - base[0])


def _draw_knee(cv: Canvas, kc: float, jitter: np.ndarray) -> float:
    """Right knee AP (fibula lateral = image left). Returns the limb axis angle (image radians) for the texture."""
    j = jitter
    gap = 0.02 + 0.006 * j[0]  # joint space
    capsule(cv, (0.0, -0.80), (0.0, -0.25), 0.068, 0.075, min(0.30 * kc, 0.6), weight=(0.1, 1.0))  # femur shaft
    ellipsoid(cv, (0.0, -0.15), 0.15, 0.11, 0.05 * kc, core=True)  # femoral metaphysis
    ellipsoid(cv, (0.078, -0.065), 0.088, 0.07, 0.05 * kc, core=True)  # medial condyle
    ellipsoid(cv, (-0.078, -0.062 + 0.004 * j[1]), 0.085, 0.068, 0.05 * kc, core=True)  # lateral condyle
    top = gap

    def plateau(u, v):
        return smoothstep(v - np.float32(top), 0.004)

    ellipsoid(cv, (0.0, 0.10), 0.175, 0.095, 0.05 * kc, core=True, cut=plateau)  # tibial plateau
    ellipsoid(cv, (0.0, top + 0.012), 0.035, 0.02, 0.1 * kc, depth=0.02)  # intercondylar eminence
    capsule(cv, (0.0, 0.12), (0.012, 0.82), 0.068, 0.058, min(0.30 * kc, 0.6), weight=(1.0, 0.05))  # tibia shaft
    ellipsoid(cv, (0.0, -0.11), 0.07, 0.085, 0.15 * kc, depth=0.025, other=True)  # patella (superimposed)
    ellipsoid(cv, (-0.168, 0.165), 0.04, 0.045, 0.1 * kc, other=True)  # fibular head
    capsule(cv, (-0.168, 0.18), (-0.15, 0.82), 0.022, 0.018, min(0.35 * kc, 0.6), other=True)  # fibula shaft
    return math.pi / 2


def _soft_tissue(cv: Canvas, task: str, bmi: float) -> np.ndarray:
    """Soft-tissue path length (mm) over the whole image from BMI."""
    x = cv.x[None, :] - np.float32(cv.shift[0])
    y = cv.y[:, None] - np.float32(cv.shift[1])
    u = (np.float32(cv.cos) * x + np.float32(cv.sin) * y) * np.float32(cv.mirror / cv.scale)
    ratio = max(bmi, 12.0) / 25.0
    if task == "hip":
        depth = 210.0 * ratio**0.8
        centre = 0.70  # body midline, off the image to the medial side
        skin = -0.40 - 0.012 * (bmi - 25.0)  # lateral skin line
    else:
        depth = 120.0 * ratio**0.7
        centre = 0.0
        skin = -(0.27 + 0.010 * (bmi - 25.0))
    s = (u - np.float32(centre)) * np.float32(1.0 / (centre - skin))
    return (np.sqrt(np.maximum(1.0 - s * s, 0.0)) * np.float32(depth)).astype(np.float32, copy=False)


def render_phantom(
    task: str,
    bmd_visible: float,
    bmi: float,
    *,
    size: int = 1024,
    seed: int | Sequence[int] | np.random.SeedSequence = 0,
    bits_stored: int | None = None,
    return_masks: bool = False,
    preset: str = "realistic",
    rates=None,
) -> PhantomImage:
    """Render one phantom radiograph: ``preset="realistic"`` (default, :mod:`monai_bone.synthetic.phantom_real`) or
    ``"simple"`` (the model of this module's docstring).

    Args:
        task: ``"hip"`` (hip AP) or ``"knee"`` (knee AP).
        bmd_visible: the image-visible BMD ``f + u_visible`` (g/cm^2) that drives texture and cortex.
        bmi: body-mass index (kg/m^2), drives soft-tissue thickness.
        size: image side in pixels (>= 64; 512-2048 typical, default 1024); the realistic preset's long side (its
            aspect ratio and field of view vary).
        seed: seed (or entropy sequence) of the nuisance and texture draws: the same arguments give the same pixels.
        bits_stored: BitsStored to use (8-16); default: drawn from {12, 14, 15, 16}.
        return_masks: also return bone / trabecular / soft-tissue masks (for tests and analysis).
        preset: ``"realistic"`` or ``"simple"`` (:data:`PRESETS`).
        rates: realistic preset: :class:`~monai_bone.synthetic.realism.RealismRates` (default rates).

    Returns:
        The :class:`PhantomImage` (``uint16`` pixels, MONOCHROME2 convention).

    Raises:
        ValueError: for an unknown task or preset, ``size < 64``, a non-finite BMD/BMI or a bad ``bits_stored``.

    The simple renderer is one long function on purpose: its random draws must stay in this exact order (the same
    seed gives the same image across releases) and the detector steps share the attenuation map.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown phantom preset {preset!r}; expected one of {PRESETS}")
    if task not in FIELD_OF_VIEW_MM:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(FIELD_OF_VIEW_MM)}")
    if int(size) < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    if not (math.isfinite(bmd_visible) and math.isfinite(bmi)):
        raise ValueError(f"bmd_visible and bmi must be finite, got {bmd_visible!r}, {bmi!r}")
    if bits_stored is not None and not 8 <= int(bits_stored) <= 16:
        raise ValueError(f"bits_stored must be in [8, 16], got {bits_stored}")
    size = int(size)
    rng = np.random.default_rng(seed)
    if preset == "realistic":
        return render_realistic(task, bmd_visible, bmi, size, rng, bits_stored, return_masks, rates)
    fov = FIELD_OF_VIEW_MM[task]
    spacing = fov / size

    # nuisance draws, always in this order (reproducibility)
    mirror = bool(rng.random() < 0.5)
    angle = math.radians(float(np.clip(rng.normal(0.0, 4.0), -10.0, 10.0)))
    scale = float(rng.uniform(0.9, 1.1))
    shift = tuple(float(s) for s in np.clip(rng.normal(0.0, 0.03, 2), -0.07, 0.07))
    jitter = rng.normal(0.0, 1.0, 4)
    noise_level = float(rng.uniform(0.006, 0.02))
    heel = float(rng.normal(0.0, 0.08))
    collimate = rng.random(4) < 0.12
    collimate_width = rng.uniform(0.02, 0.06, 4)
    lo_frac = float(rng.uniform(0.02, 0.15))
    hi_frac = float(rng.uniform(0.6, 0.95))
    drawn_bits = int(rng.choice(BITS_CHOICES, p=BITS_PROBS))
    bits = int(bits_stored) if bits_stored is not None else drawn_bits
    texture_angle_jitter = float(rng.normal(0.0, 0.15))

    dens = visible_density(bmd_visible)
    cv = Canvas(size, angle, scale, shift, mirror)
    axis = (
        _draw_hip(cv, dens["cortex_factor"], jitter) if task == "hip" else _draw_knee(cv, dens["cortex_factor"], jitter)
    )
    # image-space direction of the trabecular lines (anatomy axis after pose/mirroring)
    du, dv = math.cos(axis) * cv.mirror, math.sin(axis)
    tex_angle = math.atan2(cv.sin * du + cv.cos * dv, cv.cos * du - cv.sin * dv) + texture_angle_jitter

    wavelength_mm = 2.0 * dens["spacing_factor"]
    wavelength_px = max(wavelength_mm / (spacing * scale), 3.0)
    noise = trabecular_field(rng, size, wavelength_px, tex_angle)
    # trabecular network = band around the zero level set of the noise: P(|N| < w) = bv_tv
    w = float(ndtri(0.5 + 0.5 * dens["bv_tv"]))
    tissue = np.clip((np.float32(w) - np.abs(noise)) * np.float32(1.0 / 0.3) + np.float32(0.5), 0.0, 1.0)

    mm = np.float32(fov)  # path lengths are in field units -> mm
    cortical = (cv.outer - cv.inner) * mm
    # projection through many trabeculae averages: 60 % mean volume fraction + 40 % visible network
    trabecular = cv.inner * (np.float32(0.6 * dens["bv_tv"]) + np.float32(0.4) * tissue) * mm
    other = (cv.other_cort + cv.other_trab * np.float32(dens["bv_tv"] * 1.6)) * mm
    soft = _soft_tissue(cv, task, bmi)
    atten = np.float32(MU_SOFT) * soft + np.float32(MU_BONE) * (cortical + trabecular + other)

    # detector: heel effect, quantum noise (log domain: sd grows with attenuation), collimation
    ramp = (cv.x[:, None] * np.float32(heel)).astype(np.float32)
    atten += ramp
    ref = float(np.median(atten[::8, ::8]))
    sd = np.float32(noise_level) * np.exp((atten - np.float32(ref)) * np.float32(0.5))
    atten += sd * rng.standard_normal((size, size), dtype=np.float32)
    body = soft > 0
    lo, hi = np.percentile(atten[::4, ::4], [0.5, 99.8])
    if hi <= lo:
        hi = lo + 1.0
    for side, on in enumerate(collimate):
        if on:
            w = max(1, int(collimate_width[side] * size))
            edge = [np.s_[:w, :], np.s_[-w:, :], np.s_[:, :w], np.s_[:, -w:]][side]
            atten[edge] = hi + 0.05 * (hi - lo)
    max_value = (1 << bits) - 1
    scaled = (atten - np.float32(lo)) * np.float32((hi_frac - lo_frac) * max_value / (hi - lo))
    scaled += np.float32(lo_frac * max_value)
    pixels = np.clip(np.rint(scaled), 0, max_value).astype(np.uint16)

    body_px = pixels[::4, ::4][body[::4, ::4]]
    if body_px.size == 0:
        body_px = pixels[::4, ::4].ravel()
    w_lo, w_hi = np.percentile(body_px, [1.0, 99.0])
    window = (float(round((w_lo + w_hi) / 2.0, 1)), float(max(round(w_hi - w_lo, 1), 1.0)))

    masks = None
    if return_masks:
        bone = (cv.outer > 0) | (cv.other_cort > 0)
        masks = {
            "bone": bone,
            "trabecular": cv.core & (cv.other_cort <= 0) & (cv.inner > 0.5 * float(cv.inner.max())),
            "soft": body & ~bone,
        }
    params = {
        "task": task,
        "bmd_visible": float(bmd_visible),
        "bmi": float(bmi),
        **{k: round(v, 6) for k, v in dens.items()},
        "laterality": "L" if mirror else "R",
        "rotation_deg": round(math.degrees(angle), 4),
        "scale": round(scale, 6),
        "shift": [round(s, 6) for s in shift],
        "noise_level": round(noise_level, 6),
        "heel": round(heel, 6),
        "collimated_sides": [int(i) for i in np.flatnonzero(collimate)],
        "trabecular_wavelength_px": round(wavelength_px, 4),
        "bits_stored": bits,
    }
    return PhantomImage(
        pixels=pixels,
        bits_stored=bits,
        pixel_spacing_mm=(round(spacing, 6), round(spacing, 6)),
        laterality="L" if mirror else "R",
        window=window,
        params=params,
        masks=masks,
    )
