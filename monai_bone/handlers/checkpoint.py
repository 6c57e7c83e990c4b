"""Checkpoint files: atomic saving, safe loading with clear errors, and resuming from the last good epoch.

The bundles save, every epoch, ``checkpoint_epoch=N.pt`` holding the network, optimizer, LR scheduler, trainer and
training-history state (:class:`~monai_bone.handlers.ResumableCheckpointSaver`, ``save_interval=1, n_saved=1``),
written atomically (:func:`atomic_torch_save`: temporary file, fsync, rename), so a killed run leaves the previous
complete file, never a truncated one. :func:`find_last_checkpoint` still verifies candidates newest first and
**skips** a file that does not load (a copy damaged later, a file from an older writer), with a logged warning naming
it; resuming therefore starts from the newest intact checkpoint (or from scratch, logged, when there is none). The
bundle's ``CheckpointLoader`` is disabled when it returns ``None``.

Every checkpoint is read with ``torch.load(..., weights_only=True)`` (:func:`load_checkpoint`): a file that holds
pickled Python objects (a whole pickled ``nn.Module``, arbitrary classes) is refused, because unpickling can run
code. A file given explicitly (``--ckpt_path`` of evaluation and inference, via :class:`SafeCheckpointLoader`) that is
missing, empty, truncated, corrupt or pickled gives a :class:`CheckpointFileError` naming the file and the problem
instead of a pickle/zip traceback.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.handlers import Checkpoint
from monai.handlers import CheckpointLoader
from monai.networks.utils import copy_model_state

from monai_bone.engines.distributed import is_main_process
from monai_bone.utils.io import TEMP_SUFFIX, atomic_write_json, atomic_write_stream

from .checkpoint_groups import upgrade_param_groups

__all__ = [
    "CheckpointFileError",
    "SafeCheckpointLoader",
    "atomic_torch_save",
    "checkpoint_epoch",
    "find_last_checkpoint",
    "require_checkpoint",
    "load_checkpoint",
    "resume_checkpoint",
]

logger = logging.getLogger(__name__)

_EPOCH_RE = re.compile(r"_epoch=(\d+)\.pt$")
_GLOBAL_RE = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


class CheckpointFileError(ValueError):
    """A checkpoint file that cannot be used; the message starts with the file name."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (temporary file in the same folder, fsync, rename).

    Args:
        obj: what to save (state dicts).
        path: destination file.

    Returns:
        The destination path.
    """
    return atomic_write_stream(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint with ``torch.load(weights_only=True)`` and turn every failure into a clear error.

    Args:
        path: the checkpoint file.
        map_location: as for ``torch.load``.

    Returns:
        The loaded object (a state dict or a dict of state dicts).

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        CheckpointFileError: naming the file when it is a folder, empty, truncated or corrupt, or holds pickled
            Python objects (refused: weights-only loading never runs code from a checkpoint).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointFileError(f"{path}: is a folder, not a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointFileError(f"{path}: empty file (0 bytes); not a checkpoint (an interrupted copy?)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        found = _GLOBAL_RE.search(text)
        if found or "Unsupported class" in text or "Unsupported global" in text:
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointFileError(
                f"{path}: refused: the file holds pickled Python objects{what}, not only tensors; monai-bone loads "
                "checkpoints with torch.load(weights_only=True) because unpickling can run code. If you trust the "
                "file, re-save its weights as a state dict: torch.save(model.state_dict(), path)"
            ) from None
        detail = text.split("WeightsUnpickler error:")[-1] if "WeightsUnpickler error:" in text else text
        detail = _short(detail.split("Check the documentation")[0])
        raise CheckpointFileError(f"{path}: not a PyTorch checkpoint (corrupt or another format: {detail})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointFileError(
            f"{path}: truncated or corrupt checkpoint ({type(err).__name__}: {_short(err)}); use an intact copy or "
            "the previous epoch's file"
        ) from None
    except Exception as err:  # noqa: BLE001 - any other decoder failure: same clear message
        raise CheckpointFileError(f"{path}: cannot load checkpoint ({type(err).__name__}: {_short(err)})") from None


def require_checkpoint(path: str | os.PathLike) -> Path:
    """Check that a checkpoint path names an existing file (before an engine runs).

    Raises:
        FileNotFoundError: naming the path when it does not exist or is a folder.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"checkpoint {path} {what}")
    return path


