"""Ignite handler: the linear-probe start of XAttn-BMD's linear skip before the first iteration (LP-FT)."""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn as nn

from monai_bone.networks.nets.linear_probe import collect_probe_data, fit_linear_skip, fix_texture

__all__ = ["LinearProbeStart"]

logger = logging.getLogger(__name__)


def _gather(data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every rank's studies, in rank order (each rank then fits the same ridge on the same rows)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return data
    shards: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(shards, data)
    return {k: torch.cat([s[k] for s in shards]) for k in data}


class LinearProbeStart:
    """At ``STARTED`` of a fresh run, fit the network's linear skip on one pass over the training data
    (:mod:`monai_bone.networks.nets.linear_probe`); a resumed run (iteration > 0) keeps its trained weights.

    Args:
        network: ``XAttnBMD(linear_skip=True)``, or its ``DistributedDataParallel`` wrapper.
        data_loader: the training data loader (its augmentation applies, as in training).
        prepare_batch: the trainer's ``prepare_batch`` (``(image, target, args, kwargs)``).
        device: device the batches go to.
        enabled: False does nothing (the bundle's ``linear_probe`` setting).
        freeze_texture: keep the texture filters and standardisation the skip was fitted on (see
            :func:`~monai_bone.networks.nets.linear_probe.fit_linear_skip`).

    Raises:
        ValueError: when enabled on a network without a linear skip (``linear_skip: false``, or neither texture nor
            clinical input).
    """

    def __init__(
        self,
        network: nn.Module,
        data_loader: Any,
        prepare_batch: Any,
        device: str | torch.device = "cpu",
        enabled: bool = True,
        freeze_texture: bool = True,
    ) -> None:
        self.network = network.module if isinstance(network, nn.parallel.DistributedDataParallel) else network
        if enabled and getattr(self.network, "skip", None) is None:
            raise ValueError(
                "linear_probe: true needs a network with a linear skip (set linear_skip: true; the network also "
                "needs texture_features > 0 or clinical fields)"
            )
        self.data_loader = data_loader
        self.prepare_batch = prepare_batch
        self.device = torch.device(device)
        self.enabled = bool(enabled)
        self.freeze_texture = bool(freeze_texture)
        self.summary: dict[str, Any] | None = None

    def attach(self, engine: Any) -> None:
        """Register on ``STARTED`` (nothing when disabled)."""
        from ignite.engine import Events

        if self.enabled:
            engine.add_event_handler(Events.STARTED, self)

    def _batches(self) -> Any:
        for batchdata in self.data_loader:
            image, target, args, kwargs = self.prepare_batch(batchdata, self.device, False)
            yield image, target, args or (), kwargs or {}

    def __call__(self, engine: Any) -> None:
        if engine.state.iteration > 0:  # resumed: the checkpoint holds the fitted skip and statistics
            logger.info("linear probe start skipped: resumed at iteration %d", engine.state.iteration)
            if self.freeze_texture:
                fix_texture(self.network)
            return
        was_training = self.network.training
        self.network.eval()
        try:
            data = _gather(collect_probe_data(self.network, self._batches()))
            self.summary = fit_linear_skip(self.network, data, self.freeze_texture)
        finally:
            self.network.train(was_training)
