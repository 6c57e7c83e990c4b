"""Patient-level resampling and paired comparisons: cluster bootstrap CIs, paired bootstrap tests, DeLong's test.

Every study of a patient shares that patient's anatomy, so studies of one patient are not independent: a CI that
resamples images is too narrow when patients contribute several images (duplicates, both hips, follow-ups). The
functions here resample *patients* (clusters) with replacement and keep all of a resampled patient's studies.

- :func:`group_bootstrap_indices`: the resampled study indices, one array per resample (patient-level bootstrap).
  :func:`monai_bone.metrics.bootstrap_ci` takes ``groups=`` and uses it.
- :func:`paired_bootstrap`: difference (and relative change) of a statistic between two models scored on the *same*
  studies, with a paired patient-level bootstrap CI and a two-sided p-value (the share of resamples on the other side
  of zero, doubled; bounded below by ``1 / (n_valid + 1)``).
- :func:`delong_auc_variance`, :func:`delong_test`: DeLong, DeLong & Clarke-Pearson (1988, *Biometrics* 44:837)
  variance of the AUC and the test of two correlated AUCs, computed with midranks (Sun & Xu 2014, fast DeLong).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "delong_auc_variance",
    "delong_test",
    "group_bootstrap_indices",
    "paired_bootstrap",
    "relative_change",
]


def _check_boot(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}.")


def group_bootstrap_indices(groups: Sequence[Any] | None, n: int, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Study indices of ``n_boot`` patient-level bootstrap resamples.

    Args:
        groups: patient id per study (``len == n``); ``None`` (or all distinct) resamples studies.
        n: number of studies.
        n_boot: number of resamples.
        seed: numpy generator seed (the same seed gives the same resamples, so rows of a table are paired).

    Yields:
        One index array per resample: every study of each drawn patient (a patient drawn twice appears twice).

    Raises:
        ValueError: when ``groups`` does not have ``n`` entries.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_boot):
            yield rng.integers(0, n, size=n)
        return
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} entries for {n} studies.")
    _, codes = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_groups = counts.size
    if n_groups == n:  # one study per patient: plain study bootstrap, faster
        for _ in range(n_boot):
            yield order[rng.integers(0, n, size=n)]
        return
    members = [order[s : s + c] for s, c in zip(starts, counts)]
    for _ in range(n_boot):
        drawn = rng.integers(0, n_groups, size=n_groups)
        yield np.concatenate([members[g] for g in drawn])


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    valid = stats[np.isfinite(stats)]
    if not valid.size:
        return math.nan, math.nan
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(valid, alpha)), float(np.quantile(valid, 1.0 - alpha))


def relative_change(a: float, b: float) -> float:
    """``100 * (a - b) / |b|`` in percent (NaN when ``b`` is 0 or not finite): how the paper states its gains."""
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return math.nan
    return 100.0 * (a - b) / abs(b)


def paired_bootstrap(
    fn: Callable[[np.ndarray, np.ndarray], float],
    pred_a: Any,
    pred_b: Any,
    true: Any,
    groups: Sequence[Any] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired patient-level bootstrap of ``fn(pred_a, true) - fn(pred_b, true)`` on the same studies.

    Each resample draws patients once and scores both models on the same resampled studies, so the CI of the
    difference accounts for the correlation between the models.

    Args:
        fn: metric ``fn(pred, true) -> float`` (e.g. MSE).
        pred_a: predictions of model A, ``(N,)``.
        pred_b: predictions of model B on the same studies, ``(N,)``.
        true: reference values, ``(N,)``.
        groups: patient id per study (``None``: study-level).
        n_boot: resamples.
        level: confidence level.
        seed: resampling seed.

    Returns:
        ``{"a", "b", "diff", "diff_low", "diff_high", "rel", "rel_low", "rel_high", "p_value", "n_valid",
        "n_boot", "level", "unit"}``: ``diff = a - b``; ``rel`` the relative change of A vs B in percent;
        ``p_value`` two-sided for ``diff == 0``.

    Raises:
        ValueError: on length mismatches or bad ``n_boot``/``level``.
    """
    _check_boot(n_boot, level)
    pa, pb, t = (np.asarray(x, dtype=float).reshape(-1) for x in (pred_a, pred_b, true))
    if not pa.size == pb.size == t.size:
        raise ValueError(f"pred_a, pred_b and true differ in length: {pa.size}, {pb.size}, {t.size}.")
    a, b = float(fn(pa, t)), float(fn(pb, t))
    diffs, rels = [], []
    for idx in group_bootstrap_indices(groups, t.size, n_boot, seed):
        try:
            va, vb = float(fn(pa[idx], t[idx])), float(fn(pb[idx], t[idx]))
        except ValueError:
            va = vb = math.nan
        diffs.append(va - vb)
        rels.append(relative_change(va, vb))
    d, r = np.asarray(diffs, dtype=float), np.asarray(rels, dtype=float)
    valid = d[np.isfinite(d)]
    if valid.size:
        tail = min(float(np.mean(valid <= 0.0)), float(np.mean(valid >= 0.0)))
        p = min(1.0, max(2.0 * tail, 1.0 / (valid.size + 1)))
    else:
        p = math.nan
    d_low, d_high = _percentiles(d, level)
    r_low, r_high = _percentiles(r, level)
    return {
        "a": a,
        "b": b,
        "diff": a - b,
        "diff_low": d_low,
        "diff_high": d_high,
        "rel": relative_change(a, b),
        "rel_low": r_low,
        "rel_high": r_high,
        "p_value": p,
        "n_valid": int(valid.size),
        "n_boot": int(n_boot),
        "level": float(level),
        "unit": "study" if groups is None else "patient",
    }


