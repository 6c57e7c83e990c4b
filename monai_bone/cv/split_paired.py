"""Paired comparisons of a bundle's evaluation with the baselines scored on the same split (the demo's Δ lines).

:func:`paired_vs_baselines` reads the network's ``predictions.csv`` written by ``evaluate.json``, matches its rows
to the scored records of the datalist by image path, refits the baselines of :mod:`.split_baselines` on the same
training folds and compares network vs each baseline on the studies both scored, with the cv table's paired tests
(:func:`~monai_bone.cv.comparisons.compare_pair`: patient-level paired bootstrap of R² / accuracy, DeLong for AUC).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_bone.tasks import get_task
from monai_bone.utils.numbers import is_finite_number

from .comparisons import compare_pair
from .split_baselines import baseline_predictions
from .variant_summary import FoldPrediction, VariantResult

__all__ = ["network_split_predictions", "paired_lines", "paired_vs_baselines"]

logger = logging.getLogger(__name__)

#: The comparison metrics the demo reports per task kind.
_REPORTED = {True: ("r2", "auc"), False: ("auc",)}


def _prediction_column(task: str, header: list[str]) -> str:
    """The column holding the network's prediction: hip ``pred_bmd``, knee the last class's probability."""
    if get_task(task).is_regression:
        return "pred_bmd"
    probs = [c for c in header if c.startswith("prob_")]
    if not probs:
        raise ValueError(f"no prob_* column in the predictions (columns {header})")
    return probs[-1]


def network_split_predictions(
    task: str, predictions_csv: str | os.PathLike, records: list[dict], datalist: str | os.PathLike
) -> np.ndarray:
    """The network's prediction for each of ``records`` (NaN where the CSV has no row for the record's image).

    Relative ``image`` paths in the CSV are read against the datalist's folder, as ``evaluate.json`` writes them.
    """
    path, base = Path(predictions_csv), Path(datalist).resolve().parent
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(line for line in f if not line.startswith("#"))
        column = _prediction_column(task, list(reader.fieldnames or []))
        by_image = {str((base / row["image"]).resolve()): row[column] for row in reader if row.get(column)}
    values = [by_image.get(str(Path(r["image"]).resolve())) for r in records]
    return np.array([float(v) if v not in (None, "") else np.nan for v in values], dtype=float)


def _variant(name: str, pred: np.ndarray, true: np.ndarray, ids: list[str]) -> VariantResult:
    return VariantResult(name, name, "network", folds=[FoldPrediction(0, pred, true, ids)])


def paired_vs_baselines(
    task: str,
    datalist: str | os.PathLike,
    predictions_csv: str | os.PathLike,
    val_fold: int | Sequence[int] = 0,
    seed: int = 0,
    n_boot: int = 1000,
    fitted: tuple | None = None,
) -> list[dict[str, Any]]:
    """Network vs each baseline on the evaluation split, paired by study.

    ``fitted`` is the result of :func:`~.split_baselines.baseline_predictions` for the same datalist, fold and seed
    when the caller already has it (the baselines are then not fitted again).

    Returns:
        Rows of :func:`~monai_bone.cv.comparisons.compare_pair` (``a`` = ``"network"``, ``b`` = the baseline's row
        name) for the metrics the demo reports: hip R² (paired patient bootstrap) and screening AUC (DeLong), knee AUC.
    """
    records, true, baselines, _ = fitted or baseline_predictions(task, datalist, val_fold, seed)
    net = network_split_predictions(task, predictions_csv, records, datalist)
    keep = np.isfinite(net)
    if not keep.any():
        logger.warning("%s: no prediction matches a scored record of %s: no paired rows", predictions_csv, datalist)
        return []
    ids = [str(r.get("patient_id", i)) for i, r in enumerate(records)]
    kept_ids = [i for i, k in zip(ids, keep) if k]
    network = _variant("network", net[keep], true[keep], kept_ids)
    wanted = _REPORTED[get_task(task).is_regression]
    rows = []
    for name, pred in baselines.items():
        base = _variant(name, np.asarray(pred, dtype=float)[keep], true[keep], kept_ids)
        rows += [r for r in compare_pair(task, network, base, n_boot=n_boot, seed=seed) if r["metric"] in wanted]
    return rows


def paired_lines(task: str, rows: Sequence[Mapping[str, Any]], split: Any, subject: str = "network") -> list[str]:
    """One line per baseline of :func:`paired_vs_baselines` rows: ``subject`` minus the baseline with its paired 95 %
    CI and p, on the same studies of ``split``."""
    lines = []
    for name in dict.fromkeys(r["b"] for r in rows):
        parts, n = [], ""
        for r in (r for r in rows if r["b"] == name):
            if not is_finite_number(r.get("diff")):
                continue
            low, high = (f"{r[k]:+.3f}" if is_finite_number(r.get(k)) else "n/a" for k in ("diff_low", "diff_high"))
            p = f"{r['p_value']:.3g}" if is_finite_number(r.get("p_value")) else "n/a"
            metric = r["metric"].upper().replace("R2", "R²")
            parts.append(f"Δ{metric} {r['diff']:+.3f} [{low}, {high}], p {p} ({r['test']})")
            n = f"n {r.get('n_studies')} studies / {r.get('n_patients')} patients"
        if parts:
            lines.append(f"{task} {subject} vs {name} on '{split}' ({n}, paired): " + "; ".join(parts))
    return lines
