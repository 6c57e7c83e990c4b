"""Predictions on the training folds, read so that the evaluation report chooses its thresholds there.

Operating points (Youden's cut, the cut giving 90 % sensitivity) chosen on the split being scored are optimistic.
:class:`~monai_bone.handlers.BoneReportWriter` therefore accepts ``threshold_predictions``: a CSV of predictions the
model (or the same recipe) made on the training folds, e.g. the ``oof_predictions.csv`` of ``monai-bone cv``
(columns ``variant, fold, id, true, pred``) or a ``predictions.csv`` this report wrote for the training part
(hip ``pred_bmd, true_bmd``; knee ``prob_<class>, true_index``). The file is outside input: its size is bounded and
every problem is reported with the file name.

The two knee formats say "positive" differently: a report's ``true_index`` is the class index (positive when it equals
the positive class's index), while a CV file's ``true`` is already the screening reference "last class
(osteoporosis) vs rest" as 0/1 and ``pred`` that class's probability, for a 2- and a 3-class model alike. Both are read
into the same 0/1 truth, so a 3-class report does not choose its cuts on all-negative labels.
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


def _positive_truth(p: Path, true: np.ndarray, true_col: str, positive_index: int, n_classes: int | None) -> np.ndarray:
    """1.0 for the positive class, else 0.0, from a class-index column or a CV file's 0/1 reference."""
    if true_col != "true":
        return (np.rint(true) == positive_index).astype(float)
    odd = sorted(set(true[(true != 0.0) & (true != 1.0)].tolist()))
    if odd:
        raise ValueError(
            f"threshold_predictions {p}: column 'true' of a classification CV file must be 0/1 (positive class vs "
            f"rest), found {odd[:5]}."
        )
    if n_classes is not None and positive_index != n_classes - 1:
        raise ValueError(
            f"threshold_predictions {p}: a CV file scores the last class (index {n_classes - 1}) vs rest, but the "
            f"report's positive class is index {positive_index}; set the report's positive class to the last one or "
            "pass a predictions.csv with prob_<class> and true_index columns."
        )
    return true


def read_reference_predictions(
    path: str | os.PathLike,
    regression: bool,
    positive_name: str | None = None,
    positive_index: int = 1,
    variant: str | None = None,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(pred, true)`` of the studies with both values.

    Args:
        path: the CSV (a first line ``# ...`` is a comment, as in synthetic outputs).
        regression: hip-like task (predicted and true values) or classification (probability of the positive class
            and the true class index).
        positive_name: the positive class name (classification: column ``prob_<name>``).
        positive_index: the positive class index (classification, ``true_index`` column: ``true_index ==
            positive_index`` is positive; a CV file's ``true`` column is already 0/1 for the positive class).
        variant: keep only the rows of this ``variant`` (CV files hold several rows per study).
        n_classes: the model's class count (classification): a CV file scores the last class, so another positive
            class is refused.

    Returns:
        ``pred`` (regression: value; classification: positive-class probability) and ``true`` (regression: value;
        classification: 1.0 for the positive class, else 0.0).

    Raises:
        ValueError: naming the file, for a missing/too large file, missing columns, several variants without
            ``variant``, no usable row, or (classification CV file) a ``true`` other than 0/1 or a positive class
            other than the last.
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
        true = _positive_truth(p, true, true_col, positive_index, n_classes)
    return pred, true
