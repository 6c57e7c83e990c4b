"""Ignite handlers: bone-health metrics, evaluation reports and inference writers (bundle-config friendly)."""

from .metrics import R2, ClassificationTableMetric, ScreeningAUC, ScreeningMetric, as_batch_matrix
from .prediction_writer import BonePredictionWriter
from .report import BoneReportWriter, StudyRowHandler, gather_rows, json_safe

__all__ = [
    "R2",
    "BonePredictionWriter",
    "BoneReportWriter",
    "ClassificationTableMetric",
    "ScreeningAUC",
    "ScreeningMetric",
    "StudyRowHandler",
    "as_batch_matrix",
    "gather_rows",
    "json_safe",
]
