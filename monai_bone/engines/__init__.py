"""Engine glue for the monai-bone bundles: folds, clinical statistics, caching, resume, devices, GPU fast path, DDP,
inference input.

The bundles run MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` with MONAI handlers; this package holds the
few pieces their configs call that MONAI does not provide.
"""

from __future__ import annotations

from .checkpoint import (
    CheckpointFileError,
    SafeCheckpointLoader,
    atomic_torch_save,
    checkpoint_epoch,
    find_last_checkpoint,
    load_checkpoint,
    resume_checkpoint,
)
from .clinical import fit_clinical_stats, load_clinical_stats
from .collate import collate_records
from .datasets import CACHE_MODES, make_dataset
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
from .folds import (
    class_names,
    datalist_info,
    default_eval_part,
    fold_records,
    has_test_split,
    has_value,
    load_records,
    split_folds,
    split_summary,
    target_stats,
)
from .handlers import ResumableCheckpointSaver
from .inference import IMAGE_SUFFIXES, inference_records, prepare_inference_datalist
from .options import as_bool

__all__ = [
    "AMP_DTYPES",
    "CACHE_MODES",
    "CheckpointFileError",
    "EpochSeedHandler",
    "FastPath",
    "FieldAttentionHandler",
    "GradCamSaver",
    "IMAGE_SUFFIXES",
    "PrepareBatchPlainTensor",
    "ResumableCheckpointSaver",
    "SafeCheckpointLoader",
    "amp_enabled",
    "as_bool",
    "atomic_torch_save",
    "bf16_supported",
    "checkpoint_epoch",
    "class_names",
    "cleanup_distributed",
    "collate_records",
    "datalist_info",
    "default_eval_part",
    "distributed_device",
    "epoch_seed",
    "find_last_checkpoint",
    "fit_clinical_stats",
    "fold_records",
    "get_rank",
    "get_world_size",
    "has_test_split",
    "has_value",
    "inference_records",
    "init_distributed",
    "is_main_process",
    "load_checkpoint",
    "load_clinical_stats",
    "load_records",
    "make_dataset",
    "prepare_inference_datalist",
    "resume_checkpoint",
    "select_device",
    "select_fast_path",
    "split_summary",
    "set_deterministic",
    "split_folds",
    "target_stats",
    "wrap_ddp",
]
