"""monai_bone.data: ingestion — sources (DICOM folders, image folders, DICOMweb), the X-ray reader, DICOM headers,
clinical records, the index (``monai-bone index``), folds and the datalist format, datasets and collation.

The synthetic cohort generator lives in :mod:`monai_bone.synthetic`.

The names below load their module on first use (PEP 562), so that ``import monai_bone.data.dicom_header`` (the
index's header scan) does not import torch and MONAI.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CACHE_MODES": "datasets",
    "make_dataset": "datasets",
    "collate_records": "collate",
    "class_names": "folds",
    "datalist_info": "folds",
    "default_eval_part": "folds",
    "fold_records": "folds",
    "has_test_split": "folds",
    "has_value": "folds",
    "load_records": "folds",
    "split_folds": "folds",
    "split_summary": "folds",
    "target_stats": "folds",
    "inference_records": "inference",
    "prepare_inference_datalist": "inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Load ``name`` from its module on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
