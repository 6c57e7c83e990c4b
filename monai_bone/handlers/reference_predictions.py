"""Predictions on the training folds, read so that the evaluation report chooses its thresholds there.

Operating points (Youden's cut, the cut giving 90 % sensitivity) chosen on the split being scored are optimistic.
:class:`~monai_bone.handlers.BoneReportWriter` therefore accepts ``threshold_predictions``: a CSV of predictions the
model (or the same recipe) made on the training folds, e.g. the ``oof_predictions.csv`` of ``monai-bone cv``
(columns ``variant, fold, id, true, pred``) or a ``predictions.csv`` this report wrote for the training part
(hip ``pred_bmd, true_bmd``; knee ``prob_<class>, true_index``). The file is outside input: its size is bounded and
every problem is reported with the file name.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["MAX_REFERENCE_BYTES", "read_reference_predictions"]

#: Largest accepted file (64 MiB: ~1 M rows).
MAX_REFERENCE_BYTES: int = 64 * 1024 * 1024


def _float(value: str | None) -> float:
    try:
        v = float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan
    return v


def _columns(fields: Sequence[str], regression: bool, positive_name: str | None) -> tuple[str, str]:
    if "pred" in fields and "true" in fields:
        return "pred", "true"
    if regression and "pred_bmd" in fields and "true_bmd" in fields:
        return "pred_bmd", "true_bmd"
    if not regression and f"prob_{positive_name}" in fields and "true_index" in fields:
        return f"prob_{positive_name}", "true_index"
    want = "pred_bmd, true_bmd" if regression else f"prob_{positive_name}, true_index"
    raise ValueError(f"has neither 'pred, true' nor '{want}' columns (found {list(fields)})")


def read_reference_predictions(
    path: str | os.PathLike,
    regression: bool,
    positive_name: str | None = None,
    positive_index: int = 1,
    variant: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(pred, true)`` of the studies with both values.

    Args:
        path: the CSV (a first line ``# ...`` is a comment, as in synthetic outputs).
        regression: hip-like task (predicted and true values) or classification (probability of the positive class
            and the true class index).
        positive_name: the positive class name (classification: column ``prob_<name>``).
        positive_index: the positive class index (classification: ``true == positive_index`` is positive).
        variant: keep only the rows of this ``variant`` (CV files hold several rows per study).

    Returns:
        ``pred`` (regression: value; classification: positive-class probability) and ``true`` (regression: value;
        classification: 1.0 for the positive class, else 0.0).

    Raises:
        ValueError: naming the file, for a missing/too large file, missing columns, several variants without
            ``variant``, or no usable row.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"threshold_predictions {p}: no such file.")
    if p.stat().st_size > MAX_REFERENCE_BYTES:
        raise ValueError(f"threshold_predictions {p}: larger than {MAX_REFERENCE_BYTES} bytes.")
    text = p.read_text(encoding="utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    try:
        pred_col, true_col = _columns(reader.fieldnames or [], regression, positive_name)
    except ValueError as e:
        raise ValueError(f"threshold_predictions {p}: {e}.") from None
    rows = list(reader)
    if "variant" in (reader.fieldnames or []):
        variants = sorted({r.get("variant") or "" for r in rows})
        if variant is None and len(variants) > 1:
            raise ValueError(f"threshold_predictions {p}: rows of several variants {variants}; set threshold_variant.")
        if variant is not None:
            rows = [r for r in rows if r.get("variant") == variant]
    pred = np.array([_float(r.get(pred_col)) for r in rows])
    true = np.array([_float(r.get(true_col)) for r in rows])
    ok = np.isfinite(pred) & np.isfinite(true)
    if not ok.any():
        raise ValueError(f"threshold_predictions {p}: no row with both {pred_col!r} and {true_col!r}.")
    pred, true = pred[ok], true[ok]
    if not regression:
        true = (np.rint(true) == positive_index).astype(float)
    return pred, true
