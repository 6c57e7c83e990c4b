"""Realism factors of the ``"realistic"`` phantom preset: what varies between radiographs besides the bone. SYNTHETIC.

:func:`draw_factors` draws, per image and in a fixed order from the image's own random stream, everything that
makes real radiographs differ although the bone is the same (ranges below; rates in :class:`RealismRates`):

* **Acquisition**: tube voltage ``kvp`` U(60, 90) kV (bone/soft-tissue contrast falls with kV: attenuation
  coefficients scale as ``(70/kV)^0.5`` for soft tissue, ``(70/kV)^1.5`` for bone), relative exposure ``mas``
  log-uniform over (0.25, 4) (quantum noise ``~ 1/sqrt(mas x dose)``), scatter-to-primary ratio ``spr`` U(0.1, 0.9)
  scaled by the body thickness (a low-pass fog that lowers the contrast of thick, high-BMI bodies), heel effect.
* **Detector and processing**: gain U(0.45, 0.85) and offset U(0, 0.25) of the integer range used, unsharp masking
  (amount U(0, 3), kernel U(4, 30) mm: equalises large-scale brightness as DR processing does), a tone curve (gamma
  U(0.6, 1.6) or a sigmoid of slope U(3, 9)) baked into the pixels -- or, with probability ``voi_lut``, written as the
  file's VOI LUT Sequence instead -- and a SIGMOID VOILUTFunction with probability ``voi_sigmoid``.
* **Geometry**: in-plane rotation N(0, 6 deg) clipped to 15 deg, detector spacing at 1024 px U(0.10, 0.20) mm
  (hip U(0.14, 0.20), bilateral knee U(0.17, 0.20): the field of view is ``1024 x spacing``), aspect ratio
  (rows/cols) U(0.75, 1.33) (bilateral knees landscape U(0.55, 0.75)), zoom U(0.95, 1.05), field shift.
* **Pose**: hip -- femoral rotation U(-20, 30) deg (external +; the neck is foreshortened by ``cos(15 + rotation)``,
  projected wider and denser, the lesser trochanter grows in profile) and abduction N(0, 6) clipped to 15 deg;
  knee -- axial rotation N(0, 7) deg (fibular overlap, patella shift).
* **Findings and objects** (Bernoulli, rates in :class:`RealismRates`): osteoarthritis (grade 1-3: joint-space
  narrowing, osteophytes, subchondral sclerosis), metal (clips, a plate with screws on the femoral shaft / staples),
  an L/R lead marker, burned-in text, collimation (each side shuttered independently), bilateral knee images.

None of these depends on BMD; BMD acts only through the trabecular texture (spacing, anisotropy, connectivity) and
the cortical thickness (:func:`monai_bone.synthetic.phantom.visible_density`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.ndimage as ndi

__all__ = ["FACTOR_KEYS", "RealismRates", "draw_factors", "lowpass", "stamp_text"]


@dataclass(frozen=True)
class RealismRates:
    """Probabilities of the discrete realism factors (per image; knee-only and hip-only ones say so)."""

    osteoarthritis: float = 0.25
    metal: float = 0.10
    marker: float = 0.70
    text: float = 0.30
    collimation: float = 0.50
    bilateral: float = 0.30  # knee only
    voi_lut: float = 0.20
    voi_sigmoid: float = 0.20

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dictionary."""
        return asdict(self)


#: Boolean factors recorded per image, whose share in a cohort follows :class:`RealismRates`.
FACTOR_KEYS: tuple[str, ...] = ("osteoarthritis", "metal", "marker", "text", "collimation", "bilateral", "voi_lut")

_TEXTS = ("AP", "AP SUPINE", "STANDING", "WEIGHT BEARING", "PORTABLE", "SYNTHETIC", "CR 2", "DR ROOM 3")


