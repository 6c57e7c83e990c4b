"""Ignite handler freezing a network's pretrained backbone for the first epochs (train the head first)."""

from __future__ import annotations

import logging
from typing import Any

import torch.nn as nn

from monai_bone.networks.finetune import set_backbone_trainable

__all__ = ["FreezeBackbone"]

logger = logging.getLogger(__name__)


class FreezeBackbone:
    """Freeze the backbone (``requires_grad=False``) during epochs ``1..epochs``, unfreeze it from ``epochs + 1``.

    Decided at every ``EPOCH_STARTED`` from the epoch number alone, so a resumed run freezes exactly as an
    uninterrupted one. ``epochs=0`` does nothing (the backbone is never touched). Frozen parameters get no gradient,
    so the optimiser leaves them (and their weight decay) alone; the backbone's BatchNorm running statistics keep
    adapting. The backbone is the module pretrained weights go into (see :mod:`monai_bone.networks.finetune`).
    Single-process training: DistributedDataParallel fixes the set of trainable parameters when it wraps the network.

    Args:
        network: the trained network.
        epochs: number of leading epochs with a frozen backbone.
    """

    def __init__(self, network: nn.Module, epochs: int = 0) -> None:
        if int(epochs) < 0:
            raise ValueError(f"freeze_backbone_epochs must be >= 0, got {epochs}")
        if int(epochs) > 0 and isinstance(network, nn.parallel.DistributedDataParallel):
            raise ValueError("freeze_backbone_epochs > 0 is not supported with DistributedDataParallel training")
        self.network = network
        self.epochs = int(epochs)
        self._frozen: bool | None = None

    def attach(self, engine: Any) -> None:
        """Register on ``EPOCH_STARTED`` (nothing is registered for ``epochs=0``)."""
        from ignite.engine import Events

        if self.epochs > 0:
            engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Any) -> None:
        frozen = engine.state.epoch <= self.epochs
        if frozen != self._frozen:
            try:
                n = set_backbone_trainable(self.network, not frozen)
            except ValueError as e:  # no backbone (XAttnBMD fusion="clinical"): nothing to freeze
                logger.info("freeze_backbone_epochs=%d: %s; nothing frozen", self.epochs, e)
                self.epochs = 0
                return
            logger.info(
                "epoch %d: backbone %s (%d tensors)", engine.state.epoch, "frozen" if frozen else "trainable", n
            )
            self._frozen = frozen
