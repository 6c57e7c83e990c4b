"""The ``"realistic"`` phantom preset (the default of :func:`monai_bone.synthetic.phantom.render_phantom`). SYNTHETIC.

Same analytic anatomy as the ``"simple"`` preset (:mod:`monai_bone.synthetic.phantom`), but BMD acts only where it acts
in real radiographs and everything else varies as it does between real acquisitions
(:mod:`monai_bone.synthetic.realism` lists the factors and their ranges):

* **BMD -> bone structure, not brightness.** Cortical *thickness* follows ``cortex_factor`` (cortical mineral
  density is a per-image nuisance U(0.85, 1.15)). The trabecular network (band-pass noise around its zero level
  set) follows BMD through its *spacing* (``2 mm x spacing_factor``; at small image sizes clamped to
  ``>= 3 px x spacing_factor`` so the relative spacing stays visible), *connectivity* (network volume fraction
  ``bv_tv``: thin, broken trabeculae at low BMD) and *anisotropy* (low BMD keeps the principal, load-bearing
  trabeculae: angular concentration ``1.5 + 4 (1 - clip((v - 0.55) / 0.6, 0, 1))``). The projected trabecular
  attenuation is ``core path x (m + a (network - mean(network)))`` with marrow/overlap level ``m`` U(0.15, 0.30)
  and texture amplitude ``a`` U(0.25, 0.5) per image: the mean brightness of the trabecular region does not follow
  BMD.
* **Physics and processing**: attenuation by kV, primary ``exp(-A)``, scatter fog ``spr x body thickness`` (low
  pass), quantum noise by exposure, collimator shutters, log, unsharp masking, tone curve (or VOI LUT), detector
  gain/offset into 12-16 bits, burned-in text and a lead L/R marker after processing.
* **Pose and anatomy variants**: hip femoral rotation (neck foreshortened by ``f = cos(15 + rotation)``: the
  trochanters and shaft move towards the head by ``f``, the neck path through the beam grows by ``1/f`` and its
  projected width by ``1 + 0.3 (1 - f)``), abduction (femur rotated about the head), knee axial rotation (fibula and
  patella shift), osteoarthritis (joint-space narrowing by ``0.25 x grade``, osteophytes, subchondral sclerosis),
  metal (clips, a plate with screws, staples), bilateral knees (two mirrored knees of the same subject).
* **Landmark** for region-of-interest work: ``roi_row``/``roi_col`` (pixel coordinates) of the femoral neck midpoint
  (hip) or the knee joint centre (the first knee of a bilateral image), in the realism factors and realism.csv.

Rendering stays vectorised (parts in their bounding boxes, one FFT for the texture, low-pass filters on a reduced
grid): at 1024 px about 1.5-2x the time of the simple preset.
"""

from __future__ import annotations

import math
from typing import Any

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
from monai_bone.synthetic.realism import RealismRates, draw_factors, lowpass, stamp_text

__all__ = ["render_realistic"]

_MU_METAL = 2.0  # per mm: metal saturates the detector


def _rot(p: tuple[float, float], centre: tuple[float, float], angle: float) -> tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = p[0] - centre[0], p[1] - centre[1]
    return (centre[0] + c * dx - s * dy, centre[1] + s * dx + c * dy)


