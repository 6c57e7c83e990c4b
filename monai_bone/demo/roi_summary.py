"""What the demo says about its region-of-interest input: the localiser's landmark error and the ROI figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monai_bone.data import fold_records
from monai_bone.data.landmarks import attach_landmarks
from monai_bone.engines.localiser import localiser_errors
from monai_bone.results.roi_figure import plot_roi_examples

__all__ = ["roi_summary"]


def roi_summary(bundle: Path, datalist: Path, landmarks: Path, out: Path, size_mm: float) -> dict[str, Any]:
    """Localiser error (mm) on the fitting's held-out val fold and on the locked test split, plus the ROI figure."""
    path = bundle / "models" / "localiser.pt"
    fitted = json.loads(Path(f"{path}.json").read_text(encoding="utf-8"))
    test = attach_landmarks(fold_records(datalist, 0, "test"), landmarks)
    err = localiser_errors(path, test)
    figure = plot_roi_examples(test, path, size_mm, out / "roi_examples.png")
    return {
        "size_mm": size_mm,
        "localiser_n_train": fitted.get("n_train"),
        "val_fold": fitted.get("held_out"),
        "test": {"split": "test", **{k: v for k, v in err.items() if k != "errors_mm"}},
        "figure": str(figure.relative_to(out.parent)),
    }
