"""XAttn-BMD: femoral-neck BMD from a hip radiograph and clinical metadata with bidirectional cross-attention.

The paper gives the outline (ResNet34 image encoder, MLP metadata encoder, 3-layer 4-head bidirectional
cross-attention with a layer-wise fusion weight and a key-value updater, regression of BMD); the details below are
**our reconstruction** and are configurable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.networks.nets import FullyConnectedNet, resnet34

from ...constants import CLINICAL_FIELDS
from ..blocks.bidirectional_cross_attention import BidirectionalCrossAttention
from ..blocks.input_normalisation import InputNormalisation
from ..blocks.token_mixer import TokenMixer
from ..pretrained import IMAGENET_MEAN, IMAGENET_STD, pretrained_entry, resolve_pretrained, resolve_pretrained_setting
from .clinical_mlp_encoder import ClinicalMLPEncoder
from .foundation import RadDinoEncoder
from .texture_token import TextureToken

__all__ = ["FUSIONS", "IMAGE_ENCODERS", "ClinicalFieldEncoder", "XAttnBMD"]

#: The fusion variants of the ablation table.
FUSIONS: tuple[str, ...] = ("xattn", "concat", "image", "clinical")
#: Image encoders: the paper's ResNet34 and the RAD-DINO ViT-B/14 (optional extra ``foundation``).
IMAGE_ENCODERS: tuple[str, ...] = ("resnet34", "rad-dino")
RESNET34_CHANNELS = 512


class ClinicalFieldEncoder(nn.Module):
    """MLP value encoder turning a clinical vector into one token per field.

    ``token_f = Linear(GELU(v_f * w_f + b_f)) + e_f`` for a present field, ``missing + e_f`` for a missing one:
    ``w_f, b_f`` lift the scalar of field ``f`` to ``hidden_size`` (per-field first layer), the second layer is shared,
    ``e_f`` is a learned field embedding and ``missing`` a learned missing-value token. A missing value never enters the
    arithmetic (it is replaced before use), so NaN placeholders are safe.

    Args:
        num_fields: number of clinical fields ``F``.
        hidden_size: token width ``d``.
    """

    def __init__(self, num_fields: int, hidden_size: int) -> None:
        super().__init__()
        self.value_weight = nn.Parameter(torch.randn(num_fields, hidden_size) * 0.02)
        self.value_bias = nn.Parameter(torch.zeros(num_fields, hidden_size))
        self.value_mlp = nn.Sequential(nn.GELU(), nn.Linear(hidden_size, hidden_size))
        self.field_embedding = nn.Parameter(torch.randn(num_fields, hidden_size) * 0.02)
        self.missing_token = nn.Parameter(torch.randn(hidden_size) * 0.02)

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            values: ``(B, F)`` clinical vector (any value where ``mask`` is False, NaN included).
            mask: boolean ``(B, F)``, True for present fields.

        Returns:
            tokens ``(B, F, d)``.
        """
        values = values.to(self.value_weight.dtype)
        values = torch.where(mask, values, torch.zeros_like(values))
        h = self.value_mlp(values.unsqueeze(-1) * self.value_weight + self.value_bias)
        h = torch.where(mask.unsqueeze(-1), h, self.missing_token.expand_as(h))
        return h + self.field_embedding


