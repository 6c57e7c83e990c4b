"""Input normalisation as the first layer of a network: the statistics travel with the weights.

A backbone initialised from ImageNet weights expects ImageNet-normalised inputs. Keeping ``(x - mean) / std`` inside
the network, with ``mean`` and ``std`` as persistent buffers, stores the statistics in every checkpoint
(``models/model.pt``) and in every TorchScript / ONNX export, so bundle training, validation, ``inference.json``, the
MONAI Label app and exported models apply the same normalisation without a second copy of it in any config. The
bundle preprocessing still delivers images in [0, 1] (the input contract of ``metadata.json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

__all__ = ["InputNormalisation", "channel_stats"]


def channel_stats(
    mean: Sequence[float], std: Sequence[float], in_channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel statistics for ``in_channels`` inputs from RGB statistics, matching the first-conv adaptation of
    :func:`~monai_bone.networks.load_pretrained`.

    3 channels: as given. 1 channel (RGB filters summed): the mean of the channel means and of the channel SDs (the
    grey image normalised once stands for its three normalised copies; an approximation, exact only when the three
    channel statistics are equal -- use ``in_channels=3`` for the exact ImageNet input). ``k`` channels (filters
    repeated cyclically): the statistics repeated cyclically.

    Raises:
        ValueError: for mismatched lengths, a non-positive SD or ``in_channels < 1``.
    """
    mean, std = [float(m) for m in mean], [float(s) for s in std]
    if len(mean) != len(std) or not mean or in_channels < 1 or min(std) <= 0:
        raise ValueError(f"need matching non-empty mean/std with positive SDs and in_channels >= 1, got {mean}, {std}")
    if in_channels == len(mean):
        return tuple(mean), tuple(std)
    if in_channels == 1:
        return (sum(mean) / len(mean),), (sum(std) / len(std),)
    return tuple(mean[i % len(mean)] for i in range(in_channels)), tuple(std[i % len(std)] for i in range(in_channels))


class InputNormalisation(nn.Module):
    """``(x - mean[c]) / std[c]`` per channel, with ``mean`` and ``std`` as persistent buffers.

    Identity by default (mean 0, SD 1). A state dict without these buffers (a checkpoint written before they
    existed, trained without normalisation) loads as the identity.

    Args:
        in_channels: input channels ``C``.
        mean: ``C`` means (or None: zeros).
        std: ``C`` standard deviations, positive (or None: ones).
    """

    def __init__(self, in_channels: int, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        mean_t = torch.zeros(in_channels) if mean is None else torch.tensor([float(m) for m in mean])
        std_t = torch.ones(in_channels) if std is None else torch.tensor([float(s) for s in std])
        if mean_t.shape != (in_channels,) or std_t.shape != (in_channels,) or not bool((std_t > 0).all()):
            raise ValueError(f"mean and std need {in_channels} values each, SDs positive; got {mean}, {std}")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    @classmethod
    def from_setting(
        cls, setting: Any, in_channels: int, default: Mapping[str, Sequence[float]] | None
    ) -> InputNormalisation:
        """Build from a network's ``input_norm`` argument.

        Args:
            setting: ``"auto"`` (``default``, i.e. the backbone's statistics when it is pretrained, else identity),
                None / ``"none"`` (identity), ``"imagenet"`` (ImageNet statistics), or ``{"mean": [...], "std": [...]}``
                (RGB or per-channel statistics).
            in_channels: input channels.
            default: the statistics ``"auto"`` stands for (None: identity).
        """
        from ..pretrained import IMAGENET_MEAN, IMAGENET_STD

        if isinstance(setting, str):
            key = setting.strip().lower()
            if key == "auto":
                setting = default
            elif key == "imagenet":
                setting = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
            elif key in ("none", "null", ""):
                setting = None
            else:
                raise ValueError(f"input_norm must be 'auto', 'imagenet', None or {{'mean', 'std'}}, got {setting!r}")
        if setting is None:
            return cls(in_channels)
        if not isinstance(setting, Mapping) or set(setting) != {"mean", "std"}:
            raise ValueError(f"input_norm must be 'auto', 'imagenet', None or {{'mean', 'std'}}, got {setting!r}")
        mean, std = channel_stats(setting["mean"], setting["std"], in_channels)
        return cls(in_channels, mean, std)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errs):
        for name, fill in (("mean", 0.0), ("std", 1.0)):
            if prefix + name not in state_dict:
                state_dict[prefix + name] = torch.full_like(getattr(self, name), fill)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x - self.mean.to(x.dtype).view(shape)) / self.std.to(x.dtype).view(shape)
