"""The PNG plots of the evaluation report (drawn by :class:`~monai_bone.handlers.BoneReportWriter`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from monai_bone.constants import WHO_CLASSES
from monai_bone.metrics.plots import (
    plot_bland_altman,
    plot_calibration,
    plot_confusion_matrix,
    plot_pred_vs_true,
    plot_roc,
)
from monai_bone.metrics.screening import screening_positive

__all__ = ["hip_plots", "knee_plots"]

PathFn = Callable[[str], Path]


def hip_plots(
    p: np.ndarray,
    t: np.ndarray,
    who_cm: Sequence[Sequence[int]],
    screening_threshold: float,
    t_osteoporosis: float,
    osteoporosis_threshold: float,
    path: PathFn,
    synthetic: bool,
) -> dict[str, str]:
    """ROC (both screening rules), predicted vs DXA, Bland–Altman, WHO confusion matrix and calibration plots."""
    curves = {
        f"BMD < {screening_threshold:.3f}": (-p, screening_positive(t, screening_threshold)),
        f"T <= {t_osteoporosis:g} ({osteoporosis_threshold:.3f})": (
            -p,
            screening_positive(t, osteoporosis_threshold, True),
        ),
    }
    thresholds = {"screening": screening_threshold, f"T {t_osteoporosis:g}": osteoporosis_threshold}
    return {
        "roc": plot_roc(curves, path("roc.png"), "Hip BMD screening ROC", synthetic).name,
        "pred_vs_true": plot_pred_vs_true(
            p, t, path("pred_vs_true.png"), thresholds, "Predicted vs DXA BMD", synthetic=synthetic
        ).name,
        "bland_altman": plot_bland_altman(
            p, t, path("bland_altman.png"), title="Bland-Altman: predicted - DXA BMD", synthetic=synthetic
        ).name,
        "confusion_matrix": plot_confusion_matrix(
            np.asarray(who_cm), WHO_CLASSES, path("confusion_matrix.png"), "WHO class (from predicted BMD)", synthetic
        ).name,
        "calibration": plot_calibration(
            p,
            t,
            path("calibration.png"),
            n_bins=min(10, max(2, p.size // 5)),
            strategy="quantile",
            xlabel="Predicted BMD (g/cm²), bin mean",
            ylabel="DXA BMD (g/cm²), bin mean",
            title="BMD calibration",
            synthetic=synthetic,
        ).name,
    }


def knee_plots(
    probs: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    pos: int,
    confusion_matrix: Sequence[Sequence[int]],
    path: PathFn,
    synthetic: bool,
) -> dict[str, str]:
    """ROC (positive vs rest, or every class vs rest), confusion matrix and calibration plots."""
    if len(names) == 2:
        curves = {f"{names[pos]} vs rest": (probs[:, pos], y == pos)}
    else:
        curves = {f"{n} vs rest": (probs[:, c], y == c) for c, n in enumerate(names)}
    return {
        "roc": plot_roc(curves, path("roc.png"), "Knee osteoporosis ROC", synthetic).name,
        "confusion_matrix": plot_confusion_matrix(
            confusion_matrix, names, path("confusion_matrix.png"), "Knee confusion matrix", synthetic
        ).name,
        "calibration": plot_calibration(
            probs[:, pos],
            (y == pos).astype(float),
            path("calibration.png"),
            n_bins=min(10, max(2, y.size // 5)),
            xlabel=f"Predicted probability of {names[pos]}",
            ylabel=f"Observed fraction {names[pos]}",
            title="Knee calibration",
            synthetic=synthetic,
        ).name,
    }