def _draw_hip(cv: Canvas, kc: float, jitter: np.ndarray, f: dict[str, Any]) -> float:
    """Right hip AP with femoral rotation, abduction and osteoarthritis. Returns the neck axis angle (anatomy)."""
    j = jitter
    head = (0.12 + 0.01 * j[0], -0.14 + 0.01 * j[1])
    rh = 0.105 * (1 + 0.04 * j[2])
    fore = math.cos(math.radians(15.0 + f["femoral_rotation_deg"]))
    abd = math.radians(f["abduction_deg"])
    base0 = (-0.07, -0.02)
    move = ((1.0 - fore) * (head[0] - base0[0]), (1.0 - fore) * (head[1] - base0[1]))

    def femur(p: tuple[float, float]) -> tuple[float, float]:  # foreshortening, then abduction about the head
        return _rot((p[0] + move[0], p[1] + move[1]), head, abd)

    base = femur(base0)
    widen = 1.0 + 0.3 * (1.0 - fore)
    grade = f["oa_grade"]
    ellipsoid(cv, head, rh, rh, 0.05 * kc, core=True)
    capsule(cv, base, head, 0.078 * widen, 0.064 * widen, 0.12 * kc, core=True, depth=1.0 / fore)  # neck
    ellipsoid(cv, femur((-0.165, -0.075)), 0.07, 0.10, 0.06 * kc, angle=0.2 + abd, core=True)  # greater troch.
    ellipsoid(cv, femur((-0.10, 0.01)), 0.11, 0.11, 0.06 * kc, core=True)  # intertrochanteric region
    lesser = float(np.clip(1.0 + f["femoral_rotation_deg"] / 40.0, 0.5, 1.8))
    ellipsoid(cv, femur((-0.02, 0.12)), 0.04 * lesser, 0.035, 0.12 * kc, depth=0.035)  # lesser trochanter
    capsule(cv, femur((-0.11, 0.0)), femur((-0.085, 0.32)), 0.092, 0.070, min(0.22 * kc, 0.6), weight=(1.0, 0.1))
    capsule(cv, femur((-0.085, 0.32)), femur((-0.06, 0.80)), 0.070, 0.066, min(0.32 * kc, 0.6), weight=0.1)
    joint = rh + 0.014 * (1.0 - 0.25 * grade)

    def socket(u, v):
        return smoothstep(np.sqrt((u - head[0]) ** 2 + (v - head[1]) ** 2) - joint, 0.006)

    ellipsoid(cv, (0.30, -0.31), 0.30, 0.23, 0.18 * kc, depth=0.03, other=True, cut=socket)  # acetabular roof

    def foramen(u, v):
        return smoothstep(np.sqrt(((u - 0.30) / 0.08) ** 2 + ((v - 0.16) / 0.11) ** 2) - 1.0, 0.05)

    ellipsoid(cv, (0.29, 0.10), 0.16, 0.21, 0.2 * kc, depth=0.035, other=True, cut=foramen)  # ischiopubic ring
    f["_roi"] = ((base[0] + head[0]) / 2, (base[1] + head[1]) / 2)  # femoral neck midpoint (anatomy units)
    if grade:  # osteophytes at the lateral acetabular rim and the inferior head-neck junction, roof sclerosis
        s = 0.012 * grade
        ellipsoid(cv, (head[0] - 0.5 * rh, head[1] - 1.05 * rh), 1.5 * s, s, 0.5, other=True)
        ellipsoid(cv, (head[0] - 0.2 * rh, head[1] + 0.95 * rh), s, 1.3 * s, 0.5, other=True)
        ellipsoid(cv, (head[0] + 0.1 * rh, head[1] - joint - 0.012), 0.6 * rh, 0.01 * grade, 0.9, other=True)
    return math.atan2(head[1] - base[1], head[0] - base[0])


def _draw_knee(cv: Canvas, kc: float, jitter: np.ndarray, f: dict[str, Any]) -> float:
    """Right knee AP with axial rotation and osteoarthritis. Returns the limb axis angle (anatomy)."""
    j = jitter
    grade = f["oa_grade"]
    rot = f["knee_rotation_deg"]
    gap = (0.02 + 0.006 * j[0]) * (1.0 - 0.25 * grade)
    capsule(cv, (0.0, -0.80), (0.0, -0.25), 0.068, 0.075, min(0.30 * kc, 0.6), weight=(0.1, 1.0))
    ellipsoid(cv, (0.0, -0.15), 0.15, 0.11, 0.05 * kc, core=True)
    ellipsoid(cv, (0.078, -0.065), 0.088, 0.07, 0.05 * kc, core=True)
    ellipsoid(cv, (-0.078, -0.062 + 0.004 * j[1]), 0.085, 0.068, 0.05 * kc, core=True)

    def plateau(u, v):  # medial compartment narrows first in osteoarthritis
        return smoothstep(v - np.float32(gap) + np.float32(0.004 * grade) * (u > 0), 0.004)

    ellipsoid(cv, (0.0, 0.10), 0.175, 0.095, 0.05 * kc, core=True, cut=plateau)
    ellipsoid(cv, (0.0, gap + 0.012), 0.035, 0.02, 0.1 * kc, depth=0.02)
    capsule(cv, (0.0, 0.12), (0.012, 0.82), 0.068, 0.058, min(0.30 * kc, 0.6), weight=(1.0, 0.05))
    ellipsoid(cv, (0.003 * rot, -0.11), 0.07, 0.085, 0.15 * kc, depth=0.025, other=True)  # patella
    fib = -0.168 + 0.0025 * rot
    ellipsoid(cv, (fib, 0.165), 0.04, 0.045, 0.1 * kc, other=True)
    capsule(cv, (fib, 0.18), (fib + 0.018, 0.82), 0.022, 0.018, min(0.35 * kc, 0.6), other=True)
    f.setdefault("_roi", (cv.u_off, gap / 2))  # joint centre (the first knee of a bilateral image)
    if grade:  # marginal osteophytes and subchondral sclerosis of the medial plateau
        s = 0.01 * grade
        for side in (-1.0, 1.0):
            ellipsoid(cv, (side * 0.18, gap + 0.01), 1.2 * s, s, 0.5, other=True)
            ellipsoid(cv, (side * 0.16, -0.03), s, 1.2 * s, 0.5, other=True)
        ellipsoid(cv, (0.07, gap + 0.012), 0.07, 0.006 * grade, 0.9, other=True)
    return math.pi / 2


