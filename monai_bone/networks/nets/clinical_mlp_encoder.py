"""Another reading of XAttn-BMD's "MLP metadata encoder": one MLP over the whole clinical vector, feeding the per-field
tokens (``XAttnBMD(meta_encoder="mlp")``).

The default :class:`~monai_bone.networks.nets.xattn_bmd.ClinicalFieldEncoder` lifts each field on its own (a token
knows only its own value); here every token is computed from all fields at once, so a token can carry interactions
(e.g. weight with sex) before the cross-attention reads it::

    h = GELU(Linear([values, presence]))            # (B, d), values of missing fields are 0
    token_f = Linear_f(h) + e_f   (present field),  missing + e_f   (missing field)
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["ClinicalMLPEncoder"]


class ClinicalMLPEncoder(nn.Module):
    """MLP over the clinical vector and its presence mask, read out as one token per field.

    Args:
        num_fields: number of clinical fields ``F``.
        hidden_size: token width ``d``.

    Shape: ``values (B, F), mask (B, F) -> (B, F, d)``; missing values never enter the arithmetic.
    """

    def __init__(self, num_fields: int, hidden_size: int) -> None:
        super().__init__()
        self.num_fields = int(num_fields)
        self.hidden_size = int(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(2 * num_fields, hidden_size), nn.GELU())
        self.readout = nn.Linear(hidden_size, num_fields * hidden_size)
        self.field_embedding = nn.Parameter(torch.randn(num_fields, hidden_size) * 0.02)
        self.missing_token = nn.Parameter(torch.randn(hidden_size) * 0.02)

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` values (anything where ``mask`` is False) and boolean mask -> ``(B, F, d)`` tokens."""
        values = values.to(self.field_embedding.dtype)
        values = torch.where(mask, values, torch.zeros_like(values))
        h = self.mlp(torch.cat([values, mask.to(values.dtype)], dim=1))
        tokens = self.readout(h).reshape(values.shape[0], self.num_fields, self.hidden_size)
        tokens = torch.where(mask.unsqueeze(-1), tokens, self.missing_token.expand_as(tokens))
        return tokens + self.field_embedding
