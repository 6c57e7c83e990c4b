"""The knee (osteoporosis classification) evaluation report as pure functions: per-study values, metrics, CIs.

:class:`~monai_bone.handlers.BoneReportWriter` gathers the studies and writes what these functions return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monai_bone.utils.numbers import round_finite

from .operating_points import brier_ece, operating_point_summary
from .regression import bootstrap_ci
from .table import classification_table

__all__ = [
    "as_class_probabilities",
    "knee_confidence_intervals",
    "knee_metrics",
    "knee_operating_points",
    "knee_study_values",
]

CI_KEYS: tuple[str, ...] = ("auc", "accuracy", "sensitivity", "specificity", "f1")


def as_class_probabilities(prob: np.ndarray) -> np.ndarray:
    """``(N, C)`` class probabilities from a binary ``(N,)`` positive-class probability or ``(N, C)`` softmax."""
    return np.stack([1.0 - prob, prob], axis=1) if prob.ndim == 1 else prob


def predicted_class(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Predicted class index: ``prob >= threshold`` (binary) or the arg-max (multi-class)."""
    return (prob >= threshold).astype(int) if prob.ndim == 1 else np.argmax(prob, axis=1)


def knee_study_values(prob: np.ndarray, label: np.ndarray, names: Sequence[str], threshold: float) -> list[dict]:
    """Per study: true/predicted class (index and name), correctness and the probability of every class."""
    probs, pred, y = as_class_probabilities(prob), predicted_class(prob, threshold), label.astype(int)
    out = []
    for i in range(y.size):
        row = {
            "true_index": int(y[i]),
            "true_class": names[y[i]],
            "pred_index": int(pred[i]),
            "pred_class": names[pred[i]],
            "correct": bool(y[i] == pred[i]),
        }
        row.update({f"prob_{n}": round_finite(probs[i, c]) for c, n in enumerate(names)})
        out.append(row)
    return out


def knee_metrics(
    prob: np.ndarray, label: np.ndarray, threshold: float, labels: Sequence[str] | None, positive: Any
) -> dict[str, Any]:
    """The Table I set (:func:`~monai_bone.metrics.classification_table`) plus Brier score and ECE of the positive
    class (``calibration``)."""
    table = classification_table(prob, label, threshold, labels=labels, positive=positive)
    pos = table["labels"].index(table["positive"])
    pos_prob = prob if prob.ndim == 1 else prob[:, pos]
    return {**table, "calibration": brier_ece(pos_prob, label == pos)}


def knee_confidence_intervals(
    prob: np.ndarray,
    label: np.ndarray,
    threshold: float,
    names: Sequence[str],
    positive: Any,
    n_boot: int,
    seed: int,
    groups: Sequence[Any] | None,
) -> dict[str, dict[str, Any]]:
    """Patient-level bootstrap 95 % CIs of AUC, accuracy, sensitivity, specificity and F1."""

    def stat(key: str):
        return lambda pr, lb: classification_table(pr, lb, threshold, labels=names, positive=positive)[key]

    return {k: bootstrap_ci(stat(k), prob, label, n_boot=n_boot, seed=seed, groups=groups) for k in CI_KEYS}


def knee_operating_points(
    score: np.ndarray,
    positive: np.ndarray,
    table: Mapping[str, Any],
    threshold: float,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    reference_name: str = "training folds",
) -> dict[str, Any]:
    """Operating points of the positive-class probability; the fixed rule is the model's own decision.

    Args:
        score: probability of the positive class per scored study.
        positive: truth (1 for the positive class).
        table: :func:`knee_metrics` output (labels, positive class, sensitivity/specificity of the model's rule).
        threshold: the binary model's decision threshold.
        reference: ``(probability, positive)`` of the training folds to choose the cuts on; ``None``: the scored split.
        reference_name: what ``reference`` is.

    Returns:
        ``{"thresholds_chosen_on", "targets": {positive class: operating_point_summary(...) with "fixed"}}``.
    """
    s = operating_point_summary(score, np.asarray(positive).astype(bool), None, reference, reference_name)
    rule = f"p >= {threshold:g}" if len(table["labels"]) == 2 else "arg-max class"
    s["fixed"] = {"rule": rule, "sensitivity": table["sensitivity"], "specificity": table["specificity"]}
    for r in ("youden", "sens90"):
        s[r]["rule"] = f"p({table['positive']}) >= {s[r]['threshold']:.4f}"
    return {"thresholds_chosen_on": s["thresholds_chosen_on"], "targets": {table["positive"]: s}}
