"""Bidirectional image <-> clinical-metadata cross-attention (the fusion of XAttn-BMD).

The XAttn-BMD paper states: 3 layers, 4 heads, bidirectional cross-attention, a layer-wise fusion weight and a
key-value updater. The exact layer below is **our reconstruction** (the paper does not give the equations):

For layer ``l`` with image tokens ``I`` (B, N, d), metadata tokens ``M`` (B, F, d) and field mask ``m`` (B, F)::

    M_kv = KV_M(M)                                   # key-value updater: metadata memory from the current tokens
    I    = I + sigmoid(g_I[l]) * Attn_I<-M(LN(I), M_kv, mask=m)   # image queries, metadata keys/values
    I    = I + MLP_I(LN(I))
    I_kv = KV_I(I)                                   # key-value updater: image memory from the *updated* image
    M    = M + sigmoid(g_M[l]) * Attn_M<-I(LN(M), I_kv)           # metadata queries, image keys/values
    M    = M + MLP_M(LN(M))

* layer-wise fusion weight: one learnable scalar per layer and direction (``g_I[l]``, ``g_M[l]``, initialised to 0,
  so each gate starts at 0.5) that scales how much of the attended update enters the residual stream;
* key-value updater ``KV_*``: ``LayerNorm -> Linear(d, d)``, applied to the latest tokens of a stream right before the
  other stream reads them as keys/values, so the metadata->image direction of layer ``l`` already sees the image tokens
  that layer ``l`` updated;
* masking: a missing field is removed from the keys of the image->metadata attention (its logit is ``-inf``), so it
  receives exactly zero attention; a sample with no field present gets a zero update from that direction.

Attention blocks reuse MONAI's :class:`~monai.networks.blocks.CrossAttentionBlock` parameters and ``save_attn``
convention; :class:`MaskedCrossAttentionBlock` only adds the key mask and replaces the einops rearrangements by plain
reshapes (TorchScript / ONNX friendly).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from monai.networks.blocks import CrossAttentionBlock, MLPBlock

__all__ = ["BidirectionalCrossAttention", "BidirectionalCrossAttentionLayer", "MaskedCrossAttentionBlock"]


class MaskedCrossAttentionBlock(CrossAttentionBlock):
    """MONAI :class:`~monai.networks.blocks.CrossAttentionBlock` with an optional key mask.

    Same constructor (``hidden_size, num_heads, dropout_rate, ..., save_attn``); causal attention, relative positional
    embeddings and flash attention are not supported here. With ``save_attn=True`` the softmax attention of the last
    call is kept in ``att_mat`` ``(B, heads, T_query, T_key)``, detached, before attention dropout (as in MONAI).

    Raises:
        ValueError: for ``causal``, ``rel_pos_embedding`` or ``use_flash_attention``; see also MONAI's block.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout_rate: float = 0.0, **kwargs) -> None:
        for unsupported in ("causal", "rel_pos_embedding", "use_flash_attention"):
            if kwargs.get(unsupported):
                raise ValueError(f"MaskedCrossAttentionBlock does not support {unsupported}.")
        super().__init__(hidden_size=hidden_size, num_heads=num_heads, dropout_rate=dropout_rate, **kwargs)

    def forward(
        self,
        x: torch.Tensor,
        context: Optional[torch.Tensor] = None,  # noqa: UP045  (TorchScript needs Optional)
        mask: Optional[torch.Tensor] = None,  # noqa: UP045
    ) -> torch.Tensor:
        """
        Args:
            x: queries ``(B, T_query, hidden_input_size)``.
            context: keys/values ``(B, T_key, context_input_size)``; ``x`` itself when None.
            mask: boolean ``(B, T_key)``, True where the key may be attended. A masked key gets exactly zero
                attention; a query whose keys are all masked returns zeros.

        Returns:
            ``(B, T_query, hidden_input_size)``.
        """
        b, t, _ = x.shape
        kv = context if context is not None else x
        kv_t = kv.shape[1]
        q = self.to_q(x).reshape(b, t, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
        k = self.to_k(kv).reshape(b, kv_t, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
        v = self.to_v(kv).reshape(b, kv_t, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

        att = torch.matmul(q, k.transpose(-1, -2)) * self.scale  # (B, heads, T_query, T_key)
        if mask is not None:
            mask = mask.to(torch.bool)
            any_key = mask.any(dim=1, keepdim=True)  # (B, 1)
            # rows with no valid key would be softmax(-inf, ..., -inf) = NaN; unmask them, then zero the result
            safe = (mask | ~any_key)[:, None, None, :]
            att = att.masked_fill(~safe, float("-inf")).softmax(dim=-1)
            att = att * any_key.to(att.dtype)[:, :, None, None]
        else:
            att = att.softmax(dim=-1)
        if self.save_attn:
            self.att_mat = att.detach()
        att = self.drop_weights(att)
        out = torch.matmul(att, v).permute(0, 2, 1, 3).reshape(b, t, self.num_heads * self.head_dim)
        out = self.drop_output(self.out_proj(out))
        if mask is not None:
            out = out * mask.any(dim=1).to(out.dtype)[:, None, None]
        return out


class BidirectionalCrossAttentionLayer(nn.Module):
    """One image <-> metadata layer; see the module docstring for the equations (our reconstruction).

    Args:
        hidden_size: token width ``d`` of both streams.
        num_heads: attention heads (``hidden_size`` must be divisible by it).
        mlp_ratio: hidden width of the per-stream MLP as a multiple of ``hidden_size``. Defaults to 2.
        dropout_rate: dropout in attention and MLP. Defaults to 0.
        qkv_bias: bias in the query/key/value projections. Defaults to False (MONAI's default).
        save_attn: keep the attention maps of the last call in ``attn_image.att_mat`` (image->metadata,
            ``(B, heads, N, F)``) and ``attn_meta.att_mat`` (metadata->image, ``(B, heads, F, N)``).

    Raises:
        ValueError: when ``hidden_size`` is not divisible by ``num_heads`` or ``dropout_rate`` is outside [0, 1].
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        mlp_ratio: float = 2.0,
        dropout_rate: float = 0.0,
        qkv_bias: bool = False,
        save_attn: bool = True,
    ) -> None:
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}).")
        attn_args = {"dropout_rate": dropout_rate, "qkv_bias": qkv_bias, "save_attn": save_attn}
        mlp_dim = int(hidden_size * mlp_ratio)
        self.norm_image = nn.LayerNorm(hidden_size)
        self.attn_image = MaskedCrossAttentionBlock(hidden_size, num_heads, **attn_args)
        self.norm_image_mlp = nn.LayerNorm(hidden_size)
        self.mlp_image = MLPBlock(hidden_size, mlp_dim, dropout_rate)
        self.kv_image = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, hidden_size))

        self.norm_meta = nn.LayerNorm(hidden_size)
        self.attn_meta = MaskedCrossAttentionBlock(hidden_size, num_heads, **attn_args)
        self.norm_meta_mlp = nn.LayerNorm(hidden_size)
        self.mlp_meta = MLPBlock(hidden_size, mlp_dim, dropout_rate)
        self.kv_meta = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, hidden_size))

        # layer-wise fusion weights (logits of the two gates), sigmoid(0) = 0.5 at initialisation
        self.fusion_image = nn.Parameter(torch.zeros(1))
        self.fusion_meta = nn.Parameter(torch.zeros(1))

    def forward(
        self,
        image: torch.Tensor,
        meta: torch.Tensor,
        meta_mask: Optional[torch.Tensor] = None,  # noqa: UP045
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            image: image tokens ``(B, N, d)``.
            meta: metadata tokens ``(B, F, d)``.
            meta_mask: boolean ``(B, F)``, True for present fields (None: all present).

        Returns:
            Updated ``(image, meta)`` tokens.
        """
        meta_kv = self.kv_meta(meta)
        image = image + torch.sigmoid(self.fusion_image) * self.attn_image(self.norm_image(image), meta_kv, meta_mask)
        image = image + self.mlp_image(self.norm_image_mlp(image))
        image_kv = self.kv_image(image)
        meta = meta + torch.sigmoid(self.fusion_meta) * self.attn_meta(self.norm_meta(meta), image_kv, None)
        meta = meta + self.mlp_meta(self.norm_meta_mlp(meta))
        return image, meta


class BidirectionalCrossAttention(nn.Module):
    """A stack of :class:`BidirectionalCrossAttentionLayer` (XAttn-BMD: 3 layers, 4 heads).

    Args:
        hidden_size: token width of both streams.
        num_layers: number of layers. Defaults to 3.
        num_heads: attention heads. Defaults to 4.
        mlp_ratio: see :class:`BidirectionalCrossAttentionLayer`.
        dropout_rate: see :class:`BidirectionalCrossAttentionLayer`.
        qkv_bias: see :class:`BidirectionalCrossAttentionLayer`.
        save_attn: keep every layer's attention maps of the last call (see :meth:`attention`).
        readout: ``"last"`` (the last layer's tokens) or ``"layer_sum"``: another reading of the paper's "layer-wise
            fusion weight", the output is ``sum_l softmax(a)_l * tokens_l`` over the layers' outputs with learned
            logits ``a`` (one per layer and stream, initialised to 0: the mean of the layers).

    Raises:
        ValueError: when ``num_layers < 1`` or ``readout`` is unknown; see also
            :class:`BidirectionalCrossAttentionLayer`.
    """

    def __init__(
        self,
        hidden_size: int,
        num_layers: int = 3,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout_rate: float = 0.0,
        qkv_bias: bool = False,
        save_attn: bool = True,
        readout: str = "last",
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}.")
        if readout not in ("last", "layer_sum"):
            raise ValueError(f"readout must be 'last' or 'layer_sum', got {readout!r}.")
        self.readout = readout
        # layer_sum: learned weights over the layers' outputs (image stream, metadata stream); None for "last", so
        # the paper reading's state dict (and old checkpoints) stay as they were
        self.layer_logits: Optional[nn.Parameter] = (  # noqa: UP045
            nn.Parameter(torch.zeros(2, num_layers)) if readout == "layer_sum" else None
        )
        self.layers = nn.ModuleList(
            [
                BidirectionalCrossAttentionLayer(hidden_size, num_heads, mlp_ratio, dropout_rate, qkv_bias, save_attn)
                for _ in range(num_layers)
            ]
        )

    def forward(
        self,
        image: torch.Tensor,
        meta: torch.Tensor,
        meta_mask: Optional[torch.Tensor] = None,  # noqa: UP045
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run all layers; arguments and returns as :meth:`BidirectionalCrossAttentionLayer.forward` (with
        ``readout="layer_sum"`` the returned tokens are the weighted sum over the layers' outputs)."""
        logits = self.layer_logits
        if logits is None:
            for layer in self.layers:
                image, meta = layer(image, meta, meta_mask)
            return image, meta
        weights = torch.softmax(logits, dim=1)
        image_sum = torch.zeros_like(image)
        meta_sum = torch.zeros_like(meta)
        for i, layer in enumerate(self.layers):
            image, meta = layer(image, meta, meta_mask)
            image_sum = image_sum + weights[0, i] * image
            meta_sum = meta_sum + weights[1, i] * meta
        return image_sum, meta_sum

    def attention(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Attention maps saved by the last forward call (requires ``save_attn=True``).

        Returns:
            ``(image_to_meta, meta_to_image)``: per layer, ``(B, heads, N, F)`` and ``(B, heads, F, N)``.

        Raises:
            RuntimeError: when no map has been saved (``save_attn=False`` or no forward call yet).
        """
        i2m = [layer.attn_image.att_mat for layer in self.layers]
        m2i = [layer.attn_meta.att_mat for layer in self.layers]
        if any(a.numel() == 0 for a in i2m + m2i):
            raise RuntimeError("no attention map saved: construct with save_attn=True and call forward first.")
        return i2m, m2i
