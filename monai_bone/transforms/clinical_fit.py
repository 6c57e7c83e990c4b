"""Clinical-vector statistics of a training fold, saved beside the model and reloaded for evaluation and inference.

The clinical vector is normalised with statistics fitted on the training records only (never on validation or
test records), saved as ``models/clinical_stats.json`` so that ``evaluate.json`` and ``inference.json`` normalise
new studies exactly as the trained network saw them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from monai_bone.constants import CLINICAL_FIELDS
from monai_bone.data.datasets import is_rank_zero
from monai_bone.transforms.clinical_stats import ClinicalStats

__all__ = ["fit_clinical_stats", "load_clinical_stats"]

logger = logging.getLogger(__name__)


def fit_clinical_stats(
    records: Sequence[dict],
    path: str | os.PathLike | None = None,
    fields: Sequence[str] = CLINICAL_FIELDS,
    save: bool = True,
):
    """Fit :class:`monai_bone.transforms.ClinicalStats` on training records and save them.

    Args:
        records: the training records (never the validation fold).
        path: where to save the statistics (JSON, written atomically); None keeps them in memory only.
        fields: clinical fields of the vector, in order.
        save: write ``path``; in a distributed run only rank 0 writes (every rank fits the same statistics).

    Returns:
        The fitted ``ClinicalStats``.

    Raises:
        ValueError: when ``records`` is empty.
    """
    if not records:
        raise ValueError("cannot fit clinical statistics on an empty training set")
    stats = ClinicalStats.fit(list(records), fields=tuple(fields))
    if path is not None and save and is_rank_zero():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        stats.save(path)
        logger.info("clinical statistics of %d training records saved to %s", len(records), path)
    return stats


def load_clinical_stats(path: str | os.PathLike):
    """Load the statistics a training run saved.

    Args:
        path: the ``clinical_stats.json`` written by training.

    Returns:
        The ``ClinicalStats``.

    Raises:
        FileNotFoundError: when ``path`` does not exist (the bundle has not been trained).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"clinical statistics not found: {path}; train the bundle first (training writes them beside model.pt)"
        )
    return ClinicalStats.load(path)
