"""Networks of monai-bone: the knee hybrid attention classifier and the hip XAttn-BMD regressor."""

from __future__ import annotations

from .densenet_baseline import DenseNet169Baseline
from .hybrid_attention import HybridAttentionNet
from .xattn_bmd import FUSIONS, IMAGE_ENCODERS, ClinicalFieldEncoder, XAttnBMD

__all__ = ["FUSIONS", "IMAGE_ENCODERS", "ClinicalFieldEncoder", "DenseNet169Baseline", "HybridAttentionNet", "XAttnBMD"]
