"""Dataset factory for the bundles: decode each radiograph once, then reuse it every epoch.

``cache="memory"`` (default) is MONAI's ``CacheDataset``: the deterministic transforms (load, normalise, resize,
clinical vector) run once and random augmentation runs every epoch. ``cache="disk"`` is ``PersistentDataset``
with a cache folder that survives between runs (and between cross-validation folds); its file names hash both the
record and the deterministic transforms (their parameters, including fitted clinical statistics), so a changed
image size or a different training fold never reads stale entries. ``cache="none"`` decodes every time.

Unreadable images in training (a file the header-only index accepted but whose pixel data cannot be decoded, e.g.
corrupt compressed fragments): with ``cache="memory"`` the study is dropped while the cache is filled, with a logged
warning naming the file and the reason, and listed in ``rejects_path`` (``path, reason, detail``) when given -- the
other studies train as usual. The reason is ``unreadable_image``, or the code of an image guard
(:class:`~monai_bone.transforms.XrayGuardd`: ``blank_image``, ``wrong_body_part``, ``wrong_view``).
With ``cache="disk"``/``"none"`` (images decoded lazily during the epoch) the run stops at the first such file with
the loader's error naming it; re-index or remove the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import torch.distributed as dist
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import pickle_hashing

from monai_bone.utils.io import atomic_write_csv

__all__ = ["CACHE_MODES", "SkippingCacheDataset", "is_rank_zero", "make_dataset"]

logger = logging.getLogger(__name__)

CACHE_MODES: tuple[str, ...] = ("memory", "disk", "none")


def is_rank_zero() -> bool:
    """True on rank 0 or outside a distributed run: the process that writes shared files (rejects, statistics).

    ``torch.distributed`` directly: ``monai_bone.engines.is_main_process`` sits above data/ in the layers.
    """
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


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


class _Failed:
    """Cache slot of a record whose deterministic transforms raised (``reason``: the guard's code, if any)."""

    def __init__(self, message: str, reason: str = "unreadable_image") -> None:
        self.message = message
        self.reason = reason


def _root_error(err: BaseException) -> BaseException:
    # MONAI's Compose wraps the real error in RuntimeError("applying transform ...") ... from err
    while isinstance(err, RuntimeError) and str(err).startswith("applying transform") and err.__cause__:
        err = err.__cause__
    return err


def _error_message(err: BaseException, record: object) -> str:
    err = _root_error(err)
    message = " ".join(str(err).split()) or type(err).__name__
    image = record.get("image") if isinstance(record, dict) else None
    if image is not None and str(image) not in message:
        message = f"{image}: {type(err).__name__}: {message}"
    return message


class SkippingCacheDataset(CacheDataset):
    """MONAI ``CacheDataset`` that drops the records whose deterministic transforms fail while the cache is filled.

    Arguments are those of ``CacheDataset``. After construction, :attr:`skipped` lists ``(record, message)`` of the
    dropped records (each is logged as a warning), and ``len(dataset)`` counts only the usable ones. Records beyond
    the cached part (``cache_rate < 1``) are transformed lazily and are not checked.
    """

    skipped: list[tuple[dict, str]]
    skipped_reasons: list[str]

    def _load_cache_item(self, idx: int):
        try:
            return super()._load_cache_item(idx)
        except Exception as err:  # noqa: BLE001 - any per-study failure: the study is dropped and reported
            reason = getattr(_root_error(err), "reason", None) or "unreadable_image"
            return _Failed(_error_message(err, self.data[idx]), str(reason))

    def set_data(self, data: Sequence) -> None:
        """Set the data and fill the cache, dropping (and logging) the records that fail."""
        super().set_data(data)
        self.skipped = []
        self.skipped_reasons = []
        cache = self._cache
        if self.hash_as_key or not isinstance(cache, list):
            return
        failed = {i for i, item in enumerate(cache) if isinstance(item, _Failed)}
        if not failed:
            return
        for i in sorted(failed):
            logger.warning("study skipped, cannot be loaded: %s", cache[i].message)
            self.skipped.append((self.data[i], cache[i].message))
            self.skipped_reasons.append(cache[i].reason)
        keep = [i for i in range(len(cache)) if i not in failed]
        self.data = [self.data[i] for i in keep] + list(self.data[len(cache) :])
        self._cache = [cache[i] for i in keep]
        self.cache_num = len(self._cache)
        logger.warning("%d of %d studies skipped (unreadable images)", len(failed), len(failed) + len(self.data))


def make_dataset(
    data: Sequence[dict],
    transform: Callable,
    cache: str = "memory",
    cache_dir: str | os.PathLike | None = None,
    cache_rate: float = 1.0,
    num_workers: int | None = 0,
    progress: bool = False,
    rejects_path: str | os.PathLike | None = None,
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
        rejects_path: ``cache="memory"``: CSV (``path, reason, detail``) listing the studies dropped because their
            image could not be loaded; written (possibly empty) by the main process, atomically.

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
        dataset = SkippingCacheDataset(
            data=data, transform=transform, cache_rate=cache_rate, num_workers=num_workers, progress=progress
        )
        if rejects_path and is_rank_zero():
            rows = [
                {"path": str(record.get("image", "")), "reason": reason, "detail": message}
                for (record, message), reason in zip(dataset.skipped, dataset.skipped_reasons)
            ]
            atomic_write_csv(rejects_path, rows, ("path", "reason", "detail"))
        if not len(dataset):
            raise ValueError(
                f"none of the {len(data)} studies could be loaded (first: {dataset.skipped[0][1]})"
                if dataset.skipped
                else "no studies to load"
            )
        return dataset
    if cache == "disk":
        if not cache_dir:
            raise ValueError("cache='disk' needs a cache_dir (e.g. --cache_dir /path/to/cache)")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        return PersistentDataset(data=data, transform=transform, cache_dir=cache_dir, hash_transform=_transform_hash)
    return Dataset(data=data, transform=transform)
