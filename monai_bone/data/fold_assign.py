"""Patient-disjoint, stratified fold assignment for the index (the writing side of :mod:`monai_bone.data.folds`).

:func:`assign_folds` puts every record of one patient (group) in one fold, stratified by class (knee) or by BMD
quantile bins (hip, :func:`bmd_strata`); :func:`fold_strata` picks the strata for a task.
"""

from __future__ import annotations

import logging
import math
import warnings as _warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_BMD_BINS", "assign_folds", "bmd_strata", "fold_strata"]

logger = logging.getLogger(__name__)

#: Most BMD quantile bins used as strata (fewer when there are fewer than ``bins * folds`` patients).
MAX_BMD_BINS: int = 5


def bmd_strata(values: Sequence[float | None], n_bins: int) -> list[int]:
    """Quantile bins of BMD values for stratification (``-1`` for a missing value).

    Args:
        values: BMD per record (``None`` when unknown).
        n_bins: number of quantile bins (1 = a single stratum).

    Returns:
        Bin index per record.
    """
    known = np.asarray([v for v in values if v is not None], dtype=float)
    if n_bins <= 1 or known.size == 0:
        return [0 if v is not None else -1 for v in values]
    edges = np.quantile(known, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return [int(np.searchsorted(edges, v, side="right")) if v is not None else -1 for v in values]


def _sequential_sum(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


def _numpy_sum(values: list[float]) -> float:
    """Sum in the order of numpy's pairwise summation for fewer than 128 values (8 partial sums, then the tail)."""
    n = len(values)
    if n < 8:
        return _sequential_sum(values)
    r = values[:8]
    stop = n - n % 8
    for i in range(8, stop, 8):
        for j in range(8):
            r[j] += values[i + j]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(stop, n):
        total += values[i]
    return total


def _stratified_group_kfold(n_splits: int, seed: int):
    """``StratifiedGroupKFold`` whose inner fold scoring runs in plain floats.

    scikit-learn's ``StratifiedGroupKFold`` scores every candidate fold of every group with a few NumPy calls on tiny
    arrays (~1 ms per patient on a small machine -- more than reading that patient's DICOM header). The subclass
    keeps sklearn's validation, shuffling, group ordering and fold construction and only replaces
    ``_find_best_fold`` with plain float arithmetic in numpy's order of operations: the same criterion (mean over
    classes of the across-fold std of the class fractions), the same floats, so the same tie-break (``np.isclose``
    → fewer samples, then lower fold index) and the same folds (checked against the stock method in the tests).
    If a future sklearn renames the private hook, the stock method runs instead (same result, slower).
    """
    from sklearn.model_selection import StratifiedGroupKFold  # costly import: only when folds are assigned

    class _VectorisedStratifiedGroupKFold(StratifiedGroupKFold):
        def _find_best_fold(self, y_counts_per_fold, y_cnt, group_y_counts):
            # sklearn's criterion in plain floats, with numpy's order of operations (so ties break identically):
            # per class, the std over folds of count / class total, with the group added to candidate fold i
            counts, totals, group = y_counts_per_fold.tolist(), y_cnt.tolist(), group_y_counts.tolist()
            k, n_classes = len(counts), len(totals)
            # numpy reduces a (k, 1) array over axis 0 pairwise, a (k, C > 1) one row by row
            fold_sum = _numpy_sum if n_classes == 1 else _sequential_sum

            def std(vals: list[float]) -> float:
                mean = fold_sum(vals) / k
                return math.sqrt(fold_sum([(v - mean) * (v - mean) for v in vals]) / k)

            fractions = [[counts[j][c] / totals[c] for j in range(k)] for c in range(n_classes)]
            # classes the group does not touch keep these for every candidate; a class whose fold fractions did not
            # change since the previous group (only the chosen fold's touched classes change) keeps its std
            previous = getattr(self, "_previous", None)
            if previous is not None and len(previous[0]) == n_classes:
                base = [old if f == pf else std(f) for f, pf, old in zip(fractions, *previous)]
            else:
                base = [std(f) for f in fractions]
            self._previous = (fractions, base)
            touched = [c for c in range(n_classes) if group[c]]
            best_fold, min_eval, min_samples = None, math.inf, math.inf
            for i in range(k):
                stds = list(base)
                for c in touched:
                    vals = list(fractions[c])
                    vals[i] = (counts[i][c] + group[c]) / totals[c]
                    stds[c] = std(vals)
                fold_eval, n_samples = _numpy_sum(stds) / n_classes, sum(counts[i])
                close = math.isfinite(min_eval) and abs(fold_eval - min_eval) <= 1e-8 + 1e-5 * abs(min_eval)
                if fold_eval < min_eval or (close and n_samples < min_samples):
                    best_fold, min_eval, min_samples = i, fold_eval, n_samples
            return best_fold

    return _VectorisedStratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def assign_folds(groups: Sequence[str], strata: Sequence[int], n_folds: int, seed: int = 0) -> list[int]:
    """Patient-disjoint, stratified fold index per record (``StratifiedGroupKFold``, shuffled with ``seed``).

    Falls back to a shuffled ``GroupKFold`` (with a logged warning) when no class has ``n_folds`` members.

    Args:
        groups: group (patient) id per record; a group never spans two folds.
        strata: stratum (class or BMD bin) per record.
        n_folds: number of folds; 1 puts every record in fold 0.
        seed: shuffling seed.

    Returns:
        Fold index per record.

    Raises:
        ValueError: when there are fewer distinct groups than folds, or ``n_folds < 1``.
    """
    from sklearn.model_selection import GroupKFold  # costly import: only when folds are assigned

    n = len(groups)
    if n_folds < 1:
        raise ValueError(f"folds must be >= 1, got {n_folds}")
    n_groups = len(set(groups))
    if n_groups < n_folds:
        raise ValueError(
            f"{n_groups} patient(s) with usable images but {n_folds} folds requested; every fold needs at least one "
            f"patient: use --folds {max(n_groups, 1)} or fewer (or index more images)"
        )
    if n_folds == 1:
        return [0] * n
    folds = np.full(n, -1, dtype=int)
    x = np.zeros((n, 1))
    y = np.asarray(strata)
    g = np.asarray(groups)
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", UserWarning)  # "least populated class has only k members"
            splits = list(_stratified_group_kfold(n_folds, seed).split(x, y, g))
    except ValueError as err:
        logger.warning("stratified folds impossible (%s); using unstratified patient-grouped folds", err)
        splits = list(GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(x, y, g))
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    return [int(f) for f in folds]


def fold_strata(
    records: Sequence[dict[str, Any]], groups: Sequence[str], label_key: str | None, folds: int
) -> list[int]:
    """Stratum per record: BMD quantile bins (``label_key == "bmd"``), the class (``"label"``), else one stratum.

    Args:
        records: the index records (``bmd`` / ``label`` may be ``None``: stratum ``-1``).
        groups: patient group per record (the number of BMD bins is at most ``patients // folds``).
        label_key: the label the folds are stratified by, or ``None``.
        folds: number of folds.
    """
    if label_key == "bmd":
        n_bins = max(1, min(MAX_BMD_BINS, len(set(groups)) // folds))
        return bmd_strata([r["bmd"] for r in records], n_bins)
    if label_key == "label":
        return [r["label"] if r["label"] is not None else -1 for r in records]
    return [0] * len(records)
