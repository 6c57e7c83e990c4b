"""Subgroup metrics of every CV row: ``subgroups.csv`` (by sex, age band and BMI band; knee also by class).

Out-of-fold predictions are joined to their records by patient id (all studies of a patient share the clinical
fields used here). Bands: age < 70, 70–80, ≥ 80 years (age at the radiograph, else at DXA); BMI < 25, 25–30, ≥ 30.
Hip: n, MAE, R² and the screening AUC (BMD < 0.899 g/cm²); knee: n, accuracy at p = 0.5 and AUC.
Small subgroups give wide intervals: the table reports n so a reader can judge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import SCREENING_THRESHOLD, SYNTHETIC_NOTE
from monai_bone.utils.io import atomic_write_csv

from .table import VariantResult

__all__ = ["subgroup_of", "subgroup_rows", "write_subgroups"]


def _band(value: Any, edges: Sequence[float], names: Sequence[str]) -> str | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return names[int(np.searchsorted(edges, v, side="right"))]


def subgroup_of(record: Mapping[str, Any]) -> dict[str, str | None]:
    """``{"sex", "age_band", "bmi_band"}`` of a record (``None`` where the field is missing)."""
    age = record.get("age_xray") if record.get("age_xray") is not None else record.get("age_bmd")
    return {
        "sex": str(record["sex"]) if record.get("sex") else None,
        "age_band": _band(age, (70.0, 80.0), ("<70", "70-80", ">=80")),
        "bmi_band": _band(record.get("bmi"), (25.0, 30.0), ("<25", "25-30", ">=30")),
    }


def _metrics(task: str, pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    from monai_bone.metrics import safe_auc, screening_positive

    if task == "hip":
        ss = float(np.sum((true - true.mean()) ** 2))
        return {
            "mae": float(np.mean(np.abs(pred - true))),
            "r2": 1.0 - float(np.sum((pred - true) ** 2)) / ss if ss > 0 else math.nan,
            "auc": float(safe_auc(screening_positive(true, SCREENING_THRESHOLD), -pred)),
        }
    return {"accuracy": float(np.mean((pred >= 0.5) == (true >= 0.5))), "auc": float(safe_auc(true >= 0.5, pred))}


def subgroup_rows(task: str, res: VariantResult, by_patient: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per subgroup of one CV row: ``{"variant", "subgroup", "value", "n", metrics...}``."""
    pred = np.concatenate([np.asarray(f.pred, dtype=float).reshape(-1) for f in res.folds])
    true = np.concatenate([np.asarray(f.true, dtype=float).reshape(-1) for f in res.folds])
    ids = [str(i) for f in res.folds for i in (f.ids if len(f.ids) == len(f.true) else [""] * len(f.true))]
    groups = [subgroup_of(by_patient.get(i, {})) for i in ids]
    if task == "knee":
        for g, t in zip(groups, true):
            g["class"] = "osteoporosis" if t >= 0.5 else "other"
    rows = []
    for key in groups[0] if groups else ():
        for value in sorted({g[key] for g in groups if g[key] is not None}):
            sel = np.array([g[key] == value for g in groups])
            rows.append({"variant": res.name, "subgroup": key, "value": value, "n": int(sel.sum())})
            rows[-1].update(_metrics(task, pred[sel], true[sel]))
    return rows


def write_subgroups(
    task: str, results: Sequence[VariantResult], records: Sequence[Mapping[str, Any]], out_dir: Path, synthetic: bool
) -> dict[str, Path]:
    """Write ``subgroups.csv`` for every row."""
    by_patient = {str(r.get("patient_id", "")): r for r in records}
    rows = [r for res in results for r in subgroup_rows(task, res, by_patient)]
    cols = ["variant", "subgroup", "value", "n", *(["mae", "r2", "auc"] if task == "hip" else ["accuracy", "auc"])]
    path = atomic_write_csv(out_dir / "subgroups.csv", rows, cols, comment=SYNTHETIC_NOTE if synthetic else None)
    return {"subgroups_csv": path}
