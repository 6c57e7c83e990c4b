"""The hip (BMD regression) evaluation report as pure functions: per-study values, metrics and bootstrap CIs.

:class:`~monai_bone.handlers.BoneReportWriter` gathers the studies and writes what these functions return; the CV
tables read the same functions, so a number means the same thing in ``metrics.json`` and in ``ablation.csv``.
Screening *rules* map a name to ``(threshold g/cm², inclusive)``: ``low_bmd`` (BMD < 0.899 = T −1) and
``osteoporosis`` (BMD ≤ the T −2.5 value, inclusive so the WHO boundary counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_bone.constants import WHO_CLASSES
from monai_bone.utils.numbers import round_finite

from .operating_points import bland_altman_ci, calibration_line, operating_point_summary
from .regression import bland_altman, bootstrap_ci, regression_metrics
from .screening import bmd_from_t, screening_metrics, screening_positive, t_score, who_class_index
from .table import safe_auc

__all__ = [
    "hip_confidence_intervals",
    "hip_metrics",
    "hip_operating_points",
    "hip_rules",
    "hip_study_values",
    "who_confusion",
]

Rules = Mapping[str, tuple[float, bool]]


def hip_rules(screening_threshold: float, t_osteoporosis: float, ref_mean: float, ref_sd: float) -> dict:
    """The two screening rules: ``low_bmd`` (BMD < threshold) and ``osteoporosis`` (BMD ≤ the T-score's BMD)."""
    return {
        "low_bmd": (float(screening_threshold), False),
        "osteoporosis": (float(bmd_from_t(t_osteoporosis, ref_mean, ref_sd)), True),
    }


def hip_study_values(pred: np.ndarray, true: np.ndarray, ref_mean: float, ref_sd: float, rules: Rules) -> list[dict]:
    """Per study: predicted/true BMD, error, T-scores, WHO classes and each rule's call (``None`` without truth)."""
    known = np.isfinite(true)
    pred_t, true_t = t_score(pred, ref_mean, ref_sd), t_score(true, ref_mean, ref_sd)
    pred_who = who_class_index(pred_t) if pred.size else np.zeros(0, dtype=int)
    out = []
    for i in range(pred.size):
        k = bool(known[i])
        row = {
            "pred_bmd": round_finite(pred[i]),
            "true_bmd": round_finite(true[i]) if k else None,
            "error_bmd": round_finite(pred[i] - true[i]) if k else None,
            "pred_t_score": round_finite(pred_t[i]),
            "true_t_score": round_finite(true_t[i]) if k else None,
            "pred_who_class": WHO_CLASSES[pred_who[i]],
            "true_who_class": WHO_CLASSES[who_class_index(true_t[i])] if k else None,
        }
        for key, (thr, inclusive) in rules.items():
            row[f"pred_{key}"] = bool(screening_positive(pred[i], thr, inclusive)[0])
            row[f"true_{key}"] = bool(screening_positive(true[i], thr, inclusive)[0]) if k else None
        out.append(row)
    return out


def who_confusion(pred: np.ndarray, true: np.ndarray, ref_mean: float, ref_sd: float) -> dict[str, Any]:
    """WHO class (from BMD via T-score) confusion matrix, rows = truth, and its accuracy."""
    cm = np.zeros((3, 3), dtype=int)
    true_who = who_class_index(t_score(true, ref_mean, ref_sd))
    np.add.at(cm, (true_who, who_class_index(t_score(pred, ref_mean, ref_sd))), 1)
    return {"labels": list(WHO_CLASSES), "confusion_matrix": cm.tolist(), "accuracy": float(np.trace(cm) / cm.sum())}


def hip_metrics(p: np.ndarray, t: np.ndarray, ref_mean: float, ref_sd: float, rules: Rules) -> dict[str, Any]:
    """Regression, Bland–Altman (with CIs from 3 studies), calibration line, screening per rule and WHO classes.

    Args:
        p: predicted BMD of the studies with a truth.
        t: DXA BMD, same length (at least one study).
        ref_mean: young-adult reference mean (g/cm²).
        ref_sd: young-adult reference SD (g/cm²).
        rules: see :func:`hip_rules`.

    Returns:
        ``mse``, ``mae``, ``rmse``, ``r2``, ``pearson_r``, ``bias``, ``n``, ``bland_altman``, ``calibration``
        (``true = intercept + slope * pred``), ``screening`` and ``who``.
    """
    out: dict[str, Any] = dict(regression_metrics(p, t))
    out["bland_altman"] = bland_altman(p, t)
    if p.size >= 3:  # bias and limits of agreement with 95 % CIs, proportional-bias test
        out["bland_altman"].update(bland_altman_ci(p, t))
    out["calibration"] = calibration_line(p, t)
    screening = {}
    for key, (thr, inclusive) in rules.items():
        s = screening_metrics(p, t, thr, inclusive)
        s["rule"] = f"bmd {'<=' if inclusive else '<'} {thr:.4f} g/cm^2"
        s["t_score"] = round_finite(t_score(thr, ref_mean, ref_sd))
        screening[key] = s
    out["screening"] = screening
    out["who"] = who_confusion(p, t, ref_mean, ref_sd)
    return out


def hip_confidence_intervals(
    p: np.ndarray, t: np.ndarray, rules: Rules, n_boot: int, seed: int, groups: Sequence[Any] | None
) -> dict[str, dict[str, Any]]:
    """Patient-level bootstrap 95 % CIs of MSE, MAE, R² and each rule's screening AUC."""
    ci = {
        k: bootstrap_ci(lambda a, b, k=k: regression_metrics(a, b)[k], p, t, n_boot=n_boot, seed=seed, groups=groups)
        for k in ("mse", "mae", "r2")
    }
    for key, (thr, inclusive) in rules.items():
        ci[f"{key}_auc"] = bootstrap_ci(
            lambda a, b, thr=thr, inc=inclusive: safe_auc(screening_positive(b, thr, inc), -a),
            p,
            t,
            n_boot=n_boot,
            seed=seed,
            groups=groups,
        )
    return ci


def hip_operating_points(
    p: np.ndarray,
    t: np.ndarray,
    rules: Rules,
    screening: Mapping[str, Mapping[str, Any]],
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    reference_name: str = "training folds",
) -> dict[str, Any]:
    """Operating points per screening rule, thresholds in g/cm² (``pred_bmd <= threshold_bmd`` is positive).

    Args:
        p: predicted BMD of the scored studies.
        t: their DXA BMD.
        rules: see :func:`hip_rules`.
        screening: ``hip_metrics(...)["screening"]``: the fixed rules' sensitivity and specificity.
        reference: ``(pred_bmd, true_bmd)`` of the training folds to choose the cuts on; ``None``: the scored split.
        reference_name: what ``reference`` is.

    Returns:
        ``{"thresholds_chosen_on", "targets": {rule: operating_point_summary(...) with "fixed"}}``.
    """
    targets = {}
    for key, (thr, inclusive) in rules.items():
        ref = None if reference is None else (-reference[0], screening_positive(reference[1], thr, inclusive))
        s = operating_point_summary(-p, screening_positive(t, thr, inclusive), None, ref, reference_name)
        s["fixed"] = {
            "rule": screening[key]["rule"],
            "threshold_bmd": thr,
            "sensitivity": screening[key]["sensitivity"],
            "specificity": screening[key]["specificity"],
        }
        for rule in ("youden", "sens90"):  # score = -pred_bmd: "score >= cut" is "pred_bmd <= -cut"
            s[rule] = {"threshold_bmd": -s[rule].pop("threshold"), **s[rule]}
            s[rule]["rule"] = f"pred_bmd <= {s[rule]['threshold_bmd']:.4f} g/cm^2"
        targets[key] = s
    return {"thresholds_chosen_on": next(iter(targets.values()))["thresholds_chosen_on"], "targets": targets}
