"""Bone-health metrics: T-score / WHO class, hip screening and regression metrics, knee Table I set, plots."""

from .paired import delong_auc_variance, delong_test, group_bootstrap_indices, paired_bootstrap, relative_change
from .plots import plot_bland_altman, plot_calibration, plot_confusion_matrix, plot_pred_vs_true, plot_roc
from .regression import bland_altman, bootstrap_ci, regression_metrics
from .screening import (
    BOUNDARY_TOL,
    bmd_from_t,
    screening_metrics,
    screening_positive,
    t_score,
    who_class,
    who_class_index,
)
from .table import (
    RATE_NAMES,
    binary_rates,
    classification_table,
    confusion_counts,
    resolve_class_names,
    safe_auc,
    to_probability,
)

__all__ = [
    "BOUNDARY_TOL",
    "RATE_NAMES",
    "binary_rates",
    "bland_altman",
    "bmd_from_t",
    "bootstrap_ci",
    "classification_table",
    "confusion_counts",
    "delong_auc_variance",
    "delong_test",
    "group_bootstrap_indices",
    "paired_bootstrap",
    "plot_bland_altman",
    "plot_calibration",
    "plot_confusion_matrix",
    "plot_pred_vs_true",
    "plot_roc",
    "regression_metrics",
    "relative_change",
    "resolve_class_names",
    "safe_auc",
    "screening_metrics",
    "screening_positive",
    "t_score",
    "to_probability",
    "who_class",
    "who_class_index",
]
