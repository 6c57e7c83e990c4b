"""Cross-validation ablations: OST and clinical-only baselines, bundle-trained networks, the ablation table.

The networks are trained by the bundles' own workflows (:mod:`monai_bone.bundle.workflow`).
"""

from __future__ import annotations

from .baselines import BASELINE_MODELS, ClinicalBaseline, OSTBaseline, clinical_matrix, ost_index
from .folds import cv_splits, find_cohort_info, resolve_datalist
from .rows import HIP_BASELINES, HIP_FUSIONS, KNEE_VARIANTS
from .runner import CVResult, run_cv
from .table import write_ablation_table
from .variant_summary import FoldPrediction, VariantResult, summarise_variant

__all__ = [
    "BASELINE_MODELS",
    "HIP_BASELINES",
    "HIP_FUSIONS",
    "KNEE_VARIANTS",
    "CVResult",
    "ClinicalBaseline",
    "FoldPrediction",
    "OSTBaseline",
    "VariantResult",
    "clinical_matrix",
    "cv_splits",
    "find_cohort_info",
    "ost_index",
    "resolve_datalist",
    "run_cv",
    "summarise_variant",
    "write_ablation_table",
]
