"""T-score, WHO class and threshold screening metrics for BMD regression (hip).

T-score = (BMD - young-adult reference mean) / reference SD. The reference is configurable per DXA device and
site; the defaults (``constants.REFERENCE_MEAN`` / ``REFERENCE_SD``) put the paper's screening threshold
0.899 g/cm^2 exactly at T = -1. WHO classes: normal T >= -1, osteopenia -2.5 < T < -1, osteoporosis T <= -2.5.

Screening convention (XAttn-BMD paper): a study is screening-positive when its BMD is below the threshold. For ROC
analysis the score is the negated predicted BMD and the truth is "true BMD below the threshold"; precision, recall,
specificity and F1 use "predicted BMD below the threshold" as the decision.

Floating-point guard: ``(0.899 - 1.019) / 0.12`` evaluates to ``-1.0000000000000009`` and a float32 network output
of 0.899 is ``0.89899999``; without care a patient with BMD exactly at the threshold would be called osteopenic.
Class boundaries are therefore compared with a tolerance of ``BOUNDARY_TOL`` (1e-6, above float32 round-off and far
below any measurement precision), in T units for :func:`who_class` and in g/cm^2 for :func:`screening_positive`, so
that BMD 0.899 is normal and not screening-positive, consistently.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from monai_bone.constants import (
    REFERENCE_MEAN,
    REFERENCE_SD,
    SCREENING_THRESHOLD,
    T_OSTEOPOROSIS,
    T_SCREENING,
    WHO_CLASSES,
)

from .table import binary_rates, confusion_counts, safe_auc

__all__ = [
    "BOUNDARY_TOL",
    "bmd_from_t",
    "screening_metrics",
    "screening_positive",
    "t_score",
    "who_class",
    "who_class_index",
]

#: Tolerance used when comparing a value with a class boundary (see the module docstring).
BOUNDARY_TOL: float = 1e-6


def _check_reference(ref_mean: float, ref_sd: float) -> None:
    if not (math.isfinite(ref_mean) and math.isfinite(ref_sd)) or ref_sd <= 0:
        raise ValueError(f"T-score reference needs a finite mean and a positive SD, got mean={ref_mean}, sd={ref_sd}.")


def t_score(bmd: Any, ref_mean: float = REFERENCE_MEAN, ref_sd: float = REFERENCE_SD) -> Any:
    """T-score of a BMD value (g/cm^2) against a young-adult reference.

    Args:
        bmd: BMD in g/cm^2: a number, array-like or torch tensor.
        ref_mean: young-adult reference mean (g/cm^2) of the DXA device/site.
        ref_sd: young-adult reference SD (g/cm^2), positive.

    Returns:
        ``(bmd - ref_mean) / ref_sd``: a float for a scalar, a tensor for a tensor, else a numpy array.

    Raises:
        ValueError: when the reference is not finite or the SD is not positive.
    """
    _check_reference(ref_mean, ref_sd)
    if isinstance(bmd, torch.Tensor):
        return (bmd - ref_mean) / ref_sd
    out = (np.asarray(bmd, dtype=float) - ref_mean) / ref_sd
    return float(out) if out.ndim == 0 else out


def bmd_from_t(t: Any, ref_mean: float = REFERENCE_MEAN, ref_sd: float = REFERENCE_SD) -> Any:
    """BMD (g/cm^2) that corresponds to a T-score: ``ref_mean + t * ref_sd`` (inverse of :func:`t_score`).

    Args:
        t: T-score(s): a number, array-like or torch tensor.
        ref_mean: young-adult reference mean (g/cm^2).
        ref_sd: young-adult reference SD (g/cm^2), positive.

    Returns:
        A float for a scalar, a tensor for a tensor, else a numpy array.

    Raises:
        ValueError: when the reference is not finite or the SD is not positive.
    """
    _check_reference(ref_mean, ref_sd)
    if isinstance(t, torch.Tensor):
        return ref_mean + t * ref_sd
    out = ref_mean + np.asarray(t, dtype=float) * ref_sd
    return float(out) if out.ndim == 0 else out


def who_class_index(t: Any) -> Any:
    """WHO class index of T-score(s): 0 normal (T >= -1), 1 osteopenia, 2 osteoporosis (T <= -2.5).

    Args:
        t: T-score(s), a number, array-like or tensor.

    Returns:
        An int for a scalar, else an int numpy array of the same shape.

    Raises:
        ValueError: when a T-score is NaN or infinite.
    """
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu().numpy()
    arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"T-score must be finite to assign a WHO class, got {arr.tolist()}.")
    idx = np.where(arr >= T_SCREENING - BOUNDARY_TOL, 0, np.where(arr <= T_OSTEOPOROSIS + BOUNDARY_TOL, 2, 1))
    return int(idx) if idx.ndim == 0 else idx.astype(int)


def who_class(t: Any) -> Any:
    """WHO class name of T-score(s), from ``constants.WHO_CLASSES``.

    normal: T >= -1; osteopenia: -2.5 < T < -1; osteoporosis: T <= -2.5 (T = -1 is normal, T = -2.5 osteoporosis).

    Args:
        t: T-score(s), a number, array-like or tensor.

    Returns:
        The class name for a scalar, else a list of names (flattened).

    Raises:
        ValueError: when a T-score is NaN or infinite.
    """
    idx = who_class_index(t)
    if isinstance(idx, int):
        return WHO_CLASSES[idx]
    return [WHO_CLASSES[i] for i in np.asarray(idx).reshape(-1)]


def screening_positive(bmd: Any, threshold: float = SCREENING_THRESHOLD, inclusive: bool = False) -> np.ndarray:
    """Screening decision: BMD below the threshold (``<`` by default, ``<=`` when ``inclusive``).

    Use ``inclusive=True`` for thresholds that are themselves inside the positive class, e.g. T = -2.5 (WHO
    osteoporosis is T <= -2.5); the default strict rule matches "normal T >= -1" at 0.899 g/cm^2.

    Args:
        bmd: BMD values (g/cm^2), array-like or tensor.
        threshold: BMD threshold (g/cm^2).
        inclusive: whether a value equal to the threshold is positive.

    Returns:
        A boolean numpy array, flattened to ``(N,)``.
    """
    if isinstance(bmd, torch.Tensor):
        bmd = bmd.detach().cpu().numpy()
    arr = np.asarray(bmd, dtype=float).reshape(-1)
    if inclusive:
        return arr <= threshold + BOUNDARY_TOL
    return arr < threshold - BOUNDARY_TOL


def _as_vector(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; drop studies without a value first.")
    return arr


def screening_metrics(
    pred_bmd: Any, true_bmd: Any, threshold: float = SCREENING_THRESHOLD, inclusive: bool = False
) -> dict[str, Any]:
    """Threshold screening metrics of predicted BMD against true (DXA) BMD.

    Positive truth: true BMD below ``threshold``; positive decision: predicted BMD below ``threshold``; ROC score:
    ``-pred_bmd`` (lower predicted BMD = higher risk).

    Args:
        pred_bmd: predicted BMD (g/cm^2), ``(N,)`` or ``(N, 1)``.
        true_bmd: reference BMD (g/cm^2), same length.
        threshold: BMD threshold (g/cm^2); default the paper's 0.899 (T = -1).
        inclusive: count a value equal to the threshold as positive (use for T = -2.5, see
            :func:`screening_positive`).

    Returns:
        ``{"threshold", "inclusive", "n", "n_positive", "tp", "fp", "tn", "fn", "auc", "precision", "recall",
        "sensitivity", "specificity", "f1", "accuracy", "fpr"}``; undefined values (no positives, one class) are NaN.

    Raises:
        ValueError: on empty input, mismatched lengths, or non-finite values.
    """
    pred = _as_vector(pred_bmd, "pred_bmd")
    true = _as_vector(true_bmd, "true_bmd")
    if pred.shape != true.shape:
        raise ValueError(f"pred_bmd and true_bmd differ in length: {pred.shape[0]} vs {true.shape[0]}.")
    if pred.size == 0:
        raise ValueError("screening_metrics needs at least one study, got none.")
    true_pos = screening_positive(true, threshold, inclusive)
    pred_pos = screening_positive(pred, threshold, inclusive)
    counts = confusion_counts(pred_pos, true_pos)
    rates = binary_rates(**counts)
    return {
        "threshold": float(threshold),
        "inclusive": bool(inclusive),
        "n": int(pred.size),
        "n_positive": int(true_pos.sum()),
        **counts,
        "auc": safe_auc(true_pos, -pred),
        "precision": rates["precision"],
        "recall": rates["sensitivity"],
        "sensitivity": rates["sensitivity"],
        "specificity": rates["specificity"],
        "f1": rates["f1"],
        "accuracy": rates["accuracy"],
        "fpr": rates["fpr"],
    }
