"""Shared pieces of the phantom renderers (SYNTHETIC): the posed pixel canvas, analytic bone solids, trabecular texture.

Both renderers -- the ``"simple"`` preset (:mod:`monai_bone.synthetic.phantom`) and the ``"realistic"`` one
(:mod:`monai_bone.synthetic.phantom_real`) -- draw their anatomy with these primitives; they live here so that neither
renderer imports the other (``phantom`` dispatches to ``phantom_real``, which needs only this module). The geometry
and density formulas are described in :mod:`monai_bone.synthetic.phantom`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

__all__ = [
    "BITS_CHOICES",
    "BITS_PROBS",
    "FIELD_OF_VIEW_MM",
    "MU_BONE",
    "MU_SOFT",
    "Canvas",
    "PhantomImage",
    "capsule",
    "ellipsoid",
    "smoothstep",
    "trabecular_field",
    "visible_density",
]

#: Physical field of view (mm) of the square image, per task.
FIELD_OF_VIEW_MM: dict[str, float] = {"hip": 220.0, "knee": 200.0}
#: BitsStored drawn per image and its probabilities.
BITS_CHOICES = (12, 14, 15, 16)
BITS_PROBS = (0.4, 0.3, 0.1, 0.2)
MU_SOFT = 0.020  # effective log-attenuation per mm of soft tissue
MU_BONE = 0.060  # per mm of fully mineralised bone


@dataclass
class PhantomImage:
    """A rendered phantom radiograph.

    Attributes:
        pixels: ``uint16`` array ``(size, size)``, MONOCHROME2 convention (bone bright), values in
            ``[0, 2**bits_stored - 1]`` -- ready for :func:`monai_bone.synthetic.dicom_writer.write_dx`.
        bits_stored: BitsStored of the integer range used.
        pixel_spacing_mm: (row, column) spacing in mm.
        laterality: ``"R"`` or ``"L"`` (left images are mirrored, as a left hip/knee AP appears).
        window: suggested ``(center, width)`` in ``pixels`` units (1st-99th percentile of the body).
        params: the drawn nuisance and density parameters (pose, noise, texture), for provenance.
        voi_lut: realistic preset: the processing tone curve as a VOI LUT table over the stored range (the pixels are
            then not tone-mapped), else ``None``.
        voi_function: VOILUTFunction for the window (``"LINEAR"`` or ``"SIGMOID"``).
        burned_in: the pixels hold burned-in text or a lead marker.
        masks: when requested, boolean ``(rows, cols)`` masks ``"bone"`` (any bone), ``"trabecular"`` (trabecular
            core of the epiphysis/metaphysis: femoral head/neck/trochanters, condyles/plateau) and ``"soft"``
            (soft tissue without bone).
    """

    pixels: np.ndarray
    bits_stored: int
    pixel_spacing_mm: tuple[float, float]
    laterality: str
    window: tuple[float, float]
    params: dict = field(default_factory=dict)
    masks: dict[str, np.ndarray] | None = None
    voi_lut: np.ndarray | None = None
    voi_function: str = "LINEAR"
    burned_in: bool = False


def visible_density(bmd_visible: float) -> dict[str, float]:
    """Bone appearance parameters implied by the visible BMD (formulas: :mod:`monai_bone.synthetic.phantom`).

    Returns:
        ``{"cortex_factor", "bv_tv", "spacing_factor"}``.
    """
    v = float(bmd_visible)
    return {
        "cortex_factor": float(np.clip(1.0 + 2.5 * (v - 0.85), 0.35, 1.8)),
        "bv_tv": float(np.clip(0.22 + 0.55 * (v - 0.85), 0.04, 0.5)),
        "spacing_factor": float(np.clip(1.0 + 1.2 * (0.85 - v), 0.7, 1.6)),
    }


class Canvas:
    """Pixel grid with a pose: maps pixel boxes to anatomy coordinates and accumulates path-length maps.

    Anatomy coordinates ``(u, v)`` are in units of the field of view, origin at the image centre, ``u`` to the image
    right, ``v`` downwards, before pose (rotation, scale, shift) and mirroring.
    """

    def __init__(
        self,
        size: int,
        angle: float,
        scale: float,
        shift: tuple[float, float],
        mirror: bool,
        shape: tuple[int, int] | None = None,
    ):
        self.size = size  # the long side: anatomy units are fractions of it
        rows, cols = shape if shape is not None else (size, size)
        self.shape = (int(rows), int(cols))
        self.x = _centred(cols, size)  # column centres (field units)
        self.y = _centred(rows, size)  # row centres
        self.cos, self.sin = math.cos(angle), math.sin(angle)
        self.scale = scale
        self.shift = shift
        self.mirror = -1.0 if mirror else 1.0
        self.u_off, self.flip = 0.0, 1.0  # frame of the part being drawn (bilateral knees)
        shape = self.shape
        self.outer = np.zeros(shape, np.float32)  # main bone, total path (field units)
        self.inner = np.zeros(shape, np.float32)  # main bone, trabecular core path x regional weight
        self.core = np.zeros(shape, bool)  # main bone, epiphyseal/metaphyseal trabecular core
        self.other_cort = np.zeros(shape, np.float32)  # other bones (added): cortical path
        self.other_trab = np.zeros(shape, np.float32)  # other bones (added): trabecular path

    def to_pixel(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Anatomy -> normalised image coordinates (x, y), fractions of the long side around the centre."""
        u = (u * self.flip + self.u_off) * self.mirror * self.scale
        v = v * self.scale
        return (self.cos * u - self.sin * v + self.shift[0], self.sin * u + self.cos * v + self.shift[1])

    def coords(self, box: tuple[float, float, float, float]) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Pixel slices covering anatomy box ``(u0, v0, u1, v1)`` and the anatomy coordinates on that sub-grid."""
        u0, v0, u1, v1 = box
        xs, ys = self.to_pixel(np.array([u0, u1, u0, u1]), np.array([v0, v0, v1, v1]))
        n = self.size
        rows, cols = self.shape
        c0 = max(int(math.floor(xs.min() * n + cols / 2)) - 1, 0)
        c1 = min(int(math.ceil(xs.max() * n + cols / 2)) + 1, cols)
        r0 = max(int(math.floor(ys.min() * n + rows / 2)) - 1, 0)
        r1 = min(int(math.ceil(ys.max() * n + rows / 2)) + 1, rows)
        if c0 >= c1 or r0 >= r1:
            return None
        x = self.x[c0:c1][None, :] - np.float32(self.shift[0])
        y = self.y[r0:r1][:, None] - np.float32(self.shift[1])
        u = (np.float32(self.cos) * x + np.float32(self.sin) * y) * np.float32(self.mirror / self.scale)
        v = (np.float32(-self.sin) * x + np.float32(self.cos) * y) * np.float32(1.0 / self.scale)
        if self.u_off or self.flip != 1.0:
            u = (u - np.float32(self.u_off)) * np.float32(self.flip)
        return slice(r0, r1), slice(c0, c1), u, v


def _centred(n: int, long_side: int) -> np.ndarray:
    """Pixel-centre coordinates of ``n`` pixels in units of ``long_side`` pixels, 0 at the image centre."""
    if n == long_side:  # the square case, computed exactly as the simple preset always has
        return ((np.arange(n, dtype=np.float32) + 0.5) / n - 0.5).astype(np.float32)
    return ((np.arange(n, dtype=np.float32) + np.float32(0.5 - n / 2)) / np.float32(long_side)).astype(np.float32)


def _paths(d2: np.ndarray, r: np.ndarray | float, cortex: float, depth: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Projected total and core path lengths through a solid of radius ``r`` at squared normalised distance ``d2``.

    ``d2`` is the squared distance divided by ``r^2`` (1 on the surface); ``depth`` scales the beam-direction radius.
    """
    total = np.sqrt(np.maximum(1.0 - d2, 0.0)) * (2.0 * depth * r)
    k = 1.0 - cortex
    core = np.sqrt(np.maximum(k * k - d2, 0.0)) * (2.0 * depth * r)
    return total.astype(np.float32, copy=False), core.astype(np.float32, copy=False)


