"""Networks of monai-bone: the knee hybrid attention classifier and the hip XAttn-BMD regressor."""

from __future__ import annotations

from .hybrid_attention import HybridAttentionNet
from .xattn_bmd import FUSIONS, ClinicalFieldEncoder, XAttnBMD

__all__ = ["FUSIONS", "ClinicalFieldEncoder", "HybridAttentionNet", "XAttnBMD"]
