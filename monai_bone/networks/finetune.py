"""Fine-tuning controls: the backbone of a network, freezing it, and optimiser parameter groups with a backbone
learning-rate multiplier (discriminative learning rates).

The backbone is what pretrained weights go into: the DenseNet169 ``features`` of
:class:`~monai_bone.networks.HybridAttentionNet`, the image encoder (ResNet34 or RAD-DINO) of
:class:`~monai_bone.networks.XAttnBMD`, a MONAI ``DenseNet``'s ``features`` or a MONAI ``ResNet`` without ``fc``.
Wrappers (``DistributedDataParallel``'s ``module``, ``torch.compile``'s ``_orig_mod``) are looked through.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from monai.networks.nets import DenseNet, ResNet

__all__ = ["backbone_parameters", "param_groups", "set_backbone_trainable", "unwrap_network"]


def unwrap_network(net: nn.Module) -> nn.Module:
    """``net`` without ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(net, "_orig_mod", None) or (
            net.module if isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else None
        )
        if inner is None:
            return net
        net = inner


def backbone_parameters(net: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``net``'s pretrained backbone (see the module docstring).

    Raises:
        ValueError: when the network has no backbone (e.g. ``XAttnBMD(fusion="clinical")``).
    """
    inner = unwrap_network(net)
    if hasattr(inner, "pretrained_backbone"):
        module = inner.pretrained_backbone()[0]
        return list(module.parameters())
    if isinstance(inner, DenseNet):
        return list(inner.features.parameters())
    if isinstance(inner, ResNet):
        return [p for n, p in inner.named_parameters() if not n.startswith("fc.")]
    raise ValueError(f"{type(inner).__name__}: no pretrained backbone to freeze or to give its own learning rate")


def set_backbone_trainable(net: nn.Module, trainable: bool) -> int:
    """Switch ``requires_grad`` of the backbone parameters; returns how many tensors were switched.

    A frozen parameter gets no gradient, so optimisers (Adam, AdamW, SGD) leave it and its weight decay alone.
    BatchNorm running statistics of the backbone keep adapting in training mode (as fastai's ``train_bn``).
    """
    params = backbone_parameters(net)
    for p in params:
        p.requires_grad_(trainable)
    return len(params)


def param_groups(net: nn.Module, lr: float, backbone_lr_multiplier: float = 1.0) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the backbone at ``lr * backbone_lr_multiplier``, everything else at ``lr``.

    Args:
        net: the network (wrappers are looked through; the parameters are the wrapped network's own).
        lr: learning rate of the head, fusion and attention layers.
        backbone_lr_multiplier: factor for the pretrained backbone (e.g. 0.1); must be >= 0. Networks without a
            backbone (``fusion="clinical"``) give one group.

    Returns:
        ``[{"params": backbone, "lr": lr * m, "name": "backbone"}, {"params": rest, "lr": lr, "name": "head"}]``
        (empty groups left out), for any ``torch.optim`` optimiser; LR schedulers scale both groups alike.

    Raises:
        ValueError: for a negative multiplier.
    """
    if not backbone_lr_multiplier >= 0:
        raise ValueError(f"backbone_lr_multiplier must be >= 0, got {backbone_lr_multiplier}")
    try:
        backbone = backbone_parameters(net)
    except ValueError:
        backbone = []
    ids = {id(p) for p in backbone}
    rest = [p for p in unwrap_network(net).parameters() if id(p) not in ids]
    groups = [
        {"params": backbone, "lr": float(lr) * float(backbone_lr_multiplier), "name": "backbone"},
        {"params": rest, "lr": float(lr), "name": "head"},
    ]
    return [g for g in groups if g["params"]]