def draw_factors(rng: np.random.Generator, task: str, rates: RealismRates | None = None) -> dict[str, Any]:
    """Draw one image's realism factors (module docstring) from ``rng``, always in the same order.

    Args:
        rng: the image's random generator.
        task: ``"hip"`` or ``"knee"``.
        rates: rates of the discrete factors (default :class:`RealismRates`).

    Returns:
        A JSON-ready dictionary (the ground-truth sidecar row of the image).
    """
    r = rates or RealismRates()
    u = rng.random(12)  # Bernoulli draws in a fixed order
    bilateral = task == "knee" and bool(u[0] < r.bilateral)
    f: dict[str, Any] = {
        "bilateral": bilateral,
        "osteoarthritis": bool(u[1] < r.osteoarthritis),
        "metal": bool(u[2] < r.metal),
        "marker": bool(u[3] < r.marker),
        "text": bool(u[4] < r.text),
        "collimation": bool(u[5] < r.collimation),
        "voi_lut": bool(u[6] < r.voi_lut),
        "voi_function": "SIGMOID" if u[7] < r.voi_sigmoid else "LINEAR",
    }
    f["oa_grade"] = int(rng.integers(1, 4)) if f["osteoarthritis"] else 0
    f["metal_kind"] = (
        str(rng.choice(["clips", "plate"] if task == "hip" else ["clips", "staples"])) if f["metal"] else "none"
    )
    sides = rng.random(4) < 0.6
    if f["collimation"] and not sides.any():
        sides[int(rng.integers(0, 4))] = True
    widths = rng.uniform(0.03, 0.12, 4)
    f["collimated_sides"] = [int(i) for i in np.flatnonzero(sides)] if f["collimation"] else []
    f["collimation_width"] = [round(float(w), 4) for w in widths]
    f["kvp"] = round(float(rng.uniform(60.0, 90.0)), 1)
    f["mas"] = round(float(math.exp(rng.uniform(math.log(0.25), math.log(4.0)))), 4)
    f["spr"] = round(float(rng.uniform(0.1, 0.9)), 4)
    f["gain"] = round(float(rng.uniform(0.45, 0.85)), 4)
    f["offset"] = round(float(rng.uniform(0.0, 0.25)), 4)
    f["unsharp_amount"] = round(float(rng.uniform(0.0, 3.0)), 4)
    f["unsharp_mm"] = round(float(rng.uniform(4.0, 30.0)), 3)
    f["tone"] = "sigmoid" if rng.random() < 0.5 else "gamma"
    f["tone_param"] = round(float(rng.uniform(3.0, 9.0) if f["tone"] == "sigmoid" else rng.uniform(0.6, 1.6)), 4)
    f["rotation_deg"] = round(float(np.clip(rng.normal(0.0, 6.0), -15.0, 15.0)), 3)
    lo_sp = 0.17 if bilateral else (0.14 if task == "hip" else 0.10)
    f["spacing_at_1024_mm"] = round(float(rng.uniform(lo_sp, 0.20)), 5)
    f["aspect"] = round(float(rng.uniform(0.55, 0.75) if bilateral else rng.uniform(0.75, 1.33)), 4)
    f["zoom"] = round(float(rng.uniform(0.95, 1.05)), 4)
    f["shift"] = [round(float(s), 4) for s in np.clip(rng.normal(0.0, 0.03, 2), -0.07, 0.07)]
    f["heel"] = round(float(rng.normal(0.0, 0.08)), 4)
    if task == "hip":
        f["femoral_rotation_deg"] = round(float(rng.uniform(-20.0, 30.0)), 3)
        f["abduction_deg"] = round(float(np.clip(rng.normal(0.0, 6.0), -15.0, 15.0)), 3)
    else:
        f["knee_rotation_deg"] = round(float(np.clip(rng.normal(0.0, 7.0), -20.0, 20.0)), 3)
    f["marker_corner"] = int(rng.integers(0, 4))
    f["text_value"] = str(rng.choice(_TEXTS)) if f["text"] else ""
    f["text_corner"] = int(rng.integers(0, 4))
    return f


