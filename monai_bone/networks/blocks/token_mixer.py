"""Per-modality token mixing: the capacity-matched partner of cross-attention in the concatenation ablation.

:class:`TokenMixer` is ``num_layers`` MONAI ``TransformerBlock`` layers (self-attention + MLP, pre-norm residual)
over the tokens of *one* modality. ``XAttnBMD(fusion="concat")`` runs one mixer over the image tokens and one over
the clinical field tokens: the same depth of token mixing as the bidirectional cross-attention, and about the same
number of parameters, but no token ever attends to the other modality. A gain of ``xattn`` over this ``concat`` is
then a gain of cross-modal attention, not of depth.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.networks.blocks import TransformerBlock

__all__ = ["TokenMixer"]


class TokenMixer(nn.Module):
    """``num_layers`` self-attention transformer layers over one token sequence.

    Args:
        hidden_size: token width ``d``.
        num_layers: layers (0: identity).
        num_heads: attention heads.
        mlp_ratio: MLP width as a multiple of ``hidden_size``.
        dropout_rate: dropout of attention and MLP.
    """

    def __init__(
        self, hidden_size: int, num_layers: int, num_heads: int, mlp_ratio: float = 2.0, dropout_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerBlock(hidden_size, int(hidden_size * mlp_ratio), num_heads, dropout_rate=dropout_rate)
            for _ in range(int(num_layers))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, d)`` → ``(B, N, d)``."""
        for layer in self.layers:
            x = layer(x)
        return x
