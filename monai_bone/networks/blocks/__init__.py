"""Building blocks of the monai-bone networks: the knee Attention Module and bidirectional cross-attention."""

from __future__ import annotations

from .attention_module import AttentionModule, ChannelAttention, SpatialAttention
from .bidirectional_cross_attention import (
    BidirectionalCrossAttention,
    BidirectionalCrossAttentionLayer,
    MaskedCrossAttentionBlock,
)
from .token_mixer import TokenMixer

__all__ = [
    "AttentionModule",
    "BidirectionalCrossAttention",
    "BidirectionalCrossAttentionLayer",
    "ChannelAttention",
    "MaskedCrossAttentionBlock",
    "SpatialAttention",
    "TokenMixer",
]
