"""Engine glue for the monai-bone bundles: resume, devices, GPU fast path, DDP, determinism.

The bundles run MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` with MONAI handlers; this package holds the
few pieces their configs call that MONAI does not provide.
"""

from __future__ import annotations

import importlib
import warnings

from .checkpoint import (
    CheckpointFileError,
    SafeCheckpointLoader,
    atomic_torch_save,
    checkpoint_epoch,
    find_last_checkpoint,
    load_checkpoint,
    resume_checkpoint,
)
from .determinism import EpochSeedHandler, epoch_seed, set_deterministic
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
from .explain import FieldAttentionHandler, GradCamSaver
from .fast_path import AMP_DTYPES, FastPath, PrepareBatchPlainTensor, bf16_supported, select_fast_path
from .handlers import ResumableCheckpointSaver
from .options import as_bool

#: Names that moved out of ``monai_bone.engines`` (data concerns went to ``monai_bone.data``, the clinical
#: statistics to ``monai_bone.transforms``): old name -> new module. Bundle configs written for 0.1 still resolve
#: ``monai_bone.engines.<name>`` through :func:`__getattr__`, with a ``DeprecationWarning``.
_MOVED_TO = {
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


def __getattr__(name: str):
    """Deprecated aliases: ``monai_bone.engines.<name>`` of a name that moved (see ``_MOVED_TO``)."""
    target = _MOVED_TO.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"monai_bone.engines.{name} moved to {target}.{name}; the old path goes in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(target), name)


__all__ = [
    "AMP_DTYPES",
    "CheckpointFileError",
    "EpochSeedHandler",
    "FastPath",
    "FieldAttentionHandler",
    "GradCamSaver",
    "PrepareBatchPlainTensor",
    "ResumableCheckpointSaver",
    "SafeCheckpointLoader",
    "amp_enabled",
    "as_bool",
    "atomic_torch_save",
    "bf16_supported",
    "checkpoint_epoch",
    "cleanup_distributed",
    "distributed_device",
    "epoch_seed",
    "find_last_checkpoint",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "load_checkpoint",
    "resume_checkpoint",
    "select_device",
    "select_fast_path",
    "set_deterministic",
    "wrap_ddp",
]
