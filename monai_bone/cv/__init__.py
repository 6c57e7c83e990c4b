"""Cross-validation ablations: OST and clinical-only baselines, bundle-trained networks, the ablation table."""

from __future__ import annotations

from monai_bone.bundle.workflow import (
    PredictionCollector,
    bundle_workflow,
    default_bundle_dir,
    no_checkpoint_overrides,
    quiet_engines,
    train_and_predict,
)

from .baselines import BASELINE_MODELS, ClinicalBaseline, OSTBaseline, clinical_matrix, ost_index
from .runner import (
    HIP_BASELINES,
    HIP_FUSIONS,
    KNEE_VARIANTS,
    CVResult,
    cv_splits,
    find_cohort_info,
    resolve_datalist,
    run_cv,
)
from .table import FoldPrediction, VariantResult, summarise_variant, write_ablation_table

__all__ = [
    "BASELINE_MODELS",
    "HIP_BASELINES",
    "HIP_FUSIONS",
    "KNEE_VARIANTS",
    "CVResult",
    "ClinicalBaseline",
    "FoldPrediction",
    "OSTBaseline",
    "PredictionCollector",
    "VariantResult",
    "bundle_workflow",
    "clinical_matrix",
    "cv_splits",
    "default_bundle_dir",
    "find_cohort_info",
    "no_checkpoint_overrides",
    "ost_index",
    "quiet_engines",
    "resolve_datalist",
    "run_cv",
    "summarise_variant",
    "train_and_predict",
    "write_ablation_table",
]
