"""Reproducible training that stays reproducible across a kill and resume.

``monai.utils.set_determinism(seed)`` at start-up seeds the random generators once; after that, the generator states
depend on everything drawn so far. A run resumed from the checkpoint of epoch N starts from the *initial* states, so
its epoch N + 1 would shuffle and augment differently from an uninterrupted run. the Ignite handler
:class:`monai_bone.handlers.EpochSeedHandler` (built on :func:`epoch_seed`) removes
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

import numpy as np
import torch
from monai.utils import set_determinism

__all__ = ["epoch_seed", "set_deterministic"]

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
