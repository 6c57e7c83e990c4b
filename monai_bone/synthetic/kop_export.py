"""KOP-style export of a synthetic knee cohort: class folders of mixed PNG/JPEG files like the public KOP downloads.

The public Knee Osteoporosis (KOP) image sets are not tidy: 8-bit files of several sizes, most JPEG (many stored as
RGB although grey), some PNG, and occasional duplicates of one radiograph under another name. The ``"realistic"``
preset of :func:`monai_bone.synthetic.synth.synthesize` (``fmt="kop"``) writes that mix so the ingestion rules get
exercised; per file (drawn from the file's own random stream, recorded in the ``realism.csv`` sidecar):

* encoding JPEG with probability :attr:`KopStyle.jpeg` (quality U(80, 95)), else PNG;
* a JPEG is RGB (three equal channels) with probability :attr:`KopStyle.rgb`, else grey;
* the image is resized by a factor U(:attr:`KopStyle.min_scale`, 1) (bilinear), on top of the phantom's own varying
  field of view and aspect ratio;
* ``floor(duplicates x n)`` subjects get a second, re-encoded copy named ``<PatientID>_dup.<ext>`` in the same class
  folder (not listed in ``clinical.csv``/``ground_truth.csv``; ``duplicate_of`` in the sidecar names the original).

The ``"simple"`` preset keeps the plain layout: one 8-bit grey PNG per subject at the rendered size.
Every file carries the synthetic note (PNG ``Comment`` text chunk, JPEG COM marker).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from monai_bone.constants import SYNTHETIC_NOTE

__all__ = ["KopStyle", "draw_kop_style", "encode_kop", "to_8bit"]


@dataclass(frozen=True)
class KopStyle:
    """Rates and ranges of the KOP-like file variation (module docstring)."""

    jpeg: float = 0.65
    rgb: float = 0.7
    min_scale: float = 0.6
    duplicates: float = 0.03

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dictionary."""
        return asdict(self)


def draw_kop_style(rng: np.random.Generator, style: KopStyle | None = None) -> dict[str, Any]:
    """Draw one file's encoding (``format``, ``mode``, ``scale``, ``quality``) from ``rng`` in a fixed order."""
    s = style or KopStyle()
    u = rng.random(2)
    fmt = "JPEG" if u[0] < s.jpeg else "PNG"
    return {
        "format": fmt,
        "mode": "RGB" if fmt == "JPEG" and u[1] < s.rgb else "L",
        "scale": round(float(rng.uniform(s.min_scale, 1.0)), 4),
        "quality": int(rng.integers(80, 96)),
    }


def to_8bit(pixels: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """MONOCHROME2-convention pixels -> ``uint8`` scaled from the given intensity percentiles."""
    arr = np.asarray(pixels, dtype=np.float32)
    lo, hi = np.percentile(arr, percentiles)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip(np.rint((arr - lo) * scale), 0, 255).astype(np.uint8)


def encode_kop(pixels: np.ndarray, encoding: dict[str, Any]) -> tuple[bytes, str]:
    """Encode a phantom as a KOP-like file.

    Args:
        pixels: 2-D MONOCHROME2-convention array.
        encoding: from :func:`draw_kop_style`.

    Returns:
        ``(file bytes, suffix)`` with suffix ``".jpg"`` or ``".png"`` (deterministic for the same inputs).
    """
    img = Image.fromarray(to_8bit(pixels), mode="L")
    scale = float(encoding["scale"])
    if scale < 1.0:
        size = (max(32, round(img.width * scale)), max(32, round(img.height * scale)))
        img = img.resize(size, Image.BILINEAR)
    if encoding["mode"] == "RGB":
        img = img.convert("RGB")
    buf = io.BytesIO()
    if encoding["format"] == "JPEG":
        img.save(buf, format="JPEG", quality=int(encoding["quality"]), comment=SYNTHETIC_NOTE.encode("utf-8"))
        return buf.getvalue(), ".jpg"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SYNTHETIC_NOTE)
    info.add_text("Software", "monai-bone synthetic phantom")
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue(), ".png"
