"""Ignite handlers: bone-health metrics, checkpoint save/load, explanations (Grad-CAM, field attention), evaluation
reports and inference writers (bundle-config friendly)."""

from monai_bone.utils.jsonsafe import json_safe  # re-exported: the one sanitiser lives in utils

from .checkpoint import (
    CheckpointFileError,
    SafeCheckpointLoader,
    atomic_torch_save,
    checkpoint_epoch,
    find_last_checkpoint,
    load_checkpoint,
    require_checkpoint,
    resume_checkpoint,
)
from .checkpoint_saver import ResumableCheckpointSaver
from .epoch_seed import EpochSeedHandler
from .explain import FieldAttentionHandler, GradCamSaver
from .freeze import FreezeBackbone
from .history import HISTORY_FORMAT, TrainingHistory
from .linear_probe import LinearProbeStart
from .metrics import R2, ClassificationTableMetric, ScreeningAUC, ScreeningMetric, as_batch_matrix
from .prediction_writer import BonePredictionWriter
from .report import OPTIMISTIC_LINE, BoneReportWriter
from .study_rows import StudyRowHandler, gather_rows, row_fieldnames

__all__ = [
    "CheckpointFileError",
    "EpochSeedHandler",
    "FieldAttentionHandler",
    "GradCamSaver",
    "LinearProbeStart",
    "ResumableCheckpointSaver",
    "SafeCheckpointLoader",
    "atomic_torch_save",
    "checkpoint_epoch",
    "find_last_checkpoint",
    "load_checkpoint",
    "require_checkpoint",
    "resume_checkpoint",
    "HISTORY_FORMAT",
    "OPTIMISTIC_LINE",
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
    "row_fieldnames",
]
