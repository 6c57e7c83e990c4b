"""Subgroup metrics: by sex, age band and BMI band (knee also by class), as pure functions.

Bands: age < 70, 70–80, ≥ 80 years (age at the radiograph, else at DXA); BMI < 25, 25–30, ≥ 30. Regression tasks
(hip): n, MAE, R² and the screening AUC (BMD below the task's screening threshold); classification tasks (knee): n,
accuracy at the decision threshold and AUC of the positive-class probability. Small subgroups give wide intervals:
every row reports n studies and n patients so a reader can judge. The evaluation report
(:class:`~monai_bone.handlers.BoneReportWriter`) and the CV table (``subgroups.csv``) both use these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_bone.tasks import get_task

from .screening import screening_positive
from .table import safe_auc

__all__ = [
    "AGE_BANDS",
    "BMI_BANDS",
    "band",
    "subgroup_metric_names",
    "subgroup_metrics",
    "subgroup_of",
    "subgroup_table",
]

#: ``(edges, names)``: value < 70 -> "<70", 70 <= value < 80 -> "70-80", else ">=80".
AGE_BANDS: tuple[tuple[float, ...], tuple[str, ...]] = ((70.0, 80.0), ("<70", "70-80", ">=80"))
BMI_BANDS: tuple[tuple[float, ...], tuple[str, ...]] = ((25.0, 30.0), ("<25", "25-30", ">=30"))


def band(value: Any, edges: Sequence[float], names: Sequence[str]) -> str | None:
    """The name of the band ``value`` falls into (``None`` when missing or not a finite number)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return names[int(np.searchsorted(edges, v, side="right"))]


def subgroup_of(record: Mapping[str, Any]) -> dict[str, str | None]:
    """``{"sex", "age_band", "bmi_band"}`` of a datalist record (``None`` where the field is missing)."""
    age = record.get("age_xray") if record.get("age_xray") is not None else record.get("age_bmd")
    return {
        "sex": str(record["sex"]) if record.get("sex") else None,
        "age_band": band(age, *AGE_BANDS),
        "bmi_band": band(record.get("bmi"), *BMI_BANDS),
    }


def subgroup_metric_names(task: str) -> list[str]:
    """The metric columns of :func:`subgroup_metrics` for ``task``."""
    return ["mae", "r2", "auc"] if get_task(task).is_regression else ["accuracy", "auc"]


def subgroup_metrics(task: str, pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The metrics of one subgroup.

    Args:
        task: a registered task name.
        pred: regression: predicted value; classification: probability of the positive class.
        true: regression: true value; classification: 1 for the positive class, else 0.
        threshold: classification decision threshold on ``pred``.
    """
    spec = get_task(task)
    if spec.is_regression:
        ss = float(np.sum((true - true.mean()) ** 2))
        return {
            "mae": float(np.mean(np.abs(pred - true))),
            "r2": 1.0 - float(np.sum((pred - true) ** 2)) / ss if ss > 0 else math.nan,
            "auc": float(safe_auc(screening_positive(true, spec.screening_threshold), -pred)),
        }
    positive = true >= 0.5
    return {"accuracy": float(np.mean((pred >= threshold) == positive)), "auc": float(safe_auc(positive, pred))}


def subgroup_table(
    task: str,
    pred: Any,
    true: Any,
    groups: Sequence[Mapping[str, str | None]],
    patients: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """One row per (subgroup key, value): ``{"subgroup", "value", "n_studies", "n_patients", metrics...}``.

    Args:
        task: a registered task name.
        pred: per-study predictions (see :func:`subgroup_metrics`).
        true: per-study truth, same length.
        groups: per study, ``{key: value or None}`` (e.g. :func:`subgroup_of` plus ``class``); a study with ``None``
            is left out of that key's rows.
        patients: per-study patient ids (for ``n_patients``); default one patient per study.
        threshold: classification decision threshold.
    """
    p, t = np.asarray(pred, dtype=float).reshape(-1), np.asarray(true, dtype=float).reshape(-1)
    ids = list(patients) if patients is not None else [str(i) for i in range(p.size)]
    rows = []
    keys = list(dict.fromkeys(k for g in groups for k in g))
    for key in keys:
        for value in sorted({g.get(key) for g in groups if g.get(key) is not None}):
            sel = np.array([g.get(key) == value for g in groups])
            rows.append(
                {
                    "subgroup": key,
                    "value": value,
                    "n_studies": int(sel.sum()),
                    "n_patients": len({ids[i] for i in np.flatnonzero(sel)}),
                    **subgroup_metrics(task, p[sel], t[sel], threshold),
                }
            )
    return rows
