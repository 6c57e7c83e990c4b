"""Operating points chosen without the scored labels, and calibration/agreement statistics.

Screening at fixed cuts (0.899 g/cm² = T −1) loses sensitivity when predictions shrink toward the mean. A threshold
chosen *on the data being scored* is optimistic, so :func:`cross_fitted_operating_points` chooses each held-out
fold's threshold on the other folds' out-of-fold predictions only (Youden's J, and the cut giving at least 90 %
sensitivity), applies it to the held-out fold and pools the results. :func:`sensitivity_at_specificity` reads the
pooled ROC curve at fixed specificities (no threshold is chosen).

Calibration and agreement: :func:`calibration_line` (``true = intercept + slope * pred``; slope 1 and intercept 0
are perfect), :func:`bland_altman_ci` (bias and limits of agreement with 95 % CIs, Bland & Altman 1999 approximate
SE of the limits, and the proportional-bias test: regression of the difference on the mean), :func:`brier_ece`
(knee: Brier score and expected calibration error over equal-width probability bins).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ON_SCORED_SPLIT",
    "bland_altman_ci",
    "brier_ece",
    "calibration_line",
    "choose_threshold",
    "cross_fitted_operating_points",
    "operating_point_summary",
    "rates_at_cut",
    "sensitivity_at_specificity",
]

#: Where :func:`operating_point_summary` chose its thresholds when no reference predictions were given.
ON_SCORED_SPLIT: str = "chosen on the scored split, optimistic"


def rates_at_cut(score: np.ndarray, positive: np.ndarray, cut: float) -> tuple[float, float]:
    """``(sensitivity, specificity)`` of calling ``score >= cut`` positive (NaN for a missing class)."""
    called = score >= cut
    p, n = positive.sum(), (~positive).sum()
    sens = float((called & positive).sum() / p) if p else math.nan
    spec = float((~called & ~positive).sum() / n) if n else math.nan
    return sens, spec


def choose_threshold(score: Any, positive: Any, rule: str = "youden", target: float = 0.9) -> float:
    """A cut on ``score`` (higher = positive) chosen on these data.

    Args:
        score: scores (hip: ``-predicted BMD``; knee: probability).
        positive: boolean truth.
        rule: ``"youden"`` (max sensitivity + specificity − 1) or ``"sensitivity"`` (the highest cut whose
            sensitivity is at least ``target``).
        target: sensitivity target of ``rule="sensitivity"``.

    Returns:
        The cut (``score >= cut`` is called positive); NaN when a class is missing.
    """
    if rule not in ("youden", "sensitivity"):
        raise ValueError(f"rule must be 'youden' or 'sensitivity', got {rule!r}")
    s, y = np.asarray(score, dtype=float).reshape(-1), np.asarray(positive, dtype=bool).reshape(-1)
    if y.all() or not y.any():
        return math.nan
    cuts = np.unique(s)
    best, best_cut = -math.inf, math.nan
    for c in cuts[::-1]:  # from the highest cut down: sensitivity grows
        sens, spec = rates_at_cut(s, y, c)
        if rule == "sensitivity":
            if sens >= target:
                return float(c)
        elif sens + spec - 1 > best:
            best, best_cut = sens + spec - 1, float(c)
    return best_cut if rule == "youden" else float(cuts[0])


def cross_fitted_operating_points(
    score: Any, positive: Any, folds: Any, rules: Sequence[tuple[str, float]] = (("youden", 0.0), ("sensitivity", 0.9))
) -> dict[str, dict[str, float]]:
    """Sensitivity/specificity at thresholds chosen for each fold on the *other* folds' predictions.

    Args:
        score: pooled out-of-fold scores (higher = positive).
        positive: boolean truth.
        folds: CV fold per study.
        rules: ``(rule, target)`` pairs of :func:`choose_threshold`.

    Returns:
        Per rule name (``youden``, ``sens90``): ``{"sensitivity", "specificity", "threshold_mean"}`` of the pooled
        held-out calls.
    """
    s = np.asarray(score, dtype=float).reshape(-1)
    y = np.asarray(positive, dtype=bool).reshape(-1)
    f = np.asarray(folds).reshape(-1)
    out: dict[str, dict[str, float]] = {}
    for rule, target in rules:
        name = "youden" if rule == "youden" else f"sens{int(round(100 * target))}"
        called = np.zeros_like(y)
        cuts = []
        for k in np.unique(f):
            held = f == k
            cut = choose_threshold(s[~held], y[~held], rule, target)
            cuts.append(cut)
            called[held] = s[held] >= cut if math.isfinite(cut) else False
        p, n = y.sum(), (~y).sum()
        out[name] = {
            "sensitivity": float((called & y).sum() / p) if p else math.nan,
            "specificity": float((~called & ~y).sum() / n) if n else math.nan,
            "threshold_mean": float(np.nanmean(cuts)) if np.isfinite(cuts).any() else math.nan,
        }
    return out


def sensitivity_at_specificity(score: Any, positive: Any, specificity: float) -> float:
    """Highest sensitivity among cuts whose specificity is at least ``specificity`` (a readout of the ROC curve)."""
    s, y = np.asarray(score, dtype=float).reshape(-1), np.asarray(positive, dtype=bool).reshape(-1)
    if y.all() or not y.any():
        return math.nan
    best = 0.0
    for c in np.unique(s):
        sens, spec = rates_at_cut(s, y, c)
        if spec >= specificity:
            best = max(best, sens)
    return best


def calibration_line(pred: Any, true: Any) -> dict[str, float]:
    """Calibration intercept and slope of ``true = intercept + slope * pred`` (least squares)."""
    p, t = np.asarray(pred, dtype=float).reshape(-1), np.asarray(true, dtype=float).reshape(-1)
    if p.size < 2 or np.ptp(p) == 0:
        return {"slope": math.nan, "intercept": math.nan}
    slope, intercept = np.polyfit(p, t, 1)
    return {"slope": float(slope), "intercept": float(intercept)}


def bland_altman_ci(pred: Any, true: Any, level: float = 0.95) -> dict[str, float]:
    """Bland–Altman bias and 95 % limits of agreement with their CIs, and the proportional-bias test.

    CIs: bias ± t·SD/√n; limits ± t·SD·√(3/n) (Bland & Altman 1999). Proportional bias: slope of the
    difference on the mean of the two methods, with its two-sided p-value (t test).
    """
    from scipy import stats  # costly (~0.3 s): only when a report asks for it

    p, t = np.asarray(pred, dtype=float).reshape(-1), np.asarray(true, dtype=float).reshape(-1)
    d, m = p - t, (p + t) / 2
    n = d.size
    if n < 3:
        raise ValueError("Bland-Altman CIs need at least 3 studies.")
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    lo, hi = bias - 1.96 * sd, bias + 1.96 * sd
    se_bias, se_loa = sd / math.sqrt(n), sd * math.sqrt(3.0 / n)
    reg = stats.linregress(m, d) if np.ptp(m) > 0 else None
    return {
        "n": n,
        "bias": bias,
        "bias_low": bias - q * se_bias,
        "bias_high": bias + q * se_bias,
        "loa_lower": lo,
        "loa_lower_low": lo - q * se_loa,
        "loa_lower_high": lo + q * se_loa,
        "loa_upper": hi,
        "loa_upper_low": hi - q * se_loa,
        "loa_upper_high": hi + q * se_loa,
        "proportional_slope": float(reg.slope) if reg else math.nan,
        "proportional_p": float(reg.pvalue) if reg else math.nan,
    }


def brier_ece(prob: Any, positive: Any, n_bins: int = 10) -> dict[str, float]:
    """Brier score and expected calibration error (equal-width bins, weighted by bin size) of binary probabilities."""
    p = np.clip(np.asarray(prob, dtype=float).reshape(-1), 0.0, 1.0)
    y = np.asarray(positive, dtype=float).reshape(-1)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).mean() for b in np.unique(bins))
    return {"brier": float(np.mean((p - y) ** 2)), "ece": float(ece), "n_bins": int(n_bins)}


def _rule_name(rule: str, target: float) -> str:
    return "youden" if rule == "youden" else f"sens{int(round(100 * target))}"


def operating_point_summary(
    score: Any,
    positive: Any,
    fixed_cut: float | None = None,
    reference: tuple[Any, Any] | None = None,
    reference_name: str = "training folds",
    rules: Sequence[tuple[str, float]] = (("youden", 0.0), ("sensitivity", 0.9)),
    specificities: Sequence[float] = (0.8, 0.9),
) -> dict[str, Any]:
    """Screening at a fixed cut, at cuts chosen on reference predictions, and sensitivity at fixed specificities.

    The honest use: ``reference`` holds predictions on the *training folds* (e.g. out-of-fold CV predictions), the
    cuts chosen there are applied to the scored split. Without ``reference`` the cuts are chosen on the scored split
    itself and ``thresholds_chosen_on`` says so (:data:`ON_SCORED_SPLIT`: optimistic).

    Args:
        score: scores of the scored split (higher = positive; hip: ``-predicted BMD``, knee: probability).
        positive: boolean truth of the scored split.
        fixed_cut: a pre-specified cut on ``score`` (``None``: none reported).
        reference: ``(score, positive)`` the cuts are chosen on.
        reference_name: what ``reference`` is (reported in ``thresholds_chosen_on``).
        rules: ``(rule, target)`` pairs of :func:`choose_threshold`.
        specificities: specificities at which the ROC curve of the scored split is read.

    Returns:
        ``{"n_positive", "n_negative", "fixed", "youden", "sens90", "sens_at_spec80", "sens_at_spec90",
        "thresholds_chosen_on"}``; each rule entry is ``{"threshold", "sensitivity", "specificity"}`` with the
        threshold on ``score``.
    """
    s, y = np.asarray(score, dtype=float).reshape(-1), np.asarray(positive, dtype=bool).reshape(-1)
    out: dict[str, Any] = {"n_positive": int(y.sum()), "n_negative": int((~y).sum())}
    if fixed_cut is not None:
        sens, spec = rates_at_cut(s, y, fixed_cut)
        out["fixed"] = {"threshold": float(fixed_cut), "sensitivity": sens, "specificity": spec}
    ref_s, ref_y = (s, y) if reference is None else (np.asarray(r).reshape(-1) for r in reference)
    for rule, target in rules:
        cut = choose_threshold(ref_s, ref_y, rule, target)
        sens, spec = rates_at_cut(s, y, cut) if math.isfinite(cut) else (math.nan, math.nan)
        out[_rule_name(rule, target)] = {"threshold": cut, "sensitivity": sens, "specificity": spec}
    for spec in specificities:
        out[f"sens_at_spec{int(round(100 * spec))}"] = sensitivity_at_specificity(s, y, spec)
    out["thresholds_chosen_on"] = ON_SCORED_SPLIT if reference is None else reference_name
    return out
