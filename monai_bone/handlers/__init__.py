"""Ignite handlers: bone-health metrics, evaluation reports and inference writers (bundle-config friendly)."""

from .freeze import FreezeBackbone
from .history import HISTORY_FORMAT, TrainingHistory
from .metrics import R2, ClassificationTableMetric, ScreeningAUC, ScreeningMetric, as_batch_matrix
from .prediction_writer import BonePredictionWriter
from .report import BoneReportWriter, StudyRowHandler, gather_rows, json_safe

__all__ = [
    "HISTORY_FORMAT",
    "R2",
    "BonePredictionWriter",
    "BoneReportWriter",
    "ClassificationTableMetric",
    "FreezeBackbone",
    "ScreeningAUC",
    "ScreeningMetric",
    "StudyRowHandler",
    "TrainingHistory",
    "as_batch_matrix",
    "gather_rows",
    "json_safe",
]