def capsule(
    cv: Canvas, p0, p1, r0: float, r1: float, cortex: float, weight=1.0, core=False, other=False, depth: float = 1.0
) -> None:
    """Add a tapered capsule (cylinder with round ends) from ``p0`` to ``p1`` (radii ``r0``, ``r1``).

    ``weight`` is the trabecular weight: a number or ``(w0, w1)`` interpolated along the axis; ``depth`` scales the
    beam-direction path (a part tilted out of the image plane is foreshortened and projects denser).
    """
    (ax, ay), (bx, by) = p0, p1
    rmax = max(r0, r1)
    hit = cv.coords((min(ax, bx) - rmax, min(ay, by) - rmax, max(ax, bx) + rmax, max(ay, by) + rmax))
    if hit is None:
        return
    rs, cs, u, v = hit
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    px, py = u - np.float32(ax), v - np.float32(ay)
    t = np.clip((px * np.float32(dx) + py * np.float32(dy)) * np.float32(1.0 / length2), 0.0, 1.0)
    qx, qy = px - t * np.float32(dx), py - t * np.float32(dy)
    r = np.float32(r0) + t * np.float32(r1 - r0)
    total, inner = _paths((qx * qx + qy * qy) / (r * r), r, cortex, depth)
    if isinstance(weight, tuple):
        inner = inner * (np.float32(weight[0]) + t * np.float32(weight[1] - weight[0]))
    elif weight != 1.0:
        inner = inner * np.float32(weight)
    _merge(cv, rs, cs, total, inner, core, other)


