"""Building blocks of the monai-bone networks: the knee Attention Module, bidirectional cross-attention, token mixing
and the filter-bank texture descriptor."""

from __future__ import annotations

from .attention_module import AttentionModule, ChannelAttention, SpatialAttention
from .bidirectional_cross_attention import (
    BidirectionalCrossAttention,
    BidirectionalCrossAttentionLayer,
    MaskedCrossAttentionBlock,
)
from .texture_energy import TextureEnergy, gabor_bank
from .token_mixer import TokenMixer

__all__ = [
    "AttentionModule",
    "BidirectionalCrossAttention",
    "BidirectionalCrossAttentionLayer",
    "ChannelAttention",
    "MaskedCrossAttentionBlock",
    "SpatialAttention",
    "TextureEnergy",
    "TokenMixer",
    "gabor_bank",
]
