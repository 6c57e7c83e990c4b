"""Training history: one JSON file with the per-epoch loss, learning rate and metrics, rewritten atomically.

:class:`TrainingHistory` keeps its entries as checkpointable state (put it into the trainer checkpoint's
``save_dict``), so a run resumed from the checkpoint of epoch N continues the history from epoch N: the file always
describes the epochs whose weights a checkpoint holds, plus at most the one epoch a killed run finished after its
last checkpoint (overwritten when the resumed run repeats that epoch). The file is complete when ``"completed"`` is
true and ``epochs`` lists 1..``max_epochs``.

File format (``format`` = :data:`HISTORY_FORMAT`)::

    {"format": "monai-bone-training-history/1", "max_epochs": 3, "completed": true, "synthetic": true,
     "epochs": [{"epoch": 1, "iteration": 6, "loss": 0.41, "lr": 1e-4, "lr_backbone": 1e-5, "lr_head": 1e-4,
                 "time_s": 2.1, "train_r2": -0.3, "val_r2": 0.1, "val_mae": 0.08, ...}, ...]}

``loss`` is the mean of the iteration losses of the epoch (of this rank in distributed runs); ``lr`` the learning rate
during the epoch of the group named ``head`` (:func:`monai_bone.networks.param_groups`; else of the first group) and,
when the optimiser has several groups or named ones, ``lr_<name>`` that of each group (``lr_group<i>`` for an unnamed
group ``i``): with ``backbone_lr_multiplier`` != 1 the backbone and the head learn at different rates. ``time_s`` is
the epoch's wall time; metric names are those of the trainer's and the validator's ``state.metrics`` (validator values
only on epochs where it ran). With ``plot_path`` the loss and every learning rate are also drawn per epoch
(:func:`monai_bone.metrics.history_plot.plot_training_history`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from monai.handlers import from_engine

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.utils.io import atomic_write_json
from monai_bone.utils.jsonsafe import json_safe

__all__ = ["HISTORY_FORMAT", "TrainingHistory", "group_learning_rates"]

logger = logging.getLogger(__name__)

#: ``format`` value of the history file.
HISTORY_FORMAT: str = "monai-bone-training-history/1"


def _number(value: Any) -> Any:
    """A JSON-safe number (NaN/inf -> None, via :func:`~monai_bone.utils.json_safe`), a list of them, or None for
    what is not numeric."""
    value = json_safe(value)
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return None


def group_learning_rates(optimizer: Any) -> dict[str, float]:
    """The history's learning-rate entries of ``optimizer``: ``lr`` (the group named ``head``, else the first group)
    and, when there are several groups or named ones, ``lr_<name>`` per group (``lr_group<i>`` when unnamed).

    Returns:
        ``{}`` for an object without ``param_groups``.
    """
    groups = list(getattr(optimizer, "param_groups", None) or [])
    if not groups:
        return {}
    heads = [g for g in groups if g.get("name") == "head"]
    out = {"lr": float((heads or groups)[0]["lr"])}
    if len(groups) > 1 or any(g.get("name") for g in groups):
        out.update({f"lr_{g.get('name') or f'group{i}'}": float(g["lr"]) for i, g in enumerate(groups)})
    return out


class TrainingHistory:
    """Record per-epoch loss, learning rate and metrics of a trainer into a JSON file, written atomically.

    Args:
        path: the JSON file (e.g. ``models/train_metrics.json``).
        validator: the validation evaluator whose ``state.metrics`` to record (epochs where it ran).
        loss_transform: how to get the loss from ``engine.state.output``; default
            ``monai.handlers.from_engine(["loss"], first=True)``.
        synthetic: mark the file as describing synthetic data.
        save_rank: the rank that writes the file in distributed runs.
        plot_path: also draw the loss and the learning rate of every group per epoch into this PNG (None: no plot).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        validator: Engine | None = None,
        loss_transform: Callable | None = None,
        synthetic: bool = False,
        save_rank: int = 0,
        plot_path: str | os.PathLike | None = None,
    ) -> None:
        self.path = Path(path)
        self.validator = validator
        self.loss_transform = loss_transform or from_engine(["loss"], first=True)
        self.synthetic = bool(synthetic)
        self.save_rank = int(save_rank)
        self.plot_path = Path(plot_path) if plot_path is not None else None
        self.epochs: list[dict[str, Any]] = []
        self.completed = False
        self._sum = 0.0
        self._count = 0
        self._start = 0.0
        self._lrs: dict[str, float] = {}

    def attach(self, engine: Engine) -> None:
        """Register on ``engine`` (attach after the ValidationHandler so this epoch's validation is included)."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def state_dict(self) -> dict[str, Any]:
        """Checkpointable state: the recorded epochs."""
        return {"epochs": [dict(e) for e in self.epochs]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the epochs recorded up to the checkpoint."""
        self.epochs = [dict(e) for e in state_dict.get("epochs", [])]
        self.completed = False

    def _epoch_started(self, engine: Engine) -> None:
        self._sum, self._count = 0.0, 0
        self._start = time.perf_counter()
        self.completed = False
        self._lrs = group_learning_rates(getattr(engine, "optimizer", None))  # the rates used during this epoch

    def _iteration_completed(self, engine: Engine) -> None:
        try:
            loss = self.loss_transform(engine.state.output)
            if isinstance(loss, (tuple, list)) and len(loss) == 1:  # from_engine on a dict output gives a 1-tuple
                loss = loss[0]
            loss = float(loss)
        except (TypeError, ValueError, KeyError, IndexError):
            return
        if math.isfinite(loss):
            self._sum += loss
            self._count += 1

    def _epoch_completed(self, engine: Engine) -> None:
        epoch = int(engine.state.epoch)
        entry: dict[str, Any] = {
            "epoch": epoch,
            "iteration": int(engine.state.iteration),
            "loss": self._sum / self._count if self._count else None,
        }
        entry.update(self._lrs)
        entry["time_s"] = round(time.perf_counter() - self._start, 3)
        for name, value in engine.state.metrics.items():
            entry[str(name)] = _number(value)
        validator = self.validator
        if validator is not None and getattr(validator.state, "epoch", None) == epoch:
            for name, value in validator.state.metrics.items():
                entry[str(name)] = _number(value)
        # a resumed run repeats the epochs after its checkpoint: drop what a killed run wrote for them
        self.epochs = [e for e in self.epochs if e.get("epoch", 0) < epoch] + [entry]
        self._write(engine)

    def _completed(self, engine: Engine) -> None:
        self.completed = True
        self._write(engine)

    def _write(self, engine: Engine) -> None:
        import ignite.distributed as idist

        if idist.get_rank() != self.save_rank:
            return
        doc: dict[str, Any] = {
            "format": HISTORY_FORMAT,
            "max_epochs": int(engine.state.max_epochs or 0),
            "completed": self.completed,
            "synthetic": self.synthetic,
        }
        if self.synthetic:
            doc["note"] = SYNTHETIC_NOTE
        doc["epochs"] = self.epochs
        atomic_write_json(self.path, doc)
        if self.plot_path is not None:
            from monai_bone.metrics.history_plot import plot_training_history  # matplotlib only when plotting

            plot_training_history(doc, self.plot_path)
