"""Engine glue for the monai-bone bundles: devices, GPU fast path, DDP, determinism.

The bundles run MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` with MONAI handlers; this package holds the
few engine-level pieces their configs call that MONAI does not provide. Ignite handlers (checkpoint save/load,
Grad-CAM, field attention, epoch seeding) live in :mod:`monai_bone.handlers`; datasets, collation, folds, the datalist
reader and the inference input in :mod:`monai_bone.data`; the clinical statistics in :mod:`monai_bone.transforms`.
Their old ``monai_bone.engines.X`` names still resolve for one release (deprecated, see :func:`__getattr__`), so
configs of bundles trained before 0.2 keep loading.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from monai_bone.utils.options import as_bool

from .determinism import epoch_seed, set_deterministic
from .device import amp_enabled, select_device
from .distributed import (
    cleanup_distributed,
    distributed_device,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    wrap_ddp,
)
from .fast_path import AMP_DTYPES, FastPath, PrepareBatchPlainTensor, bf16_supported, select_fast_path

__all__ = [
    "AMP_DTYPES",
    "FastPath",
    "PrepareBatchPlainTensor",
    "amp_enabled",
    "as_bool",
    "bf16_supported",
    "cleanup_distributed",
    "distributed_device",
    "epoch_seed",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "select_device",
    "select_fast_path",
    "set_deterministic",
    "wrap_ddp",
]


# --- deprecated aliases: handlers moved to monai_bone.handlers (lane handlers; keep this block contiguous) ----------
#: Names that moved out of ``monai_bone.engines``: old name -> new module. Bundle configs written for 0.1 still
#: resolve ``monai_bone.engines.<name>`` through :func:`__getattr__`, with a ``DeprecationWarning``.
_MOVED_TO: dict[str, str] = {
    "CheckpointFileError": "monai_bone.handlers",
    "SafeCheckpointLoader": "monai_bone.handlers",
    "atomic_torch_save": "monai_bone.handlers",
    "checkpoint_epoch": "monai_bone.handlers",
    "find_last_checkpoint": "monai_bone.handlers",
    "load_checkpoint": "monai_bone.handlers",
    "resume_checkpoint": "monai_bone.handlers",
    "ResumableCheckpointSaver": "monai_bone.handlers",
    "EpochSeedHandler": "monai_bone.handlers",
    "FieldAttentionHandler": "monai_bone.handlers",
    "GradCamSaver": "monai_bone.handlers",
    # data concerns moved to monai_bone.data, the clinical statistics to monai_bone.transforms (lane ingest)
    "CACHE_MODES": "monai_bone.data.datasets",
    "make_dataset": "monai_bone.data.datasets",
    "collate_records": "monai_bone.data.collate",
    "class_names": "monai_bone.data.folds",
    "datalist_info": "monai_bone.data.folds",
    "default_eval_part": "monai_bone.data.folds",
    "fold_records": "monai_bone.data.folds",
    "has_test_split": "monai_bone.data.folds",
    "has_value": "monai_bone.data.folds",
    "load_records": "monai_bone.data.folds",
    "split_folds": "monai_bone.data.folds",
    "split_summary": "monai_bone.data.folds",
    "target_stats": "monai_bone.data.folds",
    "IMAGE_SUFFIXES": "monai_bone.data.image_formats",
    "inference_records": "monai_bone.data.inference",
    "prepare_inference_datalist": "monai_bone.data.inference",
    "fit_clinical_stats": "monai_bone.transforms.clinical_fit",
    "load_clinical_stats": "monai_bone.transforms.clinical_fit",
}


def __getattr__(name: str) -> Any:
    """Deprecated aliases: ``monai_bone.engines.<name>`` of a name that moved (see ``_MOVED_TO``)."""
    target = _MOVED_TO.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"monai_bone.engines.{name} moved to {target}.{name}; the old path goes in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    # imported here, not at the top: the new homes are not engine-level (handlers import engines)
    return getattr(importlib.import_module(target), name)


# --- end of the moved-name aliases --------------------------------------------------------------------------------