def lowpass(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian low-pass of ``image`` with a large ``sigma_px``, computed on a block-averaged grid (fast)."""
    sigma_px = float(sigma_px)
    k = max(1, int(sigma_px // 3))
    if k == 1:
        return ndi.gaussian_filter(image, sigma_px, mode="nearest")
    rows, cols = image.shape
    pr, pc = (-rows) % k, (-cols) % k
    padded = np.pad(image, ((0, pr), (0, pc)), mode="edge") if pr or pc else image
    small = padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).mean(axis=(1, 3))
    small = ndi.gaussian_filter(small, sigma_px / k, mode="nearest")
    # bilinear upsampling as two small matrix products (much faster than ndimage.zoom for large factors)
    return (_upsample_matrix(rows, small.shape[0], k) @ small @ _upsample_matrix(cols, small.shape[1], k).T).astype(
        np.float32, copy=False
    )


def _upsample_matrix(n_out: int, n_small: int, k: int) -> np.ndarray:
    """``(n_out, n_small)`` linear-interpolation weights from block centres (block size ``k``) to pixel centres."""
    pos = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) / k - 0.5, 0.0, n_small - 1.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), max(n_small - 2, 0))
    frac = pos - lo
    m = np.zeros((n_out, n_small), np.float32)
    rows = np.arange(n_out)
    m[rows, lo] = 1.0 - frac
    if n_small > 1:
        m[rows, lo + 1] += frac
    return m


# 5x7 bitmap font (rows top to bottom, 5 bits each) for markers and burned-in text
_FONT: dict[str, tuple[int, ...]] = {
    "A": (14, 17, 17, 31, 17, 17, 17),
    "B": (30, 17, 17, 30, 17, 17, 30),
    "C": (14, 17, 16, 16, 16, 17, 14),
    "D": (30, 17, 17, 17, 17, 17, 30),
    "E": (31, 16, 16, 30, 16, 16, 31),
    "G": (14, 17, 16, 23, 17, 17, 15),
    "H": (17, 17, 17, 31, 17, 17, 17),
    "I": (14, 4, 4, 4, 4, 4, 14),
    "L": (16, 16, 16, 16, 16, 16, 31),
    "M": (17, 27, 21, 21, 17, 17, 17),
    "N": (17, 25, 21, 19, 17, 17, 17),
    "O": (14, 17, 17, 17, 17, 17, 14),
    "P": (30, 17, 17, 30, 16, 16, 16),
    "R": (30, 17, 17, 30, 20, 18, 17),
    "S": (15, 16, 16, 14, 1, 1, 30),
    "T": (31, 4, 4, 4, 4, 4, 4),
    "U": (17, 17, 17, 17, 17, 17, 14),
    "W": (17, 17, 17, 21, 21, 21, 10),
    "Y": (17, 17, 10, 4, 4, 4, 4),
    "2": (14, 17, 1, 2, 4, 8, 31),
    "3": (31, 2, 4, 2, 1, 17, 14),
    " ": (0, 0, 0, 0, 0, 0, 0),
}


def _glyphs(text: str) -> np.ndarray:
    """Boolean bitmap (7 x 6 n) of ``text`` in the 5x7 font (unknown characters blank)."""
    cols = []
    for ch in text.upper():
        rows = _FONT.get(ch, _FONT[" "])
        bits = np.array([[(r >> (4 - i)) & 1 for i in range(5)] + [0] for r in rows], dtype=bool)
        cols.append(bits)
    return np.concatenate(cols, axis=1) if cols else np.zeros((7, 0), bool)


def stamp_text(image: np.ndarray, text: str, corner: int, height_px: int, value: float, box: bool = False) -> bool:
    """Burn ``text`` into ``image`` (in place) near ``corner`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).

    Args:
        image: 2-D float array.
        text: characters of the 5x7 font.
        corner: image corner.
        height_px: glyph height in pixels (the 7 font rows are scaled to it).
        value: pixel value of the strokes.
        box: draw a filled square behind the text (a lead marker's plastic holder) at ``0.6 value``.

    Returns:
        ``True`` when the text fitted into the image and was drawn.
    """
    bitmap = _glyphs(text)
    k = max(1, int(round(height_px / 7)))
    big = np.kron(bitmap, np.ones((k, k), dtype=bool))
    rows, cols = image.shape
    pad = max(1, rows // 25)
    h, w = big.shape[0] + 2 * k, big.shape[1] + 2 * k
    if h + 2 * pad > rows or w + 2 * pad > cols:
        return False
    r0 = pad if corner in (0, 1) else rows - pad - h
    c0 = pad if corner in (0, 2) else cols - pad - w
    region = image[r0 : r0 + h, c0 : c0 + w]
    if box:
        region[...] = np.float32(0.6 * value)
    region[k : k + big.shape[0], k : k + big.shape[1]][big] = np.float32(value)
    return True
