"""Load ImageNet-pretrained backbone weights from a local torchvision-format state dict (nothing is downloaded).

Supported backbones and the torchvision files they accept:

* DenseNet (``monai.networks.nets.DenseNet169`` and the ``features`` of
  :class:`~monai_bone.networks.HybridAttentionNet`): torchvision ``densenet169`` keys, both the current layout
  (``features.denseblock1.denselayer1.norm1.weight``) and the legacy one of the published ``.pth`` files
  (``...denselayer1.norm.1.weight``), remapped to MONAI's ``...denselayer1.layers.norm1.weight`` as in
  ``monai.networks.nets.densenet._load_state_dict``. ``classifier.*`` is skipped.
* ResNet (``monai.networks.nets.ResNet``, e.g. the encoder of :class:`~monai_bone.networks.XAttnBMD`): torchvision
  ``resnet34`` keys are MONAI's keys already (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``...);
  ``fc.*`` is skipped. torchvision's downsample convolutions have no bias, so build MONAI ResNets with
  ``bias_downsample=False`` (XAttnBMD does) or the ``downsample.0.bias`` keys are reported missing.

The first convolution is adapted to the model's input channels: 1 channel = sum over the RGB filters (the response
to a grey image whose three channels are equal is unchanged); ``k`` channels = RGB filters repeated cyclically and
scaled by ``3 / k``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from monai.networks.nets import DenseNet, ResNet

__all__ = ["PretrainedLoadReport", "load_pretrained", "torchvision_densenet_key"]

logger = logging.getLogger(__name__)

_DENSE_LAYER = re.compile(
    r"^(.*denselayer\d+)\.(norm|relu|conv)\.?([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$"
)
#: First convolution of each backbone, relative to the backbone module.
_FIRST_CONV = {"densenet": "conv0.weight", "resnet": "conv1.weight"}
#: Classifier keys of torchvision files, skipped (they belong to the 1000-class ImageNet head).
_HEAD_PREFIX = {"densenet": ("classifier.",), "resnet": ("fc.",)}


@dataclass
class PretrainedLoadReport:
    """What :func:`load_pretrained` did; every list holds backbone-relative key names.

    Attributes:
        path: the weights file.
        architecture: ``"densenet"`` or ``"resnet"``.
        loaded: keys copied into the backbone.
        missing: backbone keys the file did not provide (``num_batches_tracked`` counters and the model's own
            classifier, e.g. the ``fc`` of a MONAI ResNet with ``feed_forward=True``, are not listed).
        unexpected: file keys that are not in the backbone (the ImageNet classifier is in ``skipped`` instead).
        mismatched: ``"key: file shape vs model shape"`` for keys of different shape (not loaded).
        skipped: ImageNet classifier keys of the file (``classifier.*`` / ``fc.*``).
        adapted: keys whose input channels were adapted (the first convolution).
    """

    path: str
    architecture: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every backbone tensor was loaded (nothing missing, unexpected or mismatched)."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """One line for logs."""
        return (
            f"{self.path}: {self.architecture} backbone, {len(self.loaded)} tensors loaded, "
            f"{len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {len(self.mismatched)} shape-mismatched, "
            f"{len(self.skipped)} classifier keys skipped, adapted: {self.adapted or 'none'}"
        )


def torchvision_densenet_key(key: str) -> str:
    """Map a torchvision DenseNet key (current or legacy layout) to MONAI's layout; other keys are returned as is.

    Example: ``features.denseblock1.denselayer1.norm.1.weight`` ->
    ``features.denseblock1.denselayer1.layers.norm1.weight``.
    """
    m = _DENSE_LAYER.match(key)
    if m is None:
        return key
    return f"{m.group(1)}.layers.{m.group(2)}{m.group(3)}.{m.group(4)}"


def _resolve_backbone(net: nn.Module) -> tuple[nn.Module, str]:
    if hasattr(net, "pretrained_backbone"):
        return net.pretrained_backbone()
    if isinstance(net, DenseNet):
        return net.features, "densenet"
    if isinstance(net, ResNet):
        return net, "resnet"
    if isinstance(net, nn.Sequential) and hasattr(net, "conv0") and hasattr(net, "denseblock1"):
        return net, "densenet"
    raise ValueError(
        f"load_pretrained: cannot find a DenseNet or ResNet backbone in {type(net).__name__}; pass a "
        "HybridAttentionNet, XAttnBMD, monai DenseNet/ResNet or DenseNet `features`."
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for pickled modules, RuntimeError/EOFError for corrupt files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{path}: not a state dict loadable with torch.load(weights_only=True) (a pickled whole model or a "
            f"corrupt file?); save weights with torch.save(model.state_dict(), path). Reason: {first}"
        ) from e
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{path}: expected a non-empty state dict (name -> tensor), got {type(obj).__name__}.")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: not a state dict, entries without a tensor value: {bad[:5]}")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}


def _adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(in_channels / weight.shape[1])
    return weight.repeat(1, reps, *([1] * (weight.dim() - 2)))[:, :in_channels] * (weight.shape[1] / in_channels)


def load_pretrained(net_or_backbone: nn.Module, path: str | os.PathLike, strict: bool = False) -> PretrainedLoadReport:
    """Load a local torchvision-format DenseNet169 / ResNet34 state dict into a network's backbone.

    Only the backbone is touched (DenseNet ``features``, the ResNet encoder without ``fc``); classifiers, heads,
    attention and fusion layers keep their initialisation. The file is read with ``torch.load(..., weights_only=True)``.

    Args:
        net_or_backbone: :class:`~monai_bone.networks.HybridAttentionNet`, :class:`~monai_bone.networks.XAttnBMD`,
            a ``monai.networks.nets.DenseNet`` / ``ResNet``, or a DenseNet ``features`` module.
        path: the ``.pth`` / ``.pt`` file holding a state dict (optionally under a ``"state_dict"`` key;
            a ``module.`` prefix from DataParallel is removed).
        strict: raise instead of warning when keys are missing, unexpected or shape-mismatched.

    Returns:
        A :class:`PretrainedLoadReport` (also logged: INFO summary, WARNING listing problems).

    Raises:
        FileNotFoundError: when ``path`` is not a file.
        ValueError: when the file is not a state dict (e.g. a pickled whole model), when no tensor in it matches the
            backbone (wrong architecture), when ``strict`` and the load is incomplete, or when the network has no
            supported backbone.
    """
    path = Path(path)
    backbone, arch = _resolve_backbone(net_or_backbone)
    if arch not in _FIRST_CONV:
        raise ValueError(
            f"load_pretrained: {type(net_or_backbone).__name__} has a {arch} image encoder; torchvision files fit "
            "ResNet34 / DenseNet169 only (RAD-DINO weights load with pretrained='rad-dino' or a checkpoint folder)."
        )
    state = _read_state_dict(path)
    report = PretrainedLoadReport(path=str(path), architecture=arch)

    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(_HEAD_PREFIX[arch]):
            report.skipped.append(key)
            continue
        if arch == "densenet":
            key = torchvision_densenet_key(key)
            key = key[len("features.") :] if key.startswith("features.") else key
        mapped[key] = value

    target = backbone.state_dict()
    to_load: dict[str, torch.Tensor] = {}
    for key, value in mapped.items():
        if key not in target:
            report.unexpected.append(key)
            continue
        want = target[key]
        if value.shape == want.shape:
            to_load[key] = value
        elif (
            key == _FIRST_CONV[arch]
            and value.dim() == want.dim()
            and value.shape[0] == want.shape[0]
            and value.shape[2:] == want.shape[2:]
        ):
            to_load[key] = _adapt_first_conv(value, want.shape[1])
            report.adapted.append(f"{key}: {value.shape[1]} -> {want.shape[1]} input channels")
        else:
            report.mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(want.shape)}")
    report.loaded = sorted(to_load)
    mismatched_keys = {m.split(":")[0] for m in report.mismatched}
    report.missing = [
        k
        for k in target
        if k not in to_load
        and k not in mismatched_keys
        and not k.endswith("num_batches_tracked")
        and not k.startswith(_HEAD_PREFIX[arch])  # the model's own classifier (e.g. ResNet fc) keeps its init
    ]
    if not to_load:
        raise ValueError(
            f"{path}: no tensor matches the {arch} backbone of {type(net_or_backbone).__name__} "
            f"({len(report.unexpected)} unexpected keys, e.g. {report.unexpected[:3]}); is it a torchvision "
            f"{'densenet169' if arch == 'densenet' else 'resnet34'} state dict?"
        )
    if strict and not report.complete:
        raise ValueError(
            f"{path}: incomplete load (strict=True): missing {report.missing[:5]}, unexpected {report.unexpected[:5]}, "
            f"mismatched {report.mismatched[:5]}"
        )
    backbone.load_state_dict(to_load, strict=False)
    logger.info("pretrained weights: %s", report.summary())
    if not report.complete:
        logger.warning(
            "pretrained weights %s: incomplete load, missing %s, unexpected %s, mismatched %s",
            path,
            report.missing[:10],
            report.unexpected[:10],
            report.mismatched[:10],
        )
    return report
