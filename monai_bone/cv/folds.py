"""The datalist of a CV run: finding it, grouping its folds into CV folds, the synthetic cohort next to it, and the
on-disk cache of finished fits' out-of-fold predictions (a killed run resumes; any changed setting retrains).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.utils.io import atomic_write_json

from .variant_summary import FoldPrediction

__all__ = [
    "FoldCache",
    "cv_splits",
    "file_sha256",
    "find_cohort_info",
    "has_finite",
    "resolve_datalist",
    "synthetic_sidecars",
]


def resolve_datalist(data: str | os.PathLike) -> Path:
    """The datalist JSON given as a file or as a folder holding ``datalist.json``.

    Raises:
        FileNotFoundError: when neither exists.
    """
    path = Path(data)
    if path.is_dir():
        path = path / "datalist.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: datalist not found (give a datalist JSON or a folder holding datalist.json; "
            "make one with `monai-bone index`)"
        )
    return path


def cv_splits(folds: Sequence[int], k: int | None = None) -> list[list[int]]:
    """Group the datalist's fold numbers into ``k`` CV folds (``f % k``).

    Args:
        folds: the fold number of every record.
        k: number of CV folds; None uses the datalist's folds as they are.

    Returns:
        For each CV fold, the datalist fold numbers it validates on.

    Raises:
        ValueError: when ``k < 2``, or ``k`` exceeds the number of distinct datalist folds.
    """
    present = sorted({int(f) for f in folds})
    k = len(present) if k is None else int(k)
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k} (re-index with `--folds K`, K >= 2)")
    if k > len(present):
        raise ValueError(f"--folds {k} asked for, but the datalist has only {len(present)} folds {present}")
    splits = [[f for f in present if f % k == j] for j in range(k)]
    if any(not s for s in splits):
        raise ValueError(f"datalist folds {present} cannot be grouped into {k} non-empty CV folds")
    return splits


def synthetic_sidecars(datalist: Path, info: Mapping[str, Any], name: str) -> list[Path]:
    """Existing files called ``name`` next to a synthetic datalist or its source folder (nearest first)."""
    if not info.get("synthetic"):
        return []
    base = datalist.parent
    candidates = [base / name, base.parent / name]
    src = info.get("source")
    if isinstance(src, str) and src:
        s = Path(src) if Path(src).is_absolute() else base / src
        candidates += [s / name, s.parent / name]
    return [c for c in candidates if c.is_file()]


def find_cohort_info(datalist: Path, info: Mapping[str, Any]) -> dict[str, Any] | None:
    """The synthetic generator's ``cohort.json`` next to a synthetic datalist (or its source folder), if any."""
    for c in synthetic_sidecars(datalist, info, "cohort.json"):
        try:
            cohort = json.loads(c.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if cohort.get("synthetic") and cohort.get("task") in (None, info.get("task")):
            return cohort
    return None


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def has_finite(record: Mapping[str, Any], key: str) -> bool:
    v = record.get(key)
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


class FoldCache:
    """Out-of-fold predictions on disk, valid only for identical settings."""

    def __init__(self, root: Path, settings: Mapping[str, Any]) -> None:
        self.root = root
        self.settings = json.loads(json.dumps(settings, default=str))

    def path(self, row: str, fold: int) -> Path:
        return self.root / row / f"fold{fold}"

    def load(self, row: str, fold: int, extra: Mapping[str, Any]) -> FoldPrediction | None:
        f = self.path(row, fold) / "oof.json"
        if not f.is_file():
            return None
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("settings") != {**self.settings, **json.loads(json.dumps(extra, default=str))}:
            return None
        pred, true = np.asarray(data["pred"], dtype=float), np.asarray(data["true"], dtype=float)
        return FoldPrediction(fold, pred, true, list(data["ids"]))

    def save(self, row: str, pred: FoldPrediction, extra: Mapping[str, Any]) -> None:
        atomic_write_json(
            self.path(row, pred.fold) / "oof.json",
            {
                "settings": {**self.settings, **json.loads(json.dumps(extra, default=str))},
                "fold": pred.fold,
                "ids": list(pred.ids),
                "pred": [float(v) for v in np.reshape(pred.pred, -1)],
                "true": [float(v) for v in np.reshape(pred.true, -1)],
            },
        )

    def clear(self, row: str, fold: int) -> Path:
        d = self.path(row, fold)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d