class XAttnBMD(nn.Module):
    """BMD (g/cm²) from a hip radiograph and clinical fields; ``fusion`` selects the ablation variant.

    Image branch (``xattn``, ``concat``, ``image``): MONAI ``resnet34(spatial_dims=2, conv1_t_stride=2,
    feed_forward=False, bias_downsample=False)`` (the standard ImageNet ResNet34 layout, torchvision weights load with
    :func:`~monai_bone.networks.load_pretrained`) -> last-stage map ``(B, 512, H/32, W/32)`` -> 1x1 conv to
    ``hidden_size`` -> ``N = H/32 * W/32`` image tokens. For ``xattn`` a learned 2-D positional embedding
    (``pos_grid``, default 7x7 = 224² input) is added, bilinearly resized when the input size differs (any size and
    aspect ratio work); ``pos_embedding=None`` disables it.

    Clinical branch (``xattn``, ``concat``, ``clinical``): :class:`ClinicalFieldEncoder`, one token per field in
    ``clinical_fields`` order (value MLP + field embedding; a learned missing token for missing fields).

    Fusion (our reconstruction of the paper's outline):

    * ``"xattn"``: :class:`~monai_bone.networks.blocks.BidirectionalCrossAttention` (``num_layers`` layers,
      ``num_heads`` heads, layer-wise fusion gates, key-value updaters; equations in its module docstring). Missing
      fields are masked out of the image->metadata attention (exactly zero weight). Then mean-pooled image tokens and
      mean-pooled metadata tokens (missing tokens included: missingness is information), each layer-normalised,
      concatenated ``(2d)`` -> head.
    * ``"concat"`` (capacity-matched, the default ``concat_mixing_layers=None``): the same image tokens (with the
      positional embedding) and the same per-field tokens as ``xattn``, each mixed by its own
      :class:`~monai_bone.networks.blocks.TokenMixer` of ``num_layers`` self-attention layers -- the same depth of
      token mixing, no cross-modal attention -- then pooled, layer-normalised and concatenated ``(2d)`` -> head.
      ``concat_mixing_layers=0`` gives the earlier light concat: mean-pooled image tokens || ``MLP(mean of field
      tokens)``.
    * ``"image"``: mean-pooled image tokens ``(d)`` -> head; ``clinical`` is ignored (may be None).
    * ``"clinical"``: ``MLP(mean of field tokens)`` ``(d)`` -> head; the image is ignored (no encoder is built).

    Head: ``FullyConnectedNet(in, out_channels, head_channels, dropout=head_dropout)``; output
    ``target_mean + target_std * head(...)`` (persistent buffers, saved in checkpoints), so a bundle can train the head
    on a normalised scale while the network outputs g/cm².

    Missing clinical values: ``clinical_mask`` (1/True = present) or, when it is None, ``~isnan(clinical)``; a NaN
    value is treated as missing even where the mask says present. Missing values are never imputed: they become the
    missing token and are masked out of the attention.

    Parameter counts, default arguments (``in_channels=1``, ``out_channels=1``, ``hidden_size=256``,
    ``num_layers=3``, ``num_heads=4``, ``mlp_ratio=2``, 10 clinical fields, ``pos_grid=(7, 7)``, head ``(128,)``;
    checked in ``tests/networks/test_xattn_bmd.py``):

    ============ ============ ==============================================================================
    fusion       parameters   parts
    ============ ============ ==============================================================================
    ``xattn``    25,118,664   ResNet34 21,278,400 + image proj 131,328 + image norm 512 + pos 12,544
                              + field encoder 73,728 + cross-attention 3,555,846 + meta norm 512 + head 65,794
    ``concat``   24,723,906   ResNet34 + image proj + image norm + pos + field encoder + two token mixers
                              3,161,088 + meta norm + head (-1.57 % vs ``xattn``: within ±5 %)
    concat, 0    21,813,186   ``concat_mixing_layers=0`` (light): ResNet34 + image proj + image norm + field encoder
                              + clinical MLP 263,424 + head 65,794
    ``image``    21,443,266   ResNet34 + image proj + image norm + head 33,026
    ``clinical`` 370,178      field encoder + clinical MLP + head 33,026
    xattn, tex   25,160,184   ``texture_features=16``: + texture token 8,240 + texture norm 512 + wider head
                              (3d input) 32,768; concat, tex 24,765,426 (-1.57 %); image, tex 21,484,786
    ============ ============ ==============================================================================

    Export: TorchScript (``torch.jit.script``) and ONNX (``torch.onnx.export``, both exporters) give the eager outputs;
    a traced / ONNX graph is specialised to the export input size (shape checks and the positional-embedding resize
    are resolved at export), so export at the bundle's fixed input size. The clinical inputs stay data-dependent
    (NaN pattern and mask are evaluated inside the graph).

    Args:
        spatial_dims: number of spatial dimensions; only 2 is supported.
        in_channels: image channels.
        out_channels: outputs (1 = BMD).
        clinical_fields: names of the clinical vector entries, in order. Defaults to
            :data:`monai_bone.constants.CLINICAL_FIELDS`.
        fusion: ``"xattn"``, ``"concat"``, ``"image"`` or ``"clinical"``.
        hidden_size: token width ``d``. Defaults to 256.
        num_layers: cross-attention layers. Defaults to 3 (the paper).
        num_heads: attention heads. Defaults to 4 (the paper).
        mlp_ratio: MLP width of the attention layers and the clinical MLP, as a multiple of ``hidden_size``.
        dropout_rate: dropout in attention layers and the clinical MLP. Defaults to 0.1.
        head_channels: hidden widths of the regression head. Defaults to ``(hidden_size // 2,)``.
        head_dropout: dropout of the head's hidden layers. Defaults to 0.1.
        pos_embedding: ``"learned"`` or None (``xattn`` and mixed ``concat``).
        pos_grid: size of the learned positional grid (resized to the feature map). Defaults to ``(7, 7)``.
        target_mean: added to the head output (g/cm²).
        target_std: multiplies the head output (g/cm²), positive.
        pretrained_path: optional local torchvision ``resnet34`` state dict for the image encoder
            (:func:`~monai_bone.networks.load_pretrained`); wins over ``pretrained``.
        pretrained: image-encoder initialisation: None (random), ``"imagenet"`` (torchvision ResNet34 through
            :mod:`monai_bone.networks.pretrained`: registry, torch.hub cache, sha256), a local file; for
            ``image_encoder="rad-dino"``: ``"rad-dino"`` (``microsoft/rad-dino``) or a local checkpoint folder.
        pretrained_registry: overrides of the weights registry (hospital mirror), see
            :func:`~monai_bone.networks.pretrained_entry`.
        input_norm: input normalisation, the network's first step (persistent buffers, saved in checkpoints and
            exports): ``"auto"`` = the encoder's expected statistics when it is pretrained (ImageNet mean/SD for
            ResNet34, adapted to ``in_channels``), identity otherwise; None; ``"imagenet"``; ``{"mean", "std"}``.
        image_encoder: ``"resnet34"`` (the paper) or ``"rad-dino"`` (DINOv2 ViT-B/14, optional extra
            ``foundation``; patch tokens are the cross-attention's image tokens, the CLS token feeds the
            ``concat`` / ``image`` heads; no extra positional embedding, the ViT has its own).
        image_encoder_config: ``Dinov2Config`` overrides for a randomly initialised ``rad-dino`` encoder (tests).
        concat_mixing_layers: ``concat`` only: self-attention layers per modality; ``None`` = ``num_layers``
            (capacity-matched to ``xattn``), 0 = the light concat without token mixing.
        texture_features: ``K > 0`` adds a :class:`~monai_bone.networks.nets.texture_token.TextureToken` (learnable
            Gabor filter-bank log energies of the per-image standardised input, ``K`` filters) as one more image token
            that takes part in the fusion (cross-attention or the concat mixer) and has its own pooled stream into
            the head; 0 (default) = the paper's architecture. Ignored for ``fusion="clinical"``.
        texture_kernel_size: filter side of the texture bank in pixels.
        linear_skip: add ``Linear(standardised texture energies, clinical values, presence mask)`` (zero at the
            start) to the head output: a linear path the deep fusion only has to correct. Off by default.
        xattn_readout: ``xattn`` only: ``"last"`` (default) the last cross-attention layer's tokens, or
            ``"layer_sum"`` a learned softmax-weighted sum of every layer's tokens (another reading of the paper's
            layer-wise fusion weight, see :class:`~monai_bone.networks.blocks.BidirectionalCrossAttention`).
        meta_encoder: ``"field"`` (default) per-field value MLP (:class:`ClinicalFieldEncoder`) or ``"mlp"`` one MLP
            over the whole clinical vector read out as per-field tokens
            (:class:`~monai_bone.networks.nets.clinical_mlp_encoder.ClinicalMLPEncoder`).

    Raises:
        ValueError: for an unknown ``fusion`` or ``pos_embedding``, ``spatial_dims != 2``, empty or duplicated
            ``clinical_fields``, ``hidden_size`` not divisible by ``num_heads``, non-positive ``target_std``,
            ``pretrained_path`` with ``fusion="clinical"``, negative ``texture_features`` (or texture with
            ``rad-dino``), an unknown ``xattn_readout`` or ``meta_encoder``.

    Example::

        net = XAttnBMD(in_channels=1, fusion="xattn").eval()
        clinical = torch.full((2, 10), float("nan"))  # all missing
        bmd = net(torch.rand(2, 1, 224, 224), clinical)  # (2, 1) g/cm²
        maps = net.attention_maps(torch.rand(2, 1, 224, 224), clinical)
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        clinical_fields: Sequence[str] = CLINICAL_FIELDS,
        fusion: str = "xattn",
        hidden_size: int = 256,
        num_layers: int = 3,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout_rate: float = 0.1,
        head_channels: Sequence[int] | None = None,
        head_dropout: float = 0.1,
        pos_embedding: str | None = "learned",
        pos_grid: Sequence[int] = (7, 7),
        target_mean: float = 0.0,
        target_std: float = 1.0,
        pretrained_path: str | os.PathLike | None = None,
        pretrained: str | os.PathLike | None = None,
        pretrained_registry: dict | None = None,
        input_norm: str | dict | None = "auto",
        image_encoder: str = "resnet34",
        image_encoder_config: dict | None = None,
        concat_mixing_layers: int | None = None,
        texture_features: int = 0,
        texture_kernel_size: int = 15,
        linear_skip: bool = False,
        xattn_readout: str = "last",
        meta_encoder: str = "field",
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}.")
        if spatial_dims != 2:
            raise ValueError(f"XAttnBMD supports spatial_dims=2 only, got {spatial_dims}.")
        fields = tuple(str(f) for f in clinical_fields)
        if not fields or len(set(fields)) != len(fields):
            raise ValueError(f"clinical_fields must be non-empty and unique, got {fields}.")
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}).")
        if pos_embedding not in ("learned", None):
            raise ValueError(f"pos_embedding must be 'learned' or None, got {pos_embedding!r}.")
        if not target_std > 0:
            raise ValueError(f"target_std must be positive, got {target_std}.")
        if image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"image_encoder must be one of {IMAGE_ENCODERS}, got {image_encoder!r}.")
        if meta_encoder not in ("field", "mlp"):
            raise ValueError(f"meta_encoder must be 'field' or 'mlp', got {meta_encoder!r}.")
        if texture_features < 0 or (texture_features and image_encoder != "resnet34"):
            raise ValueError(f"texture_features must be >= 0 (and 0 with image_encoder={image_encoder!r}).")
        pretrained = pretrained_path if pretrained_path is not None else pretrained
        if resolve_pretrained_setting(pretrained) is not None and fusion == "clinical":
            raise ValueError("pretrained weights given but fusion='clinical' has no image encoder.")

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.clinical_fields = fields
        self.num_fields = len(fields)
        self.fusion = fusion
        self.hidden_size = hidden_size
        # concat: per-modality token mixing of the same depth as the cross-attention (monai_bone.networks.blocks)
        mixing = int(num_layers if concat_mixing_layers is None else concat_mixing_layers) if fusion == "concat" else 0
        self.concat_mixing = mixing  # 0: no mixer layers (empty TokenMixers keep the module TorchScript-friendly)
        self.image_mixer = TokenMixer(hidden_size, mixing, num_heads, mlp_ratio, dropout_rate)
        self.meta_mixer = TokenMixer(hidden_size, mixing, num_heads, mlp_ratio, dropout_rate)
        use_image = fusion != "clinical"
        use_clinical = fusion != "image"
        head_channels = (hidden_size // 2,) if head_channels is None else tuple(int(c) for c in head_channels)

        self.encoder: nn.Module | None = None
        self.foundation_encoder: RadDinoEncoder | None = None
        self.image_proj: nn.Module | None = None
        self.image_norm: nn.Module | None = None
        self.pos_embed: nn.Parameter | None = None
        self.image_encoder = image_encoder
        weights = resolve_pretrained_setting(pretrained)
        norm_default = None
        if use_image and image_encoder == "rad-dino":
            if weights is not None and str(weights).lower() == "imagenet":
                raise ValueError("RAD-DINO is not an ImageNet model: pretrained='rad-dino', a local folder, or None.")
            self.foundation_encoder = RadDinoEncoder(in_channels, weights, image_encoder_config)
            self.image_proj = nn.Linear(self.foundation_encoder.hidden_size, hidden_size)
            self.image_norm = nn.LayerNorm(hidden_size)
            if weights is not None:
                enc = self.foundation_encoder
                norm_default = {"mean": enc.image_mean or IMAGENET_MEAN, "std": enc.image_std or IMAGENET_STD}
        elif use_image:
            self.encoder = resnet34(
                spatial_dims=2,
                n_input_channels=in_channels,
                conv1_t_stride=2,
                feed_forward=False,
                bias_downsample=False,
            )
            self.image_proj = Conv[Conv.CONV, 2](RESNET34_CHANNELS, hidden_size, kernel_size=1)
            self.image_norm = nn.LayerNorm(hidden_size)
            if (fusion == "xattn" or mixing > 0) and pos_embedding == "learned":
                grid = tuple(int(g) for g in pos_grid)
                self.pos_embed = nn.Parameter(torch.randn(1, hidden_size, grid[0], grid[1]) * 0.02)

        self.field_encoder: nn.Module | None = None
        self.clinical_mlp: nn.Module | None = None
        if use_clinical:
            encoder_cls = ClinicalMLPEncoder if meta_encoder == "mlp" else ClinicalFieldEncoder
            self.field_encoder = encoder_cls(self.num_fields, hidden_size)
            if fusion != "xattn" and mixing == 0:
                mlp_dim = int(hidden_size * mlp_ratio)
                self.clinical_mlp = nn.Sequential(
                    nn.LayerNorm(hidden_size),
                    nn.Linear(hidden_size, mlp_dim),
                    nn.GELU(),
                    nn.Dropout(dropout_rate),
                    nn.Linear(mlp_dim, hidden_size),
                )

        self.cross_attention: BidirectionalCrossAttention | None = None
        self.meta_norm: nn.Module | None = None
        if fusion == "xattn":
            self.cross_attention = BidirectionalCrossAttention(
                hidden_size,
                num_layers,
                num_heads,
                mlp_ratio=mlp_ratio,
                dropout_rate=dropout_rate,
                save_attn=True,
                readout=xattn_readout,
            )
        if fusion == "xattn" or mixing > 0:
            self.meta_norm = nn.LayerNorm(hidden_size)

        # texture token (monai_bone.networks.nets.texture_token): one more image token, its own pooled stream
        self.texture: TextureToken | None = None
        self.texture_norm: nn.Module | None = None
        texture_features = int(texture_features) if use_image else 0  # fusion="clinical" has no image to read
        if texture_features > 0:
            self.texture = TextureToken(2, in_channels, hidden_size, int(texture_features), int(texture_kernel_size))
            self.texture_norm = nn.LayerNorm(hidden_size)
        # linear skip: output += Linear(standardised texture energies, clinical values, presence), zero at the start
        self.skip: nn.Module | None = None
        n_skip = texture_features + (2 * self.num_fields if use_clinical else 0)
        if linear_skip and n_skip > 0:  # fusion="image" without texture has nothing to skip
            self.skip = nn.Linear(n_skip, out_channels)
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)

        n_streams = int(use_image) + int(use_clinical) + int(texture_features > 0)
        self.head = FullyConnectedNet(
            hidden_size * n_streams, out_channels, hidden_channels=head_channels, dropout=head_dropout
        )
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

        if use_image and image_encoder == "resnet34" and weights is not None:
            from ..weights import load_pretrained

            entry = pretrained_entry("resnet34", pretrained_registry)
            load_pretrained(self, resolve_pretrained(weights, "resnet34", pretrained_registry))
            norm_default = {"mean": entry.mean, "std": entry.std}
        self.input_norm = InputNormalisation.from_setting(input_norm, in_channels, norm_default)

    def set_target_stats(self, mean: float, std: float) -> XAttnBMD:
        """Set the ``target_mean``/``target_std`` buffers (e.g. from the training fold) and return the network.

        ``train.json`` calls this on the built ``network_def``, so parsing ``network_def`` alone (``monai.bundle.load``,
        ``verify_net_in_out``) needs no data; trained values travel in the checkpoint either way.

        Raises:
            ValueError: non-positive ``std``.
        """
        if not std > 0:
            raise ValueError(f"target_std must be positive, got {std}.")
        self.target_mean.fill_(float(mean))
        self.target_std.fill_(float(std))
        return self

    def pretrained_backbone(self) -> tuple[nn.Module, str]:
        """The module torchvision ResNet weights go into, for :func:`~monai_bone.networks.load_pretrained`.

        Raises:
            ValueError: for ``fusion="clinical"`` (no image encoder).
        """
        if self.foundation_encoder is not None:
            return self.foundation_encoder, "dinov2"
        if self.encoder is None:
            raise ValueError("XAttnBMD(fusion='clinical') has no image encoder to load weights into.")
        return self.encoder, "resnet"

    def _image_tokens(self, image: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor], int, int]:  # noqa: UP045
        """``(B, N, d)`` image tokens (with the positional embedding), the CLS token of a ViT encoder (else None) and
        the token-grid size."""
        image = self.input_norm(image)
        vit = self.foundation_encoder
        if vit is not None and self.image_proj is not None:
            patches, cls, gh, gw = vit(image)
            return self.image_proj(patches), self.image_proj(cls), gh, gw
        enc = self.encoder
        proj = self.image_proj
        if enc is None or proj is None:
            raise ValueError("this XAttnBMD variant has no image encoder.")
        x = enc.act(enc.bn1(enc.conv1(image)))
        if not enc.no_max_pool:
            x = enc.maxpool(x)
        x = enc.layer4(enc.layer3(enc.layer2(enc.layer1(x))))
        x = proj(x)
        h, w = x.shape[2], x.shape[3]
        pos = self.pos_embed
        if pos is not None:
            if pos.shape[2] != h or pos.shape[3] != w:
                pos = F.interpolate(pos, size=(h, w), mode="bilinear", align_corners=False)
            x = x + pos
        return x.flatten(2).transpose(1, 2), None, h, w

    def _clinical_mask(
        self,
        image: torch.Tensor,
        clinical: torch.Tensor,
        clinical_mask: Optional[torch.Tensor],  # noqa: UP045
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if clinical.dim() != 2 or clinical.shape[1] != self.num_fields:
            raise ValueError("clinical must have shape (B, number of clinical_fields).")
        if clinical.shape[0] != image.shape[0]:
            raise ValueError("clinical and image must have the same batch size.")
        present = ~torch.isnan(clinical)
        if clinical_mask is not None:
            if clinical_mask.shape != clinical.shape:
                raise ValueError("clinical_mask must have the same shape as clinical.")
            present = present & (clinical_mask != 0)
        values = torch.where(present, clinical, torch.zeros_like(clinical))
        return values, present

    def _run(
        self,
        image: torch.Tensor,
        clinical: Optional[torch.Tensor],  # noqa: UP045
        clinical_mask: Optional[torch.Tensor],  # noqa: UP045
    ) -> tuple[torch.Tensor, list[int], torch.Tensor]:
        """Output, feature-map size ``[h, w]`` and the field mask (empty when the variant has no clinical branch)."""
        feats: list[torch.Tensor] = []
        grid: list[int] = [0, 0]
        present = torch.zeros(0, dtype=torch.bool)
        img_tokens: Optional[torch.Tensor] = None  # noqa: UP045
        img_cls: Optional[torch.Tensor] = None  # noqa: UP045
        texture_z: Optional[torch.Tensor] = None  # noqa: UP045
        if self.encoder is not None or self.foundation_encoder is not None:
            img_tokens, img_cls, h, w = self._image_tokens(image)
            grid = [h, w]
            tex = self.texture
            if tex is not None:
                tex_token, texture_z = tex(image)
                img_tokens = torch.cat([img_tokens, tex_token], dim=1)  # the last image token
        meta_tokens: Optional[torch.Tensor] = None  # noqa: UP045
        clin_values: Optional[torch.Tensor] = None  # noqa: UP045
        enc = self.field_encoder
        if enc is not None:
            if clinical is None:  # no metadata at all: every field goes through the missing-field path
                clinical = torch.full(
                    (image.shape[0], self.num_fields), float("nan"), dtype=image.dtype, device=image.device
                )
            values, present = self._clinical_mask(image, clinical, clinical_mask)
            meta_tokens = enc(values, present)
            clin_values = values

        xattn = self.cross_attention
        image_norm = self.image_norm
        meta_norm = self.meta_norm
        clinical_mlp = self.clinical_mlp
        if xattn is not None and img_tokens is not None and meta_tokens is not None:
            img_tokens, meta_tokens = xattn(img_tokens, meta_tokens, present)
        if self.concat_mixing > 0 and img_tokens is not None and meta_tokens is not None:
            img_tokens, meta_tokens = self.image_mixer(img_tokens), self.meta_mixer(meta_tokens)  # no cross-modal step
        texture_norm = self.texture_norm
        if img_tokens is not None and texture_norm is not None:  # split the texture token off the grid tokens
            feats_tex = texture_norm(img_tokens[:, -1])
            img_tokens = img_tokens[:, :-1]
        else:
            feats_tex = None
        if img_cls is not None and xattn is None and image_norm is not None:  # ViT: CLS token for concat / image
            feats.append(image_norm(img_cls))
        elif img_tokens is not None and image_norm is not None:
            feats.append(image_norm(img_tokens.mean(dim=1)))
        if feats_tex is not None:
            feats.append(feats_tex)
        if meta_tokens is not None:
            if meta_norm is not None:  # xattn / mixed concat: pooled metadata stream
                feats.append(meta_norm(meta_tokens.mean(dim=1)))
            elif clinical_mlp is not None:  # concat / clinical: MLP over the pooled field tokens
                feats.append(clinical_mlp(meta_tokens.mean(dim=1)))
        out = self.head(torch.cat(feats, dim=1))
        skip = self.skip
        if skip is not None:
            parts: list[torch.Tensor] = []
            if texture_z is not None:
                parts.append(texture_z)
            if clin_values is not None:
                parts += [clin_values.to(out.dtype), present.to(out.dtype)]
            out = out + skip(torch.cat(parts, dim=1))
        # rescale in the buffers' precision (float32), not in an autocast fp16/bf16 head output
        out = self.target_mean + self.target_std * out.to(self.target_mean.dtype)
        return out, grid, present

    def forward(
        self,
        image: torch.Tensor,
        clinical: Optional[torch.Tensor] = None,  # noqa: UP045
        clinical_mask: Optional[torch.Tensor] = None,  # noqa: UP045
    ) -> torch.Tensor:
        """
        Args:
            image: ``(B, in_channels, H, W)``, H and W at least 32 (ignored for ``fusion="clinical"``).
            clinical: ``(B, F)`` clinical vector in ``clinical_fields`` order, NaN where missing; None means every
                field is missing (learned missing tokens, no silent zeros). Ignored for ``fusion="image"``.
            clinical_mask: optional ``(B, F)``, nonzero/True where present; None means ``~isnan(clinical)``.

        Returns:
            ``(B, out_channels)`` BMD in g/cm² (``target_mean + target_std * head``), in the precision of the
            ``target_mean`` buffer (float32 also under autocast).

        Raises:
            ValueError: when shapes do not match.
        """
        out, _, _ = self._run(image, clinical, clinical_mask)
        return out

    def attention_maps(
        self, image: torch.Tensor, clinical: torch.Tensor | None = None, clinical_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Attention of the last cross-attention layer, for display (runs a forward pass without gradients).

        Call in eval mode (attention dropout is applied after the maps are taken, but other dropout changes the
        tokens).

        Args:
            image, clinical, clinical_mask: as :meth:`forward`.

        Returns:
            ``"field_weights"``: ``(B, F)`` image-token -> field attention of the last layer, averaged over heads and
            image tokens; sums to 1 over present fields, exactly 0 on missing fields (all 0 if no field is present).
            ``"field_weights_per_layer"``: ``(B, num_layers, F)``, the same for every layer.
            ``"image_map"``: ``(B, h, w)`` field -> image attention of the last layer (feature-map grid, H/32 x W/32),
            averaged over heads and present fields (all fields when none is present); sums to 1.
            ``"prediction"``: ``(B, out_channels)``, the forward output.

        Raises:
            ValueError: when ``fusion != "xattn"``.
        """
        if self.cross_attention is None:
            raise ValueError(f"attention_maps needs fusion='xattn', this network has fusion={self.fusion!r}.")
        with torch.no_grad():
            out, (h, w), present = self._run(image, clinical, clinical_mask)
            i2m, m2i = self.cross_attention.attention()
            per_layer = torch.stack([a.mean(dim=(1, 2)) for a in i2m], dim=1)  # (B, L, F)
            weight = present.to(out.dtype)
            none_present = weight.sum(dim=1, keepdim=True) == 0
            weight = torch.where(none_present, torch.ones_like(weight), weight)
            field_to_image = m2i[-1].mean(dim=1)[:, :, : h * w]  # (B, F, N); the texture token left out
            field_to_image = field_to_image / field_to_image.sum(dim=2, keepdim=True).clamp_min(1e-12)
            image_map = (field_to_image * weight.unsqueeze(-1)).sum(dim=1) / weight.sum(dim=1, keepdim=True)
        return {
            "field_weights": per_layer[:, -1],
            "field_weights_per_layer": per_layer,
            "image_map": image_map.reshape(image_map.shape[0], h, w),
            "prediction": out,
        }
