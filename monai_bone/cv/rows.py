"""The rows of the CV ablation: their names per task, labels and losses, and what each network row changes in the
task's bundle (fusion of a hip row, MONAI ``DenseNet169`` for the knee baseline row, Smooth L1 for the loss ablation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monai.bundle import ConfigParser

__all__ = [
    "ALT_HIP_LOSS",
    "CV_ROWS",
    "DEFAULT_HIP_LOSS",
    "HIP_BASELINES",
    "HIP_FUSIONS",
    "HIP_LOSS_ROWS",
    "KNEE_BASELINES",
    "KNEE_VARIANTS",
    "ROW_LABELS",
    "densenet_def",
    "hip_loss_beta",
    "knee_probability",
    "param_count",
    "row_overrides",
    "smooth_l1_overrides",
]

logger = logging.getLogger(__name__)

HIP_BASELINES: tuple[str, ...] = ("ost", "clinical_ridge", "clinical_gbm", "image_stats")
HIP_FUSIONS: tuple[str, ...] = ("image", "clinical", "concat", "xattn")
#: Rows that can be asked for by name (not in the default set): a fusion trained with plain Smooth L1 (issue 11
#: item 9, the loss ablation), e.g. ``--variants xattn,xattn_smoothl1``.
HIP_LOSS_ROWS: tuple[str, ...] = tuple(f"{f}_smoothl1" for f in HIP_FUSIONS)
KNEE_BASELINES: tuple[str, ...] = ("image_stats",)
KNEE_VARIANTS: tuple[str, ...] = ("hybrid", "densenet169")
#: CV rows per task: (baselines, networks). A task of the registry without an entry here has no CV ablation yet.
CV_ROWS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hip": (HIP_BASELINES, HIP_FUSIONS),
    "knee": (KNEE_BASELINES, KNEE_VARIANTS),
}

ROW_LABELS: dict[str, str] = {
    "ost": "OST index (linear fit)",
    "clinical_ridge": "Clinical-only ridge (sklearn)",
    "clinical_gbm": "Clinical-only gradient boosting (sklearn)",
    "image_stats": "Trivial image statistics + clinical, ridge (sklearn)",
    "image": "Image only (ResNet34)",
    "clinical": "Clinical-only net (MLP tokens)",
    "concat": "Concatenation fusion",
    "xattn": "Cross-attention (XAttn-BMD)",
    "hybrid": "HybridAttentionNet (DenseNet169 + AM)",
    "densenet169": "DenseNet169 (paper's strongest baseline)",
}
ROW_LABELS.update({f"{f}_smoothl1": f"{ROW_LABELS[f]}, Smooth L1" for f in HIP_FUSIONS})
DEFAULT_HIP_LOSS = "WeightedSmoothL1"
ALT_HIP_LOSS = "SmoothL1"


def knee_probability(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knee network logits → (probability of osteoporosis, 1 for osteoporosis else 0).

    One output: sigmoid of the logit. ``C`` outputs: softmax, probability of the last class ("osteoporosis" in
    both label sets); the reference becomes "osteoporosis vs rest" (the Table I screening decision).
    """
    if pred.ndim == 1:
        return 1.0 / (1.0 + np.exp(-pred)), true
    z = pred - pred.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p[:, -1], (true == pred.shape[1] - 1).astype(float)


def hip_loss_beta(bundle: Path, ov: Mapping[str, Any]) -> float:
    """``beta`` of the bundle's loss (as configured), so Smooth L1 differs from it only in the weights."""
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    for key in ("screening_threshold", "loss_low_weight", "loss_weights", "loss_beta", "ref_sd", "ref_mean"):
        if key in ov:
            parser[key] = ov[key]
    parser.get_parsed_content("imports")
    loss = parser.get_parsed_content("loss", instantiate=True)
    return float(getattr(loss, "beta", 1.0))


def smooth_l1_overrides(row: str, beta: float) -> dict[str, Any]:
    """The overrides of a plain Smooth L1 row ``<fusion>_smoothl1``: its fusion and ``torch.nn.SmoothL1Loss(beta)``
    in place of the bundle's Weighted Smooth L1 (same ``beta``, so only the weights differ)."""
    return {"fusion": row.removesuffix("_smoothl1"), "loss": {"_target_": "torch.nn.SmoothL1Loss", "beta": beta}}


def densenet_def(bundle: Path) -> dict[str, Any]:
    """MONAI ``DenseNet169`` with the bundle network's input/output channels, initialisation (the bundle's
    ``pretrained`` setting, as the hybrid row) and texture descriptor (``texture_features``, so the pair differs only
    in the attention module and head), replacing ``network_def``."""
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    net = parser.get("network_def")
    return {
        "_target_": "monai_bone.networks.DenseNet169Baseline",
        "spatial_dims": 2,
        "in_channels": net.get("in_channels", 1),
        "out_channels": net.get("out_channels", 1),
        "pretrained": net.get("pretrained"),
        "texture_features": net.get("texture_features", 0),
    }


def row_overrides(name: str, bundle: Path) -> dict[str, Any]:
    """The network overrides of a table row (fusion of a hip row, DenseNet169 for the knee baseline row)."""
    base = name.removesuffix("_smoothl1")
    if base in HIP_FUSIONS:
        return {"fusion": base}
    return {"network_def": densenet_def(bundle)} if base == "densenet169" else {}


_NETWORK_KEYS: tuple[str, ...] = (
    "fusion",
    "network_def",
    "spatial_size",
    "in_channels",
    "num_classes",
    "image_encoder",
    "image_encoder_config",
    "pretrained",
    "pretrained_path",
    "pretrained_registry",
    "texture_features",
    "texture_kernel_size",
    "linear_skip",
    "roi_size_mm",
    "roi_texture_features",
)
"""Overrides that shape (or initialise) a row's network, so its parameter count is that of the trained network
(``pretrained*`` as trained: the weights are already cached by then, and ``pretrained: null`` downloads nothing)."""


def param_count(bundle: Path, datalist: Path, ov: Mapping[str, Any]) -> int | None:
    """Trainable parameters of the bundle's ``network_def`` under ``ov`` (None when it cannot be built)."""
    try:
        parser = ConfigParser()
        parser.read_config(str(bundle / "configs" / "train.json"))
        parser["datalist"] = str(datalist)
        for key, value in ov.items():
            if key in _NETWORK_KEYS:
                parser[key] = value
        parser.get_parsed_content("imports")
        net = parser.get_parsed_content("network_def", instantiate=True)
        return int(sum(p.numel() for p in net.parameters() if p.requires_grad))
    except Exception as err:  # noqa: BLE001 - the count is informative only
        logger.warning("parameter count of %s unavailable: %s", ov.get("fusion", "network"), err)
        return None