def _draw_metal(cv: Canvas, rng: np.random.Generator, kind: str, task: str) -> None:
    """Metal objects as dense capsules in ``cv.other_cort`` of a separate canvas."""
    if kind == "plate":  # lateral plate on the femoral shaft with screws
        capsule(cv, (-0.16, 0.05), (-0.14, 0.55), 0.012, 0.012, 1.0, other=True, depth=0.4)
        for t in np.linspace(0.1, 0.9, 5):
            y = 0.05 + 0.5 * t
            capsule(cv, (-0.17, y), (-0.03, y + 0.01), 0.006, 0.006, 1.0, other=True)
        return
    count = int(rng.integers(1, 5))
    for _ in range(count):
        cx, cy = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3)
        a = rng.uniform(0, math.pi)
        half = 0.02 if kind == "clips" else 0.04
        p0 = (cx - half * math.cos(a), cy - half * math.sin(a))
        p1 = (cx + half * math.cos(a), cy + half * math.sin(a))
        capsule(cv, p0, p1, 0.004, 0.004, 1.0, other=True)
        if kind == "staples":  # legs of the staple
            for p in (p0, p1):
                capsule(cv, p, (p[0] + 0.02 * math.sin(a), p[1] - 0.02 * math.cos(a)), 0.004, 0.004, 1.0, other=True)


def _soft(cv: Canvas, task: str, bmi: float, centres: tuple[float, ...]) -> np.ndarray:
    """Soft-tissue path (mm) from BMI; knee images may hold two legs (``centres`` in anatomy units)."""
    x = cv.x[None, :] - np.float32(cv.shift[0])
    y = cv.y[:, None] - np.float32(cv.shift[1])
    u = (np.float32(cv.cos) * x + np.float32(cv.sin) * y) * np.float32(cv.mirror / cv.scale)
    v = (np.float32(-cv.sin) * x + np.float32(cv.cos) * y) * np.float32(1.0 / cv.scale)
    ratio = max(bmi, 12.0) / 25.0
    if task == "hip":
        centre, skin = 0.70, -0.40 - 0.012 * (bmi - 25.0)
        s = (u - np.float32(centre)) * np.float32(1.0 / (centre - skin))
        out = np.sqrt(np.maximum(1.0 - s * s, 0.0)) * np.float32(210.0 * ratio**0.8)
        if bmi > 27.0:  # abdominal/gluteal fold across the field: an oblique soft-tissue edge
            fold = smoothstep(v + np.float32(0.25) * u - np.float32(0.05), 0.03)
            out = out + fold * np.float32(4.0 * (bmi - 27.0))
        return out.astype(np.float32, copy=False)
    half = 0.27 + 0.010 * (bmi - 25.0)
    if len(centres) > 1:  # two legs side by side: thighs/calves of their own, not one merged body
        half = min(half * 0.75, 0.22)
    out = np.zeros(cv.shape, np.float32)
    for c in centres:
        s = (u - np.float32(c)) * np.float32(1.0 / half)
        out += np.sqrt(np.maximum(1.0 - s * s, 0.0)) * np.float32(120.0 * ratio**0.7)
    return out


def _tone(t: np.ndarray, kind: str, param: float) -> np.ndarray:
    """Processing tone curve on ``[0, 1]`` (gamma, or a sigmoid rescaled to ``[0, 1]``)."""
    t = np.clip(t, 0.0, 1.0)
    if kind == "gamma":
        return t ** np.float32(param)
    lo, hi = 1.0 / (1.0 + math.exp(param / 2)), 1.0 / (1.0 + math.exp(-param / 2))
    return ((1.0 / (1.0 + np.exp(-np.float32(param) * (t - 0.5)))) - np.float32(lo)) * np.float32(1.0 / (hi - lo))


