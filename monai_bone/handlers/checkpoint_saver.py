"""A ``CheckpointSaver`` whose files are written atomically and whose bookkeeping survives a resumed training run."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from ignite.handlers import DiskSaver
from monai.handlers import CheckpointSaver

from .checkpoint import atomic_torch_save

__all__ = ["ResumableCheckpointSaver"]

logger = logging.getLogger(__name__)


class _AtomicDiskSaver(DiskSaver):
    """Ignite ``DiskSaver`` (optionally with a fixed file name, like MONAI's) writing through
    :func:`~monai_bone.engines.atomic_torch_save`: temporary file, fsync, rename, usual file permissions."""

    def __init__(self, dirname: str, filename: str | None = None) -> None:
        super().__init__(dirname=dirname, require_empty=False, atomic=True)
        self.filename = filename

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        super().__call__(checkpoint, self.filename or filename, metadata)

    def remove(self, filename: str) -> None:
        super().remove(self.filename or filename)

    def _save_func(self, checkpoint: Mapping, path: Path, func: Callable) -> None:
        atomic_torch_save(checkpoint, path)


class ResumableCheckpointSaver(CheckpointSaver):
    """MONAI ``CheckpointSaver`` that can be saved in (and restored from) another checkpoint, and that keeps only
    the newest ``n_saved`` interval checkpoints on disk even across resumed runs.

    The bundles keep the best model as ``models/model.pt`` (a plain network state dict, ``key_metric_filename``) and
    put that saver into the every-epoch training checkpoint, so that a resumed run knows the best key-metric value
    so far and does not overwrite ``model.pt`` with a worse model at its first validation. The every-epoch saver
    (``save_interval=1, n_saved=1``) of a resumed run would otherwise leave the previous run's last file behind;
    after each interval save, older ``<prefix>_epoch=N.pt`` files of this folder (epoch numbers up to the one just
    saved, beyond the newest ``n_saved``) are removed.

    Every file (interval checkpoints, ``model.pt``, the final checkpoint) is written atomically -- MONAI's saver
    writes in place, so a process killed while saving would leave a truncated file.

    Arguments are those of ``monai.handlers.CheckpointSaver``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for ckpt in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if ckpt is not None:
                ckpt.save_handler = _AtomicDiskSaver(self.save_dir, getattr(ckpt.save_handler, "filename", None))

    def state_dict(self) -> dict:
        """The key-metric tracking state (empty when ``save_key_metric`` is False)."""
        if self._key_metric_checkpoint is None:
            return {}
        return dict(self._key_metric_checkpoint.state_dict())

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the key-metric tracking state written by :meth:`state_dict` (an empty dict is a no-op)."""
        if state_dict:
            super().load_state_dict(state_dict)

    def interval_completed(self, engine) -> None:
        """Save the interval checkpoint, then delete older interval checkpoints beyond ``n_saved``."""
        super().interval_completed(engine)
        n_saved = getattr(self._interval_checkpoint, "n_saved", None)
        if not n_saved:
            return
        last = self._interval_checkpoint.last_checkpoint
        if last is None:
            return
        last = Path(str(last))
        m = re.match(r"^(.*_(?:epoch|iteration)=)(\d+)\.pt$", last.name)
        if m is None:
            return
        current = int(m.group(2))
        pattern = re.compile(re.escape(m.group(1)) + r"(\d+)\.pt$")
        found = []
        for f in Path(self.save_dir).iterdir():
            p = pattern.match(f.name)
            if p is not None and int(p.group(1)) <= current:
                found.append((int(p.group(1)), f))
        for _, old in sorted(found, reverse=True)[int(n_saved) :]:
            logger.info("removing older checkpoint %s", old)
            old.unlink(missing_ok=True)
