"""The region-of-interest stage in a CV run (``monai-bone cv --roi-mm``): one localiser per CV fold, shared by rows.

The bundles crop the network input around a landmark found by a small localiser (``roi_size_mm``,
:mod:`monai_bone.engines.localiser`); the localiser is fitted on the training records' landmarks only. In a CV run
every row of a fold trains on the same records, so they share that fold's localiser (``<out>/localisers/fold<j>.pt``,
fitted by the first network row of the fold and reused after): the rows differ in the network only, and the fold's
held-out studies never enter the localiser's fit. Landmarks come from a CSV (``roi_row``/``roi_col`` per file; a
synthetic cohort's ``realism.csv`` next to the datalist is found on its own).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .folds import synthetic_sidecars

__all__ = ["find_landmarks_csv", "roi_fold_overrides", "roi_note"]


def find_landmarks_csv(datalist: Path, info: Mapping[str, Any]) -> Path | None:
    """The synthetic generator's ``realism.csv`` (landmarks) next to a synthetic datalist or its source folder."""
    return next(iter(synthetic_sidecars(datalist, info, "realism.csv")), None)


def roi_fold_overrides(
    out: Path,
    fold: int,
    roi_size_mm: float | None,
    landmarks_csv: str | os.PathLike | None,
) -> dict[str, Any]:
    """The bundle overrides of CV fold ``fold`` for an ROI run (empty when ``roi_size_mm`` is None).

    Raises:
        ValueError: ``roi_size_mm`` not positive.
    """
    if roi_size_mm is None:
        return {}
    if not float(roi_size_mm) > 0:
        raise ValueError(f"roi_size_mm must be positive, got {roi_size_mm}")
    return {
        "roi_size_mm": float(roi_size_mm),
        "roi_landmarks_csv": None if landmarks_csv is None else os.fspath(Path(landmarks_csv).resolve()),
        "roi_localiser_path": os.fspath((out / "localisers" / f"fold{fold}.pt").resolve()),
    }


def roi_note(roi_size_mm: float, landmarks_csv: str | os.PathLike | None) -> str:
    """The table note of an ROI run."""
    source = Path(landmarks_csv).name if landmarks_csv is not None else "an existing localiser file"
    return (
        f"Network input: a {float(roi_size_mm):g} mm region of interest around a landmark located by a LandmarkNet "
        f"fitted on each fold's training records (landmarks from {source}), shared by the fold's network rows; the "
        "trivial image baseline reads the whole image."
    )