def render_realistic(
    task: str,
    bmd_visible: float,
    bmi: float,
    size: int,
    rng: np.random.Generator,
    bits_stored: int | None,
    return_masks: bool,
    rates: RealismRates | None = None,
) -> PhantomImage:
    """Render one realistic phantom (module docstring).

    Arguments as :func:`~monai_bone.synthetic.phantom.render_phantom`. One long function on purpose: the random
    draws must stay in this exact order (the same seed gives the same image across releases), and the steps share
    many intermediate maps; the anatomy, metal, soft tissue and tone curve are already separate helpers.
    """
    f = draw_factors(rng, task, rates)
    jitter = rng.normal(0.0, 1.0, 4)
    drawn_bits = int(rng.choice(BITS_CHOICES, p=BITS_PROBS))
    bits = int(bits_stored) if bits_stored is not None else drawn_bits
    texture_angle_jitter = float(rng.normal(0.0, 0.15))
    marrow = float(rng.uniform(0.15, 0.30))
    amplitude = float(rng.uniform(0.25, 0.5))
    cortical_density = float(rng.uniform(0.85, 1.15))
    mirror = bool(rng.random() < 0.5) and not f["bilateral"]

    aspect = f["aspect"]
    rows, cols = (max(32, round(size * aspect)), size) if aspect <= 1.0 else (size, max(32, round(size / aspect)))
    fov_long = f["spacing_at_1024_mm"] * 1024.0
    spacing = fov_long / size
    scale = FIELD_OF_VIEW_MM[task] / fov_long * f["zoom"]
    cv = Canvas(size, math.radians(f["rotation_deg"]), scale, tuple(f["shift"]), mirror, shape=(rows, cols))
    dens = visible_density(bmd_visible)
    kc = dens["cortex_factor"]
    if task == "hip":
        axis = _draw_hip(cv, kc, jitter, f)
        centres: tuple[float, ...] = (0.0,)
    elif f["bilateral"]:
        centres = (-0.24, 0.24)
        for c, flip in zip(centres, (1.0, -1.0)):
            cv.u_off, cv.flip = c, flip
            axis = _draw_knee(cv, kc, jitter, f)
        cv.u_off, cv.flip = 0.0, 1.0
    else:
        axis = _draw_knee(cv, kc, jitter, f)
        centres = (0.0,)
    roi_x, roi_y = cv.to_pixel(*f.pop("_roi"))
    roi = [round(float(roi_y) * size + rows / 2 - 0.5, 2), round(float(roi_x) * size + cols / 2 - 0.5, 2)]
    du, dv = math.cos(axis) * cv.mirror, math.sin(axis)
    tex_angle = math.atan2(cv.sin * du + cv.cos * dv, cv.cos * du - cv.sin * dv) + texture_angle_jitter

    # trabecular network: spacing, connectivity (bv_tv) and anisotropy follow BMD; its mean level does not
    wavelength_px = max(2.0 * dens["spacing_factor"] / spacing, 3.0 * dens["spacing_factor"])
    anisotropy = 1.5 + 4.0 * (1.0 - float(np.clip((bmd_visible - 0.55) / 0.6, 0.0, 1.0)))
    side = max(rows, cols)
    noise = trabecular_field(rng, side, wavelength_px, tex_angle, anisotropy)[:rows, :cols]
    w = float(ndtri(0.5 + 0.5 * dens["bv_tv"]))
    tissue = np.clip((np.float32(w) - np.abs(noise)) * np.float32(1.0 / 0.3) + np.float32(0.5), 0.0, 1.0)
    tissue -= np.float32(tissue[::3, ::3].mean())

    mm = np.float32(FIELD_OF_VIEW_MM[task])
    cortical = (cv.outer - cv.inner) * (mm * np.float32(cortical_density))
    trabecular = cv.inner * (np.float32(marrow) + np.float32(amplitude) * tissue) * mm
    other = (cv.other_cort * np.float32(cortical_density) + cv.other_trab * np.float32(marrow)) * mm
    soft = _soft(cv, task, bmi, centres)
    kv = 70.0 / f["kvp"]
    atten = np.float32(MU_SOFT * kv**0.5) * soft + np.float32(MU_BONE * kv**1.5) * (cortical + trabecular + other)
    if f["metal"]:
        mc = Canvas(size, math.radians(f["rotation_deg"]), scale, tuple(f["shift"]), mirror, shape=(rows, cols))
        _draw_metal(mc, rng, f["metal_kind"], task)
        atten += np.float32(_MU_METAL) * (mc.other_cort + mc.other_trab) * mm
    atten += (cv.y[:, None] * np.float32(f["heel"])).astype(np.float32)

    # detector physics: primary, collimator shutters, scatter fog, quantum noise, log
    ref = float(np.median(atten[::8, ::8]))
    primary = np.exp(np.float32(ref) - atten)
    open_field = np.ones((rows, cols), np.float32)
    for s in f["collimated_sides"]:
        width = max(1, int(f["collimation_width"][s] * (rows if s < 2 else cols)))
        open_field[[np.s_[:width, :], np.s_[-width:, :], np.s_[:, :width], np.s_[:, -width:]][s]] = 0.03
    if f["collimated_sides"]:
        open_field = lowpass(open_field, 1.0)
        primary *= open_field
    thickness = float(np.mean(soft)) / (210.0 if task == "hip" else 120.0)
    sigma_scatter = 40.0 / spacing
    scatter = lowpass(primary, sigma_scatter) * np.float32(f["spr"] * max(thickness, 0.2))
    detected = primary + scatter
    photons = 4000.0 * f["mas"] * (spacing / 0.15) ** 2
    detected += np.sqrt(detected / np.float32(photons)) * rng.standard_normal((rows, cols), dtype=np.float32)
    y = -np.log(np.maximum(detected, np.float32(1e-4)))

    # processing: unsharp masking, normalisation on the exposed field, tone curve, gain/offset
    if f["unsharp_amount"] > 0:
        y = y + np.float32(f["unsharp_amount"]) * (y - lowpass(y, f["unsharp_mm"] / spacing))
    exposed = open_field > 0.5
    sample = y[::2, ::2][exposed[::2, ::2]]
    lo, hi = np.percentile(sample if sample.size else y, [0.5, 99.5])
    t = np.clip((y - np.float32(lo)) * np.float32(1.0 / max(hi - lo, 1e-6)), 0.0, 1.0)
    if not f["voi_lut"]:
        t = _tone(t, f["tone"], f["tone_param"])
    out = np.float32(f["offset"]) + np.float32(f["gain"]) * t
    burned = False
    height = max(5, int(round(8.0 / spacing)))
    if f["marker"]:
        burned |= stamp_text(out, "L" if mirror else "R", f["marker_corner"], height, 1.0, box=True)
    if f["text"]:
        burned |= stamp_text(out, f["text_value"], f["text_corner"], max(5, height // 2), 1.0)
    max_value = (1 << bits) - 1
    pixels = np.clip(np.rint(out * np.float32(max_value)), 0, max_value).astype(np.uint16)

    body = (soft > 0) & exposed
    body_px = pixels[::2, ::2][body[::2, ::2]]
    if body_px.size == 0:
        body_px = pixels[::2, ::2].ravel()
    w_lo, w_hi = np.percentile(body_px, [1.0, 99.0])
    window = (float(round((w_lo + w_hi) / 2.0, 1)), float(max(round(w_hi - w_lo, 1), 1.0)))
    voi_lut = None
    if f["voi_lut"]:  # the tone curve as the file's VOI LUT over the stored range (MONOCHROME2 convention)
        grid = (np.arange(max_value + 1, dtype=np.float32) / np.float32(max_value) - np.float32(f["offset"])) / (
            np.float32(f["gain"])
        )
        voi_lut = np.rint(_tone(grid, f["tone"], f["tone_param"]) * 65535.0).astype(np.uint16)

    masks = None
    if return_masks:
        bone = (cv.outer > 0) | (cv.other_cort > 0)
        masks = {
            "bone": bone & exposed,
            "trabecular": cv.core & (cv.other_cort <= 0) & (cv.inner > 0.5 * float(cv.inner.max())) & exposed,
            "soft": body & ~bone,
        }
    laterality = "B" if f["bilateral"] else ("L" if mirror else "R")
    f.update(
        rows=rows,
        cols=cols,
        pixel_spacing_mm=round(spacing, 6),
        burned_in=bool(burned),
        laterality=laterality,
        marrow=round(marrow, 4),
        texture_amplitude=round(amplitude, 4),
        cortical_density=round(cortical_density, 4),
        anisotropy=round(anisotropy, 4),
        roi_row=roi[0],
        roi_col=roi[1],
    )
    params = {
        "task": task,
        "preset": "realistic",
        "bmd_visible": float(bmd_visible),
        "bmi": float(bmi),
        **{k: round(v, 6) for k, v in dens.items()},
        "laterality": laterality,
        "trabecular_wavelength_px": round(wavelength_px, 4),
        "bits_stored": bits,
        "realism": f,
    }
    return PhantomImage(
        pixels=pixels,
        bits_stored=bits,
        pixel_spacing_mm=(round(spacing, 6), round(spacing, 6)),
        laterality=laterality,
        window=window,
        params=params,
        masks=masks,
        voi_lut=voi_lut,
        voi_function=f["voi_function"],
        burned_in=bool(burned),
    )
