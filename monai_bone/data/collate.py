"""Batch collation that tolerates missing values in datalist records.

Datalist records carry identifiers and clinical fields that may be ``None`` (a missing weight, a PNG without a
SOP Instance UID, an unlabelled study). PyTorch's default collation refuses ``None``; :func:`collate_records` keeps
such keys (and string keys) as plain per-study lists and collates everything else with MONAI's
``list_data_collate``, so the engines' ``decollate_batch`` hands every study its own values back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.data import list_data_collate

__all__ = ["collate_records"]


def _loose(value: Any) -> bool:
    return value is None or isinstance(value, str)


def collate_records(batch: Sequence[Any]) -> Any:
    """Collate a list of record dictionaries into a batch dictionary.

    Args:
        batch: the samples of one batch (dictionaries after the preprocessing transforms).

    Returns:
        A dictionary: tensors, arrays and numbers stacked by ``list_data_collate``; keys whose values include ``None``,
        strings or are missing in some samples kept as lists (one entry per sample, ``None`` where missing).
        Non-dictionary batches go to ``list_data_collate`` unchanged.
    """
    if not batch or not all(isinstance(b, Mapping) for b in batch):
        return list_data_collate(batch)
    keys: list = []
    for b in batch:
        keys.extend(k for k in b if k not in keys)
    loose = {k for k in keys if any(k not in b or (_loose(b[k]) and not isinstance(b[k], torch.Tensor)) for b in batch)}
    tight = [{k: v for k, v in b.items() if k not in loose} for b in batch]
    out = dict(list_data_collate(tight)) if tight and tight[0] else {}
    for k in keys:
        if k in loose:
            out[k] = [b.get(k) for b in batch]
    return out
