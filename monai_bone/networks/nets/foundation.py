"""RAD-DINO image encoder for XAttn-BMD (beyond the paper): a chest-X-ray DINOv2 ViT-B/14 from Hugging Face.

``microsoft/rad-dino`` (MIT licence; Pérez-García et al., Nature Machine Intelligence 2025) is a DINOv2 ViT-B/14
(768-d tokens, 12 layers, 12 heads, 14-px patches, trained at 518 px) published in the ``transformers``
``Dinov2Model`` format. :class:`RadDinoEncoder` wraps that model: a ``(B, C, H, W)`` radiograph in, the patch tokens
``(B, H/14 * W/14, 768)`` and the CLS token ``(B, 768)`` out. Positional embeddings are interpolated by the model, so
any input size that is a multiple of 14 works (224 px: 256 tokens; 518 px: 1369 tokens).

Needs the optional extra ``foundation`` (``pip install "monai-bone[foundation]"``, pulls ``transformers``).
Weights: ``pretrained="rad-dino"`` downloads ``microsoft/rad-dino`` into the Hugging Face cache (``$HF_HOME``)
through ``huggingface_hub`` (files checked against the hub's sha256 / etag), or a local folder holding the checkpoint
(``config.json`` + ``model.safetensors``, optionally ``preprocessor_config.json``) is read without network access.
Without weights the same architecture is built from :data:`RAD_DINO_CONFIG` (plus ``config`` overrides, e.g. a tiny
configuration for tests) with random initialisation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

__all__ = ["RAD_DINO_CONFIG", "RAD_DINO_REPO", "RadDinoEncoder", "fetch_rad_dino"]

RAD_DINO_REPO = "microsoft/rad-dino"
#: ``Dinov2Config`` of the published checkpoint (ViT-B/14); random-init and tiny test encoders start from it.
RAD_DINO_CONFIG: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,
    "num_channels": 3,
    "layerscale_value": 1.0,
    "use_swiglu_ffn": False,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-6,
}
_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise ImportError(
            "the RAD-DINO image encoder needs `transformers`: pip install 'monai-bone[foundation]'"
        ) from e
    return transformers


def fetch_rad_dino(source: str | os.PathLike = RAD_DINO_REPO, revision: str | None = None) -> Path:
    """A local folder holding the RAD-DINO checkpoint: ``source`` itself when it is a folder, else a Hugging Face
    snapshot (downloaded into the hub cache when missing).

    Raises:
        PretrainedWeightsError: when the snapshot is neither cached nor downloadable (the message says what to do).
        FileNotFoundError: when a local folder lacks ``config.json``.
    """
    from ..pretrained import PretrainedWeightsError

    text = str(source)
    if text.lower() in ("rad-dino", "raddino"):
        text = RAD_DINO_REPO
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a RAD-DINO checkpoint folder (config.json missing)")
        return path
    _transformers()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(text, revision=revision, allow_patterns=list(_FILES)))
    except Exception as e:  # offline / blocked: LocalEntryNotFoundError, HTTP errors, connection errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise PretrainedWeightsError(
            f"RAD-DINO weights ({text}) are not in the Hugging Face cache and could not be downloaded ({first}). "
            f"On a connected machine run `huggingface-cli download {text} {' '.join(_FILES)} --local-dir rad-dino` "
            "and pass that folder as `pretrained` (e.g. `--pretrained /data/rad-dino`), or copy the hub cache "
            "($HF_HOME/hub), or train from random initialisation with `--pretrained null`."
        ) from None


class RadDinoEncoder(nn.Module):
    """DINOv2 ViT (RAD-DINO layout) returning patch tokens and the CLS token.

    Args:
        in_channels: image channels; 1 (grey radiograph) is repeated to the model's 3 channels.
        pretrained: None (random initialisation of :data:`RAD_DINO_CONFIG` + ``config``), ``"rad-dino"`` / a hub
            repository id (downloaded, see :func:`fetch_rad_dino`), or a local checkpoint folder.
        config: ``Dinov2Config`` overrides for a randomly initialised encoder (ignored with ``pretrained``).

    Attributes:
        hidden_size: token width.
        patch_size: patch size in pixels.
        image_mean, image_std: the input statistics of the checkpoint's ``preprocessor_config.json`` (None when
            there is none, e.g. random initialisation).
    """

    def __init__(
        self, in_channels: int = 1, pretrained: str | os.PathLike | None = None, config: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        tf = _transformers()
        if in_channels not in (1, 3):
            raise ValueError(f"RadDinoEncoder takes 1 or 3 input channels, got {in_channels}")
        self.in_channels = in_channels
        self.image_mean: list[float] | None = None
        self.image_std: list[float] | None = None
        if pretrained is not None:
            folder = fetch_rad_dino(pretrained)
            self.model = tf.Dinov2Model.from_pretrained(str(folder), local_files_only=True)
            proc = folder / "preprocessor_config.json"
            if proc.is_file():
                data = json.loads(proc.read_text(encoding="utf-8"))
                self.image_mean = [float(v) for v in data.get("image_mean", [])] or None
                self.image_std = [float(v) for v in data.get("image_std", [])] or None
        else:
            cfg = {**RAD_DINO_CONFIG, **dict(config or {})}
            self.model = tf.Dinov2Model(tf.Dinov2Config(**cfg))
        if int(self.model.config.num_channels) != 3:
            raise ValueError("RadDinoEncoder expects a 3-channel DINOv2 checkpoint")
        self.hidden_size = int(self.model.config.hidden_size)
        self.patch_size = int(self.model.config.patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """
        Args:
            x: ``(B, in_channels, H, W)``, H and W multiples of ``patch_size`` (other sizes lose the border).

        Returns:
            patch tokens ``(B, N, hidden_size)``, CLS token ``(B, hidden_size)``, token grid height and width.
        """
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        tokens = self.model(pixel_values=x).last_hidden_state  # layer-normed, (B, 1 + N, D)
        h, w = x.shape[2] // self.patch_size, x.shape[3] // self.patch_size
        return tokens[:, 1:], tokens[:, 0], h, w
