"""Baselines scored on the same split as a bundle's evaluation (the demo's comparison rows).

The network of a bundle run trains on every fold but ``val_fold`` (and picks its best epoch on ``val_fold``) and is
then scored by ``evaluate.json`` on the locked test split when the datalist has one. :func:`score_baselines` fits the
baselines on exactly those training records and scores them on the same split, so the rows compare like with like:

- hip: OST index (line fitted on the training records), clinical-only ridge, and the trivial image baseline (ridge on
  image statistics + clinical fields, :mod:`.image_stats`);
- knee: the trivial image baseline (logistic regression on image statistics).

No baseline chooses anything on the scored split (``selected_on_split`` is False for them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from monai_bone.data.folds import default_eval_part, fold_records, split_summary
from monai_bone.metrics import classification_table, regression_metrics, screening_metrics
from monai_bone.tasks import get_task

from .baselines import ClinicalBaseline, OSTBaseline
from .image_stats import ImageStatsBaseline

__all__ = ["TRIVIAL_LABEL", "baseline_predictions", "score_baselines"]

#: Row label of the trivial image baseline in the demo table.
TRIVIAL_LABEL: str = "trivial image statistics"


def baseline_predictions(
    task: str, datalist: str | os.PathLike, val_fold: int | Sequence[int] = 0, seed: int = 0
) -> tuple[list[dict], np.ndarray, dict[str, np.ndarray], int]:
    """Fit the task's baselines on the training folds (all but ``val_fold``) and predict the evaluation split.

    Returns:
        ``(scored records, reference, {row name: predictions}, n training records)``: hip references are BMD,
        knee references 0/1 (the last class vs the rest) and predictions its probability.
    """
    spec = get_task(task)
    target = spec.label_key
    part = default_eval_part(datalist)
    train = fold_records(datalist, val_fold, "train", require=target)
    scored = fold_records(datalist, val_fold, part, require=target)
    if spec.is_regression:
        y, t = np.array([r[target] for r in train], float), np.array([r[target] for r in scored], float)
        models = {
            "OST index": OSTBaseline(),
            "clinical-only ridge": ClinicalBaseline("ridge", seed=seed),
            f"{TRIVIAL_LABEL} + clinical ridge": ImageStatsBaseline(task, seed=seed),
        }
    else:
        top = max(int(r[target]) for r in train + scored)
        y = np.array([float(int(r[target]) == top) for r in train])
        t = np.array([float(int(r[target]) == top) for r in scored])
        models = {f"{TRIVIAL_LABEL} logistic": ImageStatsBaseline(task, seed=seed)}
    preds = {name: np.asarray(model.fit(train, y).predict(scored), dtype=float) for name, model in models.items()}
    return scored, t, preds, len(train)


def score_baselines(
    task: str,
    datalist: str | os.PathLike,
    val_fold: int | Sequence[int] = 0,
    seed: int = 0,
    fitted: tuple | None = None,
) -> dict[str, Any]:
    """Fit the task's baselines on the training folds (all but ``val_fold``) and score them on the evaluation split.

    Args:
        task: ``"hip"`` or ``"knee"``.
        datalist: datalist JSON.
        val_fold: the bundle run's validation fold (excluded from the baselines' training records too).
        seed: random state of the models.
        fitted: the result of :func:`baseline_predictions` for these arguments, when the caller already has it.

    Returns:
        ``{"split", "n_studies", "n_patients", "rows": {name: metrics}}`` where hip metrics are ``mse``, ``mae``,
        ``r2``, ``auc`` (screening at 0.899 g/cm²) and knee metrics the Table I set with ``auc``.
    """
    spec = get_task(task)
    scored, t, preds, n_train = fitted or baseline_predictions(task, datalist, val_fold, seed)
    rows: dict[str, dict[str, float]] = {}
    for name, pred in preds.items():
        if spec.is_regression:
            reg, scr = regression_metrics(pred, t), screening_metrics(pred, t, spec.screening_threshold)
            rows[name] = {"mse": reg["mse"], "mae": reg["mae"], "r2": reg["r2"], "auc": scr["auc"]}
        else:
            tab = classification_table(np.clip(pred, 0.0, 1.0), t.astype(int))
            rows[name] = {k: float(tab[k]) for k in ("auc", "accuracy", "sensitivity", "specificity", "f1")}
    part = default_eval_part(datalist)
    return {**split_summary(scored, part, selected_on_split=False), "n_train": n_train, "rows": rows}
