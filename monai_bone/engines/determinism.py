"""Reproducible training that stays reproducible across a kill and resume.

``monai.utils.set_determinism(seed)`` at start-up seeds the random generators once; after that, the generator states
depend on everything drawn so far. A run resumed from the checkpoint of epoch N starts from the *initial* states, so
its epoch N + 1 would shuffle and augment differently from an uninterrupted run. :class:`EpochSeedHandler` removes
that dependence: at the start of every epoch it re-seeds Python's ``random``, NumPy, torch (all devices) and the random
transforms of the training dataset from ``(seed, epoch, rank)``. The DataLoader's shuffling (drawn from torch's
generator when the epoch's iterator is created), the worker seeds and the augmentation of epoch ``e`` then depend
only on the seed and ``e``, so a resumed run repeats an uninterrupted run's trajectory exactly (on the same machine,
software and thread count), given the restored network, optimizer and scheduler states.

:func:`set_deterministic` is the start-up part: ``set_determinism(seed)`` plus, when asked (``deterministic`` bundle
option), ``torch.use_deterministic_algorithms(True, warn_only=True)`` -- CPU kernels are deterministic already; on
CUDA it selects deterministic kernels where they exist and warns where they do not.
"""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.data.utils import set_rnd
from monai.utils import set_determinism

from .distributed import get_rank

__all__ = ["EpochSeedHandler", "epoch_seed", "set_deterministic"]

logger = logging.getLogger(__name__)

_MAX_SEED = 2**31 - 1


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A well-mixed seed for one epoch of one rank (``numpy.random.SeedSequence`` of the three numbers).

    Args:
        seed: the run's seed.
        epoch: the epoch number (1-based, as Ignite counts).
        rank: the distributed rank (ranks draw different augmentations).

    Returns:
        An integer in ``[0, 2**31 - 1)``.
    """
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(rank)]).generate_state(1)[0]
    return int(state) % _MAX_SEED


def set_deterministic(seed: int, deterministic: bool = False) -> None:
    """Seed everything at start-up and optionally ask torch for deterministic algorithms.

    Args:
        seed: the run's seed (``monai.utils.set_determinism``: ``random``, NumPy, torch, cuDNN deterministic mode).
        deterministic: also call ``torch.use_deterministic_algorithms(True, warn_only=True)`` (and set
            ``CUBLAS_WORKSPACE_CONFIG`` for CUDA when unset).
    """
    set_determinism(seed=int(seed))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        logger.info("deterministic algorithms on (seed %d)", int(seed))


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