def _midrank(x: np.ndarray) -> np.ndarray:
    """Midranks (1-based; ties get the mean of their ranks)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = x.size
    ranks = np.empty(n, dtype=float)
    i = 0
    while i < n:
        j = i
        while j < n and xs[j] == xs[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1.0
        i = j
    out = np.empty(n, dtype=float)
    out[order] = ranks
    return out


def _structural_components(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs ``(k,)`` and DeLong's placement values V10 ``(k, m)`` (positives) and V01 ``(k, n)`` (negatives)."""
    pos, neg = scores[:, positive], scores[:, ~positive]
    m, n = pos.shape[1], neg.shape[1]
    aucs, v10, v01 = [], [], []
    for k in range(scores.shape[0]):
        tx, ty = _midrank(pos[k]), _midrank(neg[k])
        tz = _midrank(np.concatenate([pos[k], neg[k]]))
        aucs.append((tz[:m].sum() / m - (m + 1) / 2.0) / n)
        v10.append((tz[:m] - tx) / n)  # share of negatives below each positive (ties 1/2)
        v01.append(1.0 - (tz[m:] - ty) / m)  # share of positives above each negative
    return np.asarray(aucs), np.asarray(v10), np.asarray(v01)


def _binary(true: Any, scores: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(true, dtype=float).reshape(-1)
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise ValueError("true must hold 0/1 labels.")
    s = np.stack([np.asarray(x, dtype=float).reshape(-1) for x in scores])
    if s.shape[1] != y.size:
        raise ValueError(f"scores have {s.shape[1]} studies but true has {y.size}.")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite.")
    positive = y == 1.0
    if positive.all() or not positive.any():
        raise ValueError("DeLong's variance needs both classes among the studies.")
    return positive, s


def delong_auc_variance(true: Any, score: Any) -> dict[str, float]:
    """AUC and its DeLong variance (``S10 / m + S01 / n``; sample variances of the placement values).

    Args:
        true: 0/1 labels, ``(N,)``.
        score: scores, higher = more likely positive.

    Returns:
        ``{"auc", "var", "se", "n_pos", "n_neg"}``.

    Raises:
        ValueError: one class only, non-binary labels, non-finite scores or a length mismatch.
    """
    positive, s = _binary(true, [score])
    auc, v10, v01 = _structural_components(positive, s)
    m, n = v10.shape[1], v01.shape[1]
    var = float(np.var(v10[0], ddof=1) / m + np.var(v01[0], ddof=1) / n) if m > 1 and n > 1 else math.nan
    return {"auc": float(auc[0]), "var": var, "se": math.sqrt(var) if var >= 0 else math.nan, "n_pos": m, "n_neg": n}


def delong_test(true: Any, score_a: Any, score_b: Any, level: float = 0.95) -> dict[str, float]:
    """DeLong's test of two correlated AUCs (both models scored on the same studies).

    Args:
        true: 0/1 labels, ``(N,)``.
        score_a: scores of model A (higher = positive).
        score_b: scores of model B on the same studies.
        level: level of the normal-approximation CI of the difference.

    Returns:
        ``{"auc_a", "auc_b", "diff", "var_a", "var_b", "cov", "se", "z", "p_value", "diff_low", "diff_high"}``
        with ``diff = auc_a - auc_b``; ``p_value`` two-sided (1.0 when both models rank identically).

    Raises:
        ValueError: as :func:`delong_auc_variance`.
    """
    from scipy.stats import norm

    positive, s = _binary(true, [score_a, score_b])
    auc, v10, v01 = _structural_components(positive, s)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong's test needs at least two studies of each class.")
    cov = np.cov(v10) / m + np.cov(v01) / n
    var_diff = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    diff = float(auc[0] - auc[1])
    se = math.sqrt(max(var_diff, 0.0))
    if se > 0:
        z = diff / se
        p = float(2.0 * norm.sf(abs(z)))
    else:
        z, p = (0.0, 1.0) if diff == 0 else (math.copysign(math.inf, diff), 0.0)
    half = float(norm.ppf(0.5 + level / 2.0)) * se
    return {
        "auc_a": float(auc[0]),
        "auc_b": float(auc[1]),
        "diff": diff,
        "var_a": float(cov[0, 0]),
        "var_b": float(cov[1, 1]),
        "cov": float(cov[0, 1]),
        "se": se,
        "z": float(z),
        "p_value": p,
        "diff_low": diff - half,
        "diff_high": diff + half,
    }
