"""The rows of a CV ablation: out-of-fold predictions per variant and their summary (per-fold and pooled metrics).

A variant (baseline or network) contributes, for each fold, the predictions of the model trained without that fold
on the studies of that fold (:class:`FoldPrediction`, collected in a :class:`VariantResult`).
:func:`summarise_variant` turns them into one table row: the metrics of each fold and their mean ± sample SD, and the
metric of the pooled out-of-fold predictions with a patient-level percentile bootstrap 95 % CI
(:func:`monai_bone.metrics.bootstrap_ci` with ``groups``). :mod:`.table` writes the rows out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monai_bone.metrics import bootstrap_ci, classification_table, regression_metrics, screening_metrics
from monai_bone.tasks import TaskSpec, get_task, task_names

__all__ = [
    "HIP_METRICS",
    "KNEE_METRICS",
    "FoldPrediction",
    "VariantResult",
    "fold_metric_values",
    "metrics_of",
    "summarise_variant",
    "task_spec",
]

#: Hip columns: (key, label, lower-is-better). Regression vs DXA BMD plus screening at the 0.899 g/cm^2 threshold.
HIP_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("mse", "MSE (g/cm²)²", True),
    ("mae", "MAE g/cm²", True),
    ("r2", "R²", False),
    ("auc", "ROC-AUC", False),
    ("precision", "Precision", False),
    ("recall", "Recall", False),
    ("f1", "F1", False),
)
#: Knee columns: the paper's Table I set (Table II definitions) plus ROC-AUC.
KNEE_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("sensitivity", "Sensitivity", False),
    ("specificity", "Specificity", False),
    ("precision", "Precision", False),
    ("fpr", "FPR", True),
    ("accuracy", "Accuracy", False),
    ("f1", "F1", False),
    ("loss", "Loss (BCE)", True),
    ("auc", "ROC-AUC", False),
)


@dataclass
class FoldPrediction:
    """Out-of-fold predictions of one variant on one held-out fold.

    Args:
        fold: the CV fold index (0-based).
        pred: predictions, ``(N,)`` (hip: BMD g/cm²; knee: probability of osteoporosis).
        true: reference values, ``(N,)`` (hip: DXA BMD; knee: class index 0/1).
        ids: study identifiers (pseudonymous patient IDs) in the same order.
    """

    fold: int
    pred: np.ndarray
    true: np.ndarray
    ids: list[str] = field(default_factory=list)


@dataclass
class VariantResult:
    """All folds of one row of the ablation table.

    Args:
        name: short machine name (``"xattn"``, ``"ost"``, ...).
        label: human-readable row label.
        kind: ``"baseline"`` (no image; scikit-learn / formula) or ``"network"``.
        loss: training loss of networks (``"WeightedSmoothL1"``, ``"SmoothL1"``, ``"BCEWithLogits"``), ``"-"`` for
            baselines.
        folds: the fold predictions.
    """

    name: str
    label: str
    kind: str
    loss: str = "-"
    folds: list[FoldPrediction] = field(default_factory=list)


def task_spec(task: str) -> TaskSpec:
    """The registered task ``task`` (``ValueError`` "task must be one of ..." otherwise)."""
    if task not in task_names():
        raise ValueError(f"task must be one of {list(task_names())}, got {task!r}")
    return get_task(task)


def _metric_fn(task: str) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    spec = task_spec(task)
    if spec.is_regression:

        def hip(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
            reg = regression_metrics(pred, true)
            scr = screening_metrics(pred, true, threshold=spec.screening_threshold)
            out = {k: reg[k] for k in ("mse", "mae", "r2")}
            out.update({k: scr[k] for k in ("auc", "precision", "recall", "f1")})
            return out

        return hip

    def knee(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
        tab = classification_table(np.clip(pred, 0.0, 1.0), true.astype(int))
        return {k: float(tab[k]) for k, _, _ in KNEE_METRICS}

    return knee


def metrics_of(task: str) -> tuple[tuple[str, str, bool], ...]:
    return HIP_METRICS if task_spec(task).is_regression else KNEE_METRICS


def fold_metric_values(task: str, result: VariantResult) -> list[dict[str, Any]]:
    """Metrics of each fold of ``result`` (one dict per fold, with ``fold`` and ``n``)."""
    fn = _metric_fn(task)
    return [{"fold": f.fold, "n": int(len(f.true)), **fn(f.pred, f.true)} for f in result.folds]


def _nan_stats(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else math.nan


def summarise_variant(
    task: str, result: VariantResult, n_boot: int = 1000, seed: int = 0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Mean ± sd over folds and the pooled out-of-fold metric with a bootstrap CI, for each metric.

    Args:
        task: ``"hip"`` or ``"knee"``.
        result: the variant's fold predictions.
        n_boot: bootstrap resamples of the pooled predictions.
        seed: bootstrap seed (the same for every variant, so CIs are paired across rows).

    Returns:
        ``(row, per_fold)``: the ablation-table row (``{metric}_mean``, ``_sd``, ``_pooled``, ``_ci_low``,
        ``_ci_high``) and the per-fold metric dicts.

    Raises:
        ValueError: when the variant has no fold predictions.
    """
    if not result.folds:
        raise ValueError(f"variant {result.name!r} has no fold predictions")
    fn = _metric_fn(task)
    per_fold = fold_metric_values(task, result)
    pred = np.concatenate([np.asarray(f.pred, dtype=float).reshape(-1) for f in result.folds])
    true = np.concatenate([np.asarray(f.true, dtype=float).reshape(-1) for f in result.folds])
    pooled = fn(pred, true)
    row: dict[str, Any] = {
        "variant": result.name,
        "label": result.label,
        "kind": result.kind,
        "loss": result.loss,
        "n_folds": len(result.folds),
        "n_pooled": int(pred.size),
    }
    # one metric evaluation per resample, shared by all metrics: bootstrap_ci draws the same indices for the same
    # seed, and the resampled index vector identifies the resample
    cache: dict[bytes, dict[str, float]] = {}

    def resample_metrics(p: np.ndarray, t: np.ndarray, idx: np.ndarray) -> dict[str, float]:
        k = idx.tobytes()
        if k not in cache:
            try:
                cache[k] = fn(p, t)
            except ValueError:  # e.g. a resample with constant truth
                cache[k] = {}
        return cache[k]

    index = np.arange(pred.size)
    ids = [str(i) for f in result.folds for i in (f.ids if len(f.ids) == len(f.true) else [])]
    groups = ids if len(ids) == pred.size and all(ids) else None
    row.update(
        {
            "split": "train folds (out-of-fold)",
            "n_studies": int(pred.size),
            "n_patients": len(set(ids)) if groups is not None else int(pred.size),
            "selected_on_split": False,
        }
    )
    for key, _, _ in metrics_of(task):
        mean, sd = _nan_stats([m[key] for m in per_fold])
        ci = bootstrap_ci(
            lambda p, t, i, key=key: float(resample_metrics(p, t, i).get(key, math.nan)),
            pred,
            true,
            index,
            n_boot=n_boot,
            seed=seed,
            groups=groups,
        )
        row.update(
            {
                f"{key}_mean": mean,
                f"{key}_sd": sd,
                f"{key}_pooled": float(pooled[key]),
                f"{key}_ci_low": ci["low"],
                f"{key}_ci_high": ci["high"],
            }
        )
    return row, per_fold
