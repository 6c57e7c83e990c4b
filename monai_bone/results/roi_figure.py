"""Example radiographs with the located region of interest drawn on them (the demo report's ROI figure).

Each panel shows one study (normalised to ``[0, 1]``, MONOCHROME2) with the ROI the localiser found (red square,
``size_mm`` wide from PixelSpacing) and, where the record carries one, the true landmark (green cross), titled with
the distance in mm. Figures are labelled SYNTHETIC when the data are.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.transforms.array import LoadXray, XrayNormalise
from monai_bone.transforms.localise import LocateRoi
from monai_bone.transforms.roi import image_spacing_mm, roi_box
from monai_bone.utils.io import atomic_write_bytes

__all__ = ["plot_roi_examples"]


def plot_roi_examples(
    records: Sequence[dict],
    localiser: str | os.PathLike,
    size_mm: float,
    path: str | os.PathLike,
    synthetic: bool = True,
    max_panels: int = 4,
) -> Path:
    """Draw the located ROI on up to ``max_panels`` studies and save a PNG.

    Args:
        records: records with ``image`` (and optionally ``roi_row``/``roi_col``, the true landmark).
        localiser: localiser file.
        size_mm: side of the ROI in mm.
        path: output PNG.
        synthetic: label the figure SYNTHETIC.
        max_panels: how many studies.

    Returns:
        The PNG path.
    """
    locate = LocateRoi(localiser)
    chosen = list(records)[:max_panels]
    n = max(1, len(chosen))
    fig = Figure(figsize=(3.2 * n, 3.8), dpi=90)
    FigureCanvasAgg(fig)
    for i, rec in enumerate(chosen):
        ax = fig.add_subplot(1, n, i + 1)
        img = XrayNormalise()(LoadXray()(rec["image"]))
        spacing = image_spacing_mm(img, fallback_mm=1.0)
        row, col = (float(v) for v in locate(img))
        r0, c0, h, w = roi_box((row, col), spacing, size_mm)
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), w, h, fill=False, edgecolor="red", linewidth=1.5))
        title = Path(str(rec["image"])).stem
        if rec.get("roi_row") is not None and rec.get("roi_col") is not None:
            tr, tc = float(rec["roi_row"]), float(rec["roi_col"])
            ax.plot([tc], [tr], marker="+", color="lime", markersize=12, markeredgewidth=2)
            title += f"\nerror {math.hypot((row - tr) * spacing[0], (col - tc) * spacing[1]):.1f} mm"
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    label = "SYNTHETIC - " if synthetic else ""
    fig.suptitle(f"{label}located ROI ({size_mm:g} mm, red) and true landmark (green)", fontsize=9)
    if synthetic:
        fig.text(0.5, 0.005, SYNTHETIC_NOTE, ha="center", va="bottom", fontsize=7, color="firebrick")
    fig.tight_layout(rect=(0, 0.03 if synthetic else 0, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return atomic_write_bytes(path, buf.getvalue())
