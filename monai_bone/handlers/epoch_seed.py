"""Re-seed every random generator at each epoch start, so a resumed run repeats an uninterrupted one.

The reasoning is in :mod:`monai_bone.engines.determinism` (the seed derivation :func:`~monai_bone.engines.epoch_seed`
and the start-up :func:`~monai_bone.engines.set_deterministic` stay there); this module holds the Ignite handler.
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data.utils import set_rnd

from monai_bone.engines.determinism import epoch_seed
from monai_bone.engines.distributed import get_rank

__all__ = ["EpochSeedHandler"]

logger = logging.getLogger(__name__)


class EpochSeedHandler:
    """Re-seed all random generators, and the dataset's random transforms, at the start of every epoch.

    Attach it to the trainer before any other ``EPOCH_STARTED`` handler that draws random numbers (first in the
    bundle's ``train#handlers``).

    Args:
        seed: the run's seed.
        dataloader: the training DataLoader; default the engine's ``data_loader`` (MONAI workflows) or
            ``state.dataloader``.
    """

    def __init__(self, seed: int, dataloader=None) -> None:
        self.seed = int(seed)
        self.dataloader = dataloader

    def attach(self, engine: Engine) -> None:
        """Register on ``engine``'s ``EPOCH_STARTED``."""
        if not engine.has_event_handler(self, Events.EPOCH_STARTED):
            engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        """Seed ``random``, NumPy, torch and the dataset transforms for ``engine.state.epoch``."""
        s = epoch_seed(self.seed, engine.state.epoch, get_rank())
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)  # all devices
        loader = self.dataloader or getattr(engine, "data_loader", None) or getattr(engine.state, "dataloader", None)
        transform = getattr(getattr(loader, "dataset", None), "transform", None)
        if transform is not None:
            set_rnd(transform, s)
        logger.debug("epoch %d: random generators seeded with %d", engine.state.epoch, s)
