"""Resuming training from the last checkpoint that MONAI's ``CheckpointSaver`` wrote.

The bundles save, every epoch, ``checkpoint_epoch=N.pt`` holding the network, optimizer, LR scheduler and trainer
state (``CheckpointSaver(save_interval=1, n_saved=1)``). :func:`find_last_checkpoint` finds the newest one that loads,
so a killed run (which may leave a truncated newest file beside the previous one) resumes from the last good epoch;
the bundle's ``CheckpointLoader`` is disabled when it returns ``None``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch

__all__ = ["checkpoint_epoch", "find_last_checkpoint", "resume_checkpoint"]

logger = logging.getLogger(__name__)

_EPOCH_RE = re.compile(r"_epoch=(\d+)\.pt$")


def checkpoint_epoch(path: str | os.PathLike) -> int | None:
    """The epoch number in a ``CheckpointSaver`` interval file name (``checkpoint_epoch=12.pt`` → 12), else None."""
    m = _EPOCH_RE.search(Path(path).name)
    return int(m.group(1)) if m else None


def find_last_checkpoint(
    ckpt_dir: str | os.PathLike, prefix: str = "checkpoint", verify: bool = True, required_keys: tuple = ("trainer",)
) -> str | None:
    """Path of the newest loadable epoch checkpoint in ``ckpt_dir``, or None when there is none.

    Args:
        ckpt_dir: folder the training ``CheckpointSaver`` writes to (the bundle's ``models/``).
        prefix: file name prefix of the interval checkpoints (``checkpoint`` gives ``checkpoint_epoch=N.pt``).
        verify: load each candidate (newest first) and skip files that cannot be read or lack ``required_keys``,
            logging a warning; a process killed while writing leaves such a file.
        required_keys: keys a usable checkpoint must hold.

    Returns:
        The path as a string, or None.
    """
    folder = Path(ckpt_dir)
    if not folder.is_dir():
        return None
    candidates = []
    for p in folder.glob(f"{prefix}_epoch=*.pt"):
        epoch = checkpoint_epoch(p)
        if epoch is not None and p.is_file():
            candidates.append((epoch, p))
    for epoch, path in sorted(candidates, reverse=True):
        if not verify:
            return str(path)
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file is skipped, with the reason logged
            logger.warning("skipping unreadable checkpoint %s (%s)", path, err)
            continue
        missing = [k for k in required_keys if not isinstance(ckpt, dict) or k not in ckpt]
        if missing:
            logger.warning("skipping checkpoint %s: it lacks %s", path, missing)
            continue
        logger.info("resuming from %s (epoch %d)", path, epoch)
        return str(path)
    return None


def resume_checkpoint(
    ckpt_dir: str | os.PathLike,
    resume: bool = True,
    run_info: dict | None = None,
    prefix: str = "checkpoint",
) -> str | None:
    """Decide where training starts: the last checkpoint of the same run, or from scratch.

    ``run_info`` (e.g. datalist and validation fold) is kept in ``<ckpt_dir>/run_info.json``; resuming a checkpoint
    written for a different run (another fold of a cross-validation, another datalist) would silently mix folds, so
    it is refused. With ``resume=False`` earlier epoch checkpoints are deleted, so that a later resume cannot pick up
    a stale epoch of the previous run. Only rank 0 writes or deletes files.

    Args:
        ckpt_dir: the training checkpoint folder.
        resume: continue from the last checkpoint when there is one.
        run_info: JSON-serialisable description of the run (compared on resume, then saved).
        prefix: file name prefix of the interval checkpoints.

    Returns:
        The checkpoint path to load, or None to start from scratch.

    Raises:
        ValueError: when the last checkpoint belongs to a run with different ``run_info``.
    """
    import json

    from monai_bone.utils.io import atomic_write_json

    from .distributed import is_main_process

    folder = Path(ckpt_dir)
    info_path = folder / "run_info.json"
    info = None if run_info is None else json.loads(json.dumps(run_info, default=str))
    path = find_last_checkpoint(folder, prefix=prefix) if resume else None
    if path is not None and info is not None and info_path.is_file():
        previous = json.loads(info_path.read_text(encoding="utf-8"))
        changed = {k: (previous.get(k), v) for k, v in info.items() if previous.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise ValueError(
                f"{path} was written by a different run ({detail}); train into another ckpt_dir "
                "(e.g. --ckpt_dir models/fold1) or start over with --resume false"
            )
    if is_main_process():
        if not resume:
            for old in folder.glob(f"{prefix}_epoch=*.pt"):
                logger.info("resume is off: removing earlier checkpoint %s", old)
                old.unlink(missing_ok=True)
        if info is not None:
            atomic_write_json(info_path, info)
    if path is None:
        logger.info("training from scratch (no checkpoint to resume in %s)", folder)
    return path