def ellipsoid(
    cv: Canvas,
    c,
    a: float,
    b: float,
    cortex: float,
    angle: float = 0.0,
    depth: float | None = None,
    core=False,
    other=False,
    cut=None,
) -> None:
    """Add an ellipsoid centred at ``c`` with in-plane semi-axes ``a`` (u), ``b`` (v), rotated by ``angle`` (rad).

    ``depth`` is the beam-direction semi-axis (default ``min(a, b)``). ``cut`` is an optional function
    ``(u, v) -> factor in [0, 1]`` multiplied into the path lengths (e.g. a flat plateau or a socket).
    """
    rb = max(a, b)
    hit = cv.coords((c[0] - rb, c[1] - rb, c[0] + rb, c[1] + rb))
    if hit is None:
        return
    rs, cs, u, v = hit
    du, dv = u - np.float32(c[0]), v - np.float32(c[1])
    if angle:
        ca, sa = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        du, dv = ca * du + sa * dv, -sa * du + ca * dv
    d2 = (du / np.float32(a)) ** 2 + (dv / np.float32(b)) ** 2
    depth = min(a, b) if depth is None else depth
    total, inner = _paths(d2, 1.0, cortex, depth)
    if cut is not None:
        factor = cut(u, v).astype(np.float32)
        total, inner = total * factor, inner * factor
    _merge(cv, rs, cs, total, inner, core, other)


def _merge(cv: Canvas, rs: slice, cs: slice, total: np.ndarray, inner: np.ndarray, core: bool, other: bool) -> None:
    if other:
        cv.other_cort[rs, cs] += total - inner
        cv.other_trab[rs, cs] += inner
        return
    np.maximum(cv.outer[rs, cs], total, out=cv.outer[rs, cs])
    np.maximum(cv.inner[rs, cs], inner, out=cv.inner[rs, cs])
    if core:
        cv.core[rs, cs] |= inner > 0


def smoothstep(x: np.ndarray, width: float) -> np.ndarray:
    """0 below ``-width``, 1 above ``+width``, linear in between."""
    return np.clip(x * np.float32(0.5 / width) + np.float32(0.5), 0.0, 1.0)


def trabecular_field(
    rng: np.random.Generator, size: int, wavelength_px: float, angle: float, anisotropy: float = 2.5
) -> np.ndarray:
    """Zero-mean, unit-variance band-pass noise with trabecular spacing ``wavelength_px``, lines along ``angle``
    (``anisotropy``: angular concentration of the spectrum perpendicular to the lines)."""
    white = rng.standard_normal((size, size), dtype=np.float32)
    spec = scipy.fft.rfft2(white, workers=1)
    fy = scipy.fft.fftfreq(size).astype(np.float32)[:, None]
    fx = scipy.fft.rfftfreq(size).astype(np.float32)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    band = np.exp(-(np.log(f * np.float32(wavelength_px)) ** 2) / np.float32(2 * 0.4**2))
    # trabeculae along `angle` -> energy perpendicular to it
    cperp = (fx * np.float32(-math.sin(angle)) + fy * np.float32(math.cos(angle))) / f
    band *= np.exp(np.float32(anisotropy) * (cperp * cperp - np.float32(1.0)))
    band[0, 0] = 0.0
    spec *= band
    out = scipy.fft.irfft2(spec, s=(size, size), workers=1).astype(np.float32, copy=False)
    sd = float(np.sqrt(np.mean(out[::4, ::4] ** 2))) or 1.0
    out *= np.float32(1.0 / sd)
    return out
