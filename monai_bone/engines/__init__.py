"""Engine glue for the monai-bone bundles: folds, clinical statistics, caching, devices, GPU fast path, DDP,
determinism, inference input.

The bundles run MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` with MONAI handlers; this package holds the
few pieces their configs call that MONAI does not provide. Ignite handlers (checkpoint save/load, Grad-CAM, field
attention, epoch seeding) live in :mod:`monai_bone.handlers`; their old ``monai_bone.engines.X`` names still resolve
for one release (deprecated, see :func:`__getattr__`), so configs of bundles trained before 0.2 keep loading.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from .clinical import fit_clinical_stats, load_clinical_stats
from .collate import collate_records
from .datasets import CACHE_MODES, make_dataset
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
from .inference import IMAGE_SUFFIXES, inference_records, prepare_inference_datalist
from .options import as_bool

__all__ = [
    "AMP_DTYPES",
    "CACHE_MODES",
    "FastPath",
    "IMAGE_SUFFIXES",
    "PrepareBatchPlainTensor",
    "amp_enabled",
    "as_bool",
    "bf16_supported",
    "class_names",
    "cleanup_distributed",
    "collate_records",
    "datalist_info",
    "default_eval_part",
    "distributed_device",
    "epoch_seed",
    "fit_clinical_stats",
    "fold_records",
    "get_rank",
    "get_world_size",
    "has_test_split",
    "has_value",
    "inference_records",
    "init_distributed",
    "is_main_process",
    "load_clinical_stats",
    "load_records",
    "make_dataset",
    "prepare_inference_datalist",
    "select_device",
    "select_fast_path",
    "split_summary",
    "set_deterministic",
    "split_folds",
    "target_stats",
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
    # imported here, not at the top: monai_bone.handlers imports monai_bone.engines (the layer below)
    return getattr(importlib.import_module(target), name)


# --- end of the handlers aliases ----------------------------------------------------------------------------------