def _short(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SafeCheckpointLoader(CheckpointLoader):
    """MONAI ``CheckpointLoader`` that reads the file through :func:`load_checkpoint`.

    Same arguments and behaviour as ``monai.handlers.CheckpointLoader`` (which also loads with
    ``weights_only=True``), but a missing, empty, truncated, corrupt or pickled-object file raises
    :class:`CheckpointFileError` / ``FileNotFoundError`` naming the file, not a zip or unpickling traceback.
    """

    def __init__(self, load_path: str, load_dict: Mapping, *args: Any, **kwargs: Any) -> None:
        require_checkpoint(load_path)  # a missing file is reported when the config is read, not mid-run
        super().__init__(load_path, load_dict, *args, **kwargs)

    def __call__(self, engine) -> None:
        """Load the checkpoint into ``load_dict`` (see ``monai.handlers.CheckpointLoader.__call__``)."""
        checkpoint = load_checkpoint(self.load_path, map_location=self.map_location)
        if not isinstance(checkpoint, Mapping):
            raise CheckpointFileError(f"{self.load_path}: holds a {type(checkpoint).__name__}, not a state dict")
        checkpoint = dict(checkpoint)
        k, _ = list(self.load_dict.items())[0]
        if len(self.load_dict) == 1 and k not in checkpoint:  # a bare state dict of a single object
            checkpoint = {k: checkpoint}
        if not self.strict_shape:
            for name in [n for n, obj in self.load_dict.items() if not isinstance(obj, torch.nn.Module)]:
                logger.warning("strict_shape is False: loading only the networks, skipping %r", name)
                self.load_dict.pop(name)
            for name, obj in self.load_dict.items():
                checkpoint[name] = copy_model_state(obj, checkpoint, inplace=False)[0]
        try:
            upgrade_param_groups(self.load_dict, checkpoint, self.load_path)  # one-group optimiser states of old runs
        except ValueError as err:
            raise CheckpointFileError(str(err)) from None
        prior_max_epochs = engine.state.max_epochs
        try:
            Checkpoint.load_objects(to_load=self.load_dict, checkpoint=checkpoint, strict=self.strict)
        except (KeyError, RuntimeError, ValueError) as err:
            raise CheckpointFileError(
                f"{self.load_path}: does not fit this configuration ({_short(err, 600)})"
            ) from None
        if prior_max_epochs is not None and engine.state.epoch > prior_max_epochs:
            raise ValueError(
                f"{self.load_path}: epoch count {engine.state.epoch} in the checkpoint is larger than max_epochs "
                f"{prior_max_epochs}; train with more epochs to continue from it"
            )
        engine.state.max_epochs = prior_max_epochs
        self.logger.info(f"Restored all variables from {self.load_path}")


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
            ckpt = load_checkpoint(path, map_location="cpu")
        except (CheckpointFileError, OSError) as err:  # skipped, with the reason logged
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
        for stale in folder.glob(f".*{TEMP_SUFFIX}") if folder.is_dir() else ():
            logger.info("removing %s left by an interrupted save", stale)
            stale.unlink(missing_ok=True)
        if not resume:
            for old in folder.glob(f"{prefix}_epoch=*.pt"):
                logger.info("resume is off: removing earlier checkpoint %s", old)
                old.unlink(missing_ok=True)
        if info is not None:
            atomic_write_json(info_path, info)
    if path is None:
        logger.info("training from scratch (no checkpoint to resume in %s)", folder)
    return path
