"""Subgroup metrics of every CV row: ``subgroups.csv`` (by sex, age band and BMI band; knee also by class).

Out-of-fold predictions are joined to their records by patient id (all studies of a patient share the clinical
fields used here). The bands and metrics are :mod:`monai_bone.metrics.subgroups` (the evaluation report uses the
same): hip n, MAE, R² and the screening AUC (BMD < 0.899 g/cm²); knee n, accuracy at p = 0.5 and AUC.
Small subgroups give wide intervals: the table reports n so a reader can judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.metrics.subgroups import subgroup_metric_names, subgroup_of, subgroup_table
from monai_bone.tasks import get_task
from monai_bone.utils.io import atomic_write_csv

from .variant_summary import VariantResult

__all__ = ["subgroup_of", "subgroup_rows", "write_subgroups"]


def subgroup_rows(task: str, res: VariantResult, by_patient: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per subgroup of one CV row: ``{"variant", "subgroup", "value", "n", "n_patients", metrics...}``."""
    pred = np.concatenate([np.asarray(f.pred, dtype=float).reshape(-1) for f in res.folds])
    true = np.concatenate([np.asarray(f.true, dtype=float).reshape(-1) for f in res.folds])
    ids = [str(i) for f in res.folds for i in (f.ids if len(f.ids) == len(f.true) else [""] * len(f.true))]
    groups = [subgroup_of(by_patient.get(i, {})) for i in ids]
    if get_task(task).is_classification:
        for g, t in zip(groups, true):
            g["class"] = "osteoporosis" if t >= 0.5 else "other"
    patients = [i or f"study:{k}" for k, i in enumerate(ids)]
    rows = subgroup_table(task, pred, true, groups, patients)
    split = {"split": "train folds (out-of-fold)", "selected_on_split": False}
    return [{"variant": res.name, "n": r.pop("n_studies"), **r, **split} for r in rows]


def write_subgroups(
    task: str, results: Sequence[VariantResult], records: Sequence[Mapping[str, Any]], out_dir: Path, synthetic: bool
) -> dict[str, Path]:
    """Write ``subgroups.csv`` for every row."""
    by_patient = {str(r.get("patient_id", "")): r for r in records}
    rows = [r for res in results for r in subgroup_rows(task, res, by_patient)]
    cols = ["variant", "subgroup", "value", "n", "n_patients", *subgroup_metric_names(task)]
    cols += ["split", "selected_on_split"]
    path = atomic_write_csv(out_dir / "subgroups.csv", rows, cols, comment=SYNTHETIC_NOTE if synthetic else None)
    return {"subgroups_csv": path}
