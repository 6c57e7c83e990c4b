"""Every ``monai_bone`` name that a bundle config refers to resolves: old trained bundles keep loading after a move.

``FROZEN_0_1`` is every dotted ``monai_bone.*`` name (``_target_`` objects, ``$monai_bone...`` expressions and
``$import`` lines) in ``bundles/*/configs/*`` at commit 67e80f2, before issue 14 moved handlers, datasets and
datalist helpers out of ``monai_bone.engines``; frozen with
``git grep -ohE "monai_bone(\\.[A-Za-z_][A-Za-z0-9_]*)+" 67e80f2 -- 'bundles/*/configs/*' | sort -u``.
A moved name must keep resolving through a deprecated alias (a module-level ``__getattr__`` in the old package)
for one release. The shipped configs themselves must use the current paths (no ``DeprecationWarning``).
"""

from __future__ import annotations

import importlib
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

FROZEN_0_1 = (
    "monai_bone.constants.CLINICAL_FIELDS",
    "monai_bone.constants.KNEE_LABELS_BINARY",
    "monai_bone.constants.KNEE_LABELS_THREE",
    "monai_bone.constants.REFERENCE_MEAN",
    "monai_bone.constants.REFERENCE_SD",
    "monai_bone.constants.SCREENING_THRESHOLD",
    "monai_bone.engines",
    "monai_bone.engines.EpochSeedHandler",
    "monai_bone.engines.FieldAttentionHandler",
    "monai_bone.engines.GradCamSaver",
    "monai_bone.engines.PrepareBatchPlainTensor",
    "monai_bone.engines.ResumableCheckpointSaver",
    "monai_bone.engines.SafeCheckpointLoader",
    "monai_bone.engines.as_bool",
    "monai_bone.engines.class_names",
    "monai_bone.engines.cleanup_distributed",
    "monai_bone.engines.collate_records",
    "monai_bone.engines.datalist_info",
    "monai_bone.engines.default_eval_part",
    "monai_bone.engines.distributed_device",
    "monai_bone.engines.fit_clinical_stats",
    "monai_bone.engines.fold_records",
    "monai_bone.engines.get_rank",
    "monai_bone.engines.init_distributed",
    "monai_bone.engines.is_main_process",
    "monai_bone.engines.load_clinical_stats",
    "monai_bone.engines.load_records",
    "monai_bone.engines.make_dataset",
    "monai_bone.engines.prepare_inference_datalist",
    "monai_bone.engines.resume_checkpoint",
    "monai_bone.engines.select_fast_path",
    "monai_bone.engines.set_deterministic",
    "monai_bone.engines.target_stats",
    "monai_bone.engines.wrap_ddp",
    "monai_bone.handlers.BonePredictionWriter",
    "monai_bone.handlers.BoneReportWriter",
    "monai_bone.handlers.ClassificationTableMetric",
    "monai_bone.handlers.FreezeBackbone",
    "monai_bone.handlers.R2",
    "monai_bone.handlers.TrainingHistory",
    "monai_bone.losses.WeightedSmoothL1Loss",
    "monai_bone.losses.who_bins",
    "monai_bone.networks.HybridAttentionNet",
    "monai_bone.networks.XAttnBMD",
    "monai_bone.networks.bundle_pretrained",
    "monai_bone.networks.param_groups",
    "monai_bone.results",
    "monai_bone.results.DicomResultsSaver",
    "monai_bone.results.ShardedPredictionWriter",
    "monai_bone.results.distributed_datalist",
    "monai_bone.results.shard_records",
    "monai_bone.transforms.ClinicalVectord",
    "monai_bone.transforms.LoadXrayd",
    "monai_bone.transforms.SafeXrayd",
    "monai_bone.transforms.XrayGuardd",
    "monai_bone.transforms.XrayNormalised",
)
_NAME = re.compile(r"monai_bone(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _import_prefix(name: str) -> tuple[Any, list[str]]:
    """Import the longest module prefix of ``name`` (as a config's ``$import`` does); the rest are attributes."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:i])), parts[i:]
        except ModuleNotFoundError as err:
            if err.name is None or not ".".join(parts[:i]).startswith(err.name):
                raise
    raise AssertionError(name)


def _resolve(name: str) -> Any:
    obj, attrs = _import_prefix(name)
    for attr in attrs:
        obj = getattr(obj, attr)  # a deprecated alias answers here through the old package's __getattr__
    return obj


@pytest.mark.parametrize("name", FROZEN_0_1)
def test_names_of_0_1_bundle_configs_still_resolve(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        obj = _resolve(name)
    assert obj is not None, name


def _current_names() -> list[str]:
    found = set()
    for cfg in sorted((REPO / "bundles").glob("*/configs/*")):
        found |= set(_NAME.findall(cfg.read_text(encoding="utf-8")))
    return sorted(found)


def test_shipped_configs_use_current_paths() -> None:
    names = _current_names()
    assert len(names) > 30  # the scan reads the configs
    for name in names:  # import first: third-party modules may warn while importing
        _import_prefix(name)
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            assert _resolve(name) is not None, name
