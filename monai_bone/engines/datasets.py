"""Dataset factory for the bundles: decode each radiograph once, then reuse it every epoch.

``cache="memory"`` (default) is MONAI's ``CacheDataset``: the deterministic transforms (load, normalise, resize,
clinical vector) run once and random augmentation runs every epoch. ``cache="disk"`` is ``PersistentDataset``
with a cache folder that survives between runs (and between cross-validation folds); its file names hash both the
record and the deterministic transforms (their parameters, including fitted clinical statistics), so a changed
image size or a different training fold never reads stale entries. ``cache="none"`` decodes every time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import pickle_hashing

__all__ = ["CACHE_MODES", "make_dataset"]

logger = logging.getLogger(__name__)

CACHE_MODES: tuple[str, ...] = ("memory", "disk", "none")


def _transform_hash(transforms: Sequence) -> bytes:
    """Hash of the deterministic transforms; falls back to their class names and reprs when they cannot pickle."""
    try:
        return pickle_hashing(list(transforms))
    except (pickle.PicklingError, TypeError, AttributeError) as err:
        logger.warning("disk cache: transforms cannot be pickled (%s); hashing their names and reprs instead", err)
        text = "|".join(
            f"{type(t).__module__}.{type(t).__qualname__}:{getattr(t, '__dict__', {})!r}" for t in transforms
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest().encode()


def make_dataset(
    data: Sequence[dict],
    transform: Callable,
    cache: str = "memory",
    cache_dir: str | os.PathLike | None = None,
    cache_rate: float = 1.0,
    num_workers: int | None = 0,
    progress: bool = False,
) -> Dataset:
    """Build the dataset of one split.

    Args:
        data: records (dictionaries with an ``image`` path and clinical fields).
        transform: the preprocessing ``Compose``.
        cache: ``"memory"`` (``CacheDataset``), ``"disk"`` (``PersistentDataset`` under ``cache_dir``) or ``"none"``.
        cache_dir: folder of the disk cache; required for ``cache="disk"``.
        cache_rate: fraction of records kept in memory for ``cache="memory"``.
        num_workers: threads that fill the memory cache (0 or None: in the main thread).
        progress: show a progress bar while caching.

    Returns:
        A MONAI dataset.

    Raises:
        ValueError: for an unknown ``cache`` mode or ``cache="disk"`` without ``cache_dir``.
    """
    cache = str(cache).lower()
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    data = list(data)
    if cache == "memory":
        return CacheDataset(
            data=data, transform=transform, cache_rate=cache_rate, num_workers=num_workers, progress=progress
        )
    if cache == "disk":
        if not cache_dir:
            raise ValueError("cache='disk' needs a cache_dir (e.g. --cache_dir /path/to/cache)")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return PersistentDataset(data=data, transform=transform, cache_dir=cache_dir, hash_transform=_transform_hash)
    return Dataset(data=data, transform=transform)
