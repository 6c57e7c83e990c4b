"""Regression metrics for BMD estimation: MSE, MAE, RMSE, R^2, Pearson r, Bland-Altman agreement, bootstrap CIs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .paired import group_bootstrap_indices
from .screening import _as_vector

__all__ = ["bland_altman", "bootstrap_ci", "regression_metrics"]


def _pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _as_vector(pred, "pred"), _as_vector(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length: {p.shape[0]} vs {t.shape[0]}.")
    if p.size == 0:
        raise ValueError("regression metrics need at least one study, got none.")
    return p, t


def regression_metrics(pred: Any, true: Any) -> dict[str, float]:
    """Agreement of predicted with true values (e.g. BMD in g/cm^2).

    Args:
        pred: predictions, ``(N,)`` or ``(N, 1)``; array-like or tensor.
        true: reference values, same length.

    Returns:
        ``{"n", "mse", "mae", "rmse", "r2", "pearson_r", "bias"}`` where ``r2 = 1 - SS_res / SS_tot`` (coefficient of
        determination, as ``sklearn.metrics.r2_score``; NaN when the truth is constant), ``pearson_r`` the
        correlation (NaN when either side is constant) and ``bias = mean(pred - true)``.

    Raises:
        ValueError: on empty input, mismatched lengths, bad shapes or non-finite values.
    """
    p, t = _pair(pred, true)
    err = p - t
    mse = float(np.mean(err**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    sp, st = float(np.std(p)), float(np.std(t))
    pearson = float(np.mean((p - p.mean()) * (t - t.mean())) / (sp * st)) if sp > 0 and st > 0 else float("nan")
    return {
        "n": int(p.size),
        "mse": mse,
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(mse)),
        "r2": r2,
        "pearson_r": pearson,
        "bias": float(np.mean(err)),
    }


def bland_altman(pred: Any, true: Any, limits: float = 1.96) -> dict[str, float]:
    """Bland-Altman agreement statistics of ``pred - true``.

    Args:
        pred: predictions (method under test), ``(N,)`` or ``(N, 1)``.
        true: reference method (DXA), same length.
        limits: half-width of the limits of agreement in SDs of the differences (1.96 for 95 %).

    Returns:
        ``{"n", "bias", "sd", "loa_lower", "loa_upper", "limits"}``: mean difference, its sample SD (``ddof=1``;
        NaN for a single study) and ``bias -/+ limits * sd``.

    Raises:
        ValueError: on empty input, mismatched lengths, bad shapes or non-finite values.
    """
    p, t = _pair(pred, true)
    diff = p - t
    bias = float(np.mean(diff))
    sd = float(np.std(diff, ddof=1)) if diff.size > 1 else float("nan")
    return {
        "n": int(diff.size),
        "bias": bias,
        "sd": sd,
        "loa_lower": bias - limits * sd,
        "loa_upper": bias + limits * sd,
        "limits": float(limits),
    }


def bootstrap_ci(
    fn: Callable[..., float],
    *arrays: Any,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Percentile bootstrap confidence interval of a statistic of paired samples.

    The same resampled study indices are applied to every array (paired bootstrap). Resamples where ``fn`` returns
    NaN (e.g. AUC of a resample holding one class only) are skipped and counted.

    Args:
        fn: statistic, called as ``fn(*resampled_arrays)`` and returning a float.
        arrays: arrays with the same first dimension ``N`` (studies).
        n_boot: number of bootstrap resamples (> 0).
        level: confidence level in (0, 1), e.g. 0.95.
        seed: seed of the numpy generator (results are reproducible).
        groups: patient id per study: resample patients (every study of a drawn patient), not studies
            (:func:`monai_bone.metrics.paired.group_bootstrap_indices`); ``None`` resamples studies.

    Returns:
        ``{"value": fn(*arrays), "low", "high", "level", "n_boot", "n_valid"}``; ``low``/``high`` are NaN when no
        resample gave a finite value.

    Raises:
        ValueError: when no arrays are given, lengths differ, ``n_boot < 1`` or ``level`` is outside (0, 1).
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array.")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    arrs = [np.asarray(a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a) for a in arrays]
    n = arrs[0].shape[0]
    if any(a.shape[0] != n for a in arrs):
        raise ValueError(f"arrays differ in length: {[a.shape[0] for a in arrs]}.")
    stats = np.empty(n_boot, dtype=float)
    for b, idx in enumerate(group_bootstrap_indices(groups, n, n_boot, seed)):
        stats[b] = float(fn(*(a[idx] for a in arrs)))
    valid = stats[np.isfinite(stats)]
    alpha = (1.0 - level) / 2.0
    low, high = (
        (float(np.quantile(valid, alpha)), float(np.quantile(valid, 1.0 - alpha))) if valid.size else (np.nan, np.nan)
    )
    return {
        "value": float(fn(*arrs)),
        "low": float(low),
        "high": float(high),
        "level": float(level),
        "n_boot": int(n_boot),
        "n_valid": int(valid.size),
    }
