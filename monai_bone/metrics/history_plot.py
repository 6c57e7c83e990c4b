"""Plot of a training history (``monai_bone.handlers.TrainingHistory``): loss and every learning rate per epoch.

Drawn headless like :mod:`monai_bone.metrics.plots`; the learning rates (``lr`` and each group's ``lr_<name>``, e.g.
``lr_backbone`` / ``lr_head``) share a log-scaled right axis, so a backbone learning ten times slower shows as such.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .plots import _new_figure, _save

__all__ = ["lr_series", "plot_training_history"]


def lr_series(epochs: list[Mapping[str, Any]]) -> dict[str, list[float | None]]:
    """Learning-rate name -> its value per epoch: each group's ``lr_<name>`` when recorded, else ``lr``."""
    names = sorted({k for e in epochs for k in e if k.startswith("lr_")}) or (
        ["lr"] if any("lr" in e for e in epochs) else []
    )
    return {name: [e.get(name) for e in epochs] for name in names}


def plot_training_history(history: Mapping[str, Any], path: str | os.PathLike, title: str = "Training") -> Path:
    """Loss (left axis) and the learning rate of every parameter group (right axis, log scale) per epoch.

    Args:
        history: the history document (``{"epochs": [...], "synthetic": ...}``).
        path: the PNG written (atomically).
        title: the figure title ("SYNTHETIC - " is prefixed for a synthetic history).

    Returns:
        ``path``.
    """
    epochs = [e for e in history.get("epochs", []) if isinstance(e, Mapping)]
    x = [int(e.get("epoch", i + 1)) for i, e in enumerate(epochs)]
    fig, ax = _new_figure((6.4, 4.2))
    loss = [e.get("loss") for e in epochs]
    ax.plot(x, [float("nan") if v is None else v for v in loss], "o-", color="black", label="loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    rates = lr_series(epochs)
    if rates:
        right = ax.twinx()
        for name, values in rates.items():
            right.plot(x, [float("nan") if v is None else v for v in values], "s--", label=name)
        if all(v is not None and v > 0 for values in rates.values() for v in values):
            right.set_yscale("log")
        right.set_ylabel("learning rate")
        right.legend(loc="upper right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, ax, title, bool(history.get("synthetic")), path)
