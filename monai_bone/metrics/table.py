"""The classification metric set of the knee paper (Table I/II): TPR, SPC, PPV, FPR, ACC, F1, loss, plus AUC.

Definitions (Table II of the hybrid-attention paper)::

    sensitivity (TPR) = TP / (TP + FN)        specificity (SPC) = TN / (TN + FP)
    precision   (PPV) = TP / (TP + FP)        FPR               = FP / (FP + TN)
    accuracy    (ACC) = (TP + TN) / N         F1                = 2 TP / (2 TP + FP + FN)

A ratio whose denominator is zero is undefined and returned as NaN (never silently 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.metrics import confusion_matrix, roc_auc_score

from monai_bone.constants import KNEE_LABELS_BINARY, KNEE_LABELS_THREE

__all__ = [
    "RATE_NAMES",
    "binary_rates",
    "classification_table",
    "confusion_counts",
    "resolve_class_names",
    "safe_auc",
    "to_probability",
]

#: Names of the ratio metrics returned by :func:`binary_rates`, in Table I order.
RATE_NAMES: tuple[str, ...] = ("sensitivity", "specificity", "precision", "fpr", "accuracy", "f1")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def confusion_counts(pred_positive: Any, true_positive: Any) -> dict[str, int]:
    """Count true/false positives/negatives of a binary decision.

    Args:
        pred_positive: boolean-like array ``(N,)``, the predicted positives.
        true_positive: boolean-like array ``(N,)``, the true positives.

    Returns:
        ``{"tp", "fp", "tn", "fn"}`` as Python ints.

    Raises:
        ValueError: when the two arrays differ in length.
    """
    p = np.asarray(pred_positive, dtype=bool).reshape(-1)
    t = np.asarray(true_positive, dtype=bool).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred_positive and true_positive differ in length: {p.shape[0]} vs {t.shape[0]}.")
    return {
        "tp": int(np.sum(p & t)),
        "fp": int(np.sum(p & ~t)),
        "tn": int(np.sum(~p & ~t)),
        "fn": int(np.sum(~p & t)),
    }


def binary_rates(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """Table II ratios from confusion counts (NaN where a denominator is zero).

    Args:
        tp: true positives.
        fp: false positives.
        tn: true negatives.
        fn: false negatives.

    Returns:
        ``{"sensitivity", "specificity", "precision", "fpr", "accuracy", "f1"}``.
    """
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "fpr": _ratio(fp, fp + tn),
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def safe_auc(true_positive: Any, score: Any) -> float:
    """ROC-AUC (``sklearn.metrics.roc_auc_score``), NaN when only one class is present.

    Args:
        true_positive: boolean-like array ``(N,)`` of positives.
        score: array ``(N,)``, larger means more likely positive.

    Returns:
        The area under the ROC curve, or NaN when it is undefined.
    """
    t = np.asarray(true_positive, dtype=bool).reshape(-1)
    s = np.asarray(score, dtype=float).reshape(-1)
    if t.size == 0 or t.all() or not t.any():
        return float("nan")
    return float(roc_auc_score(t, s))


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(np.mean(arr[np.isfinite(arr)])) if np.any(np.isfinite(arr)) else float("nan")


def resolve_class_names(labels: Sequence[str] | None, n_classes: int) -> list[str]:
    """Class names for ``n_classes`` outputs: ``labels`` checked, or the knee defaults for 2 / 3 classes.

    Args:
        labels: explicit names, or None for ``KNEE_LABELS_BINARY`` (2), ``KNEE_LABELS_THREE`` (3), else indices.
        n_classes: number of classes of the model output.

    Returns:
        The list of names.

    Raises:
        ValueError: when ``labels`` does not have ``n_classes`` entries.
    """
    if labels is None:
        if n_classes == len(KNEE_LABELS_BINARY):
            return list(KNEE_LABELS_BINARY)
        if n_classes == len(KNEE_LABELS_THREE):
            return list(KNEE_LABELS_THREE)
        return [str(i) for i in range(n_classes)]
    labels = [str(x) for x in labels]
    if len(labels) != n_classes:
        raise ValueError(f"labels {labels} name {len(labels)} classes but the probabilities have {n_classes}.")
    return labels


def _resolve_positive(positive: str | int | None, labels: list[str]) -> int:
    if positive is None:
        return labels.index("osteoporosis") if "osteoporosis" in labels else len(labels) - 1
    if isinstance(positive, str):
        if positive not in labels:
            raise ValueError(f"positive class {positive!r} is not one of the labels {labels}.")
        return labels.index(positive)
    idx = int(positive)
    if not 0 <= idx < len(labels):
        raise ValueError(f"positive class index {idx} is out of range for {len(labels)} classes.")
    return idx


def _as_class_index(label: Any, n_classes: int) -> np.ndarray:
    y = np.asarray(label, dtype=float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2 and y.shape[1] == n_classes:  # one-hot
        y = np.argmax(y, axis=1).astype(float)
    if y.ndim != 1:
        raise ValueError(f"label must have shape (N,), (N, 1) or one-hot (N, {n_classes}), got {y.shape}.")
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or np.any((y < 0) | (y >= n_classes)):
        raise ValueError(f"label must hold class indices in [0, {n_classes}), got {np.unique(y).tolist()}.")
    return y.astype(int)


def classification_table(
    prob: Any,
    label: Any,
    threshold: float = 0.5,
    labels: Sequence[str] | None = None,
    positive: str | int | None = None,
    eps: float = 1e-7,
) -> dict[str, Any]:
    """The knee paper's Table I metric set, plus ROC-AUC and the confusion matrix.

    Binary models give one sigmoid probability per study (shape ``(N,)`` or ``(N, 1)``), the probability of
    class 1; the study is predicted positive when ``prob >= threshold`` (MONAI's ``AsDiscrete`` convention).
    Multi-class models give softmax probabilities ``(N, C)``; the predicted class is the arg-max. The top-level
    Table I entries always describe the screening decision "``positive`` vs rest" (default positive class:
    ``"osteoporosis"``), so binary and three-class reports are comparable; for ``C > 2`` the per-class one-vs-rest
    tables and their macro average are added under ``"per_class"`` and ``"macro"``.

    Args:
        prob: probabilities, ``(N,)``/``(N, 1)`` (binary sigmoid) or ``(N, C)`` (softmax, rows sum to 1).
        label: true class indices ``(N,)``/``(N, 1)``, or one-hot ``(N, C)``.
        threshold: decision threshold of the binary sigmoid output (ignored for ``(N, C)`` input).
        labels: class names; default ``KNEE_LABELS_BINARY`` (2 classes) or ``KNEE_LABELS_THREE`` (3 classes).
        positive: the screening-positive class, by name or index; default ``"osteoporosis"`` when it is a label,
            else the last class.
        eps: probabilities are clipped to ``[eps, 1 - eps]`` for the loss (Keras' binary cross-entropy convention).

    Returns:
        A dict with ``n``, ``labels``, ``positive``, ``threshold``, ``tp``, ``fp``, ``tn``, ``fn``, the Table II
        ratios (``sensitivity``, ``specificity``, ``precision``, ``fpr``, ``accuracy``, ``f1``), ``loss`` (mean binary
        cross-entropy, or categorical cross-entropy for ``C > 2``), ``auc``, ``overall_accuracy`` (fraction of
        studies whose class is right), ``confusion_matrix`` (rows true class, columns predicted class) and, for
        ``C > 2``, ``per_class`` and ``macro``.

    Raises:
        ValueError: on empty input, mismatched lengths, probabilities outside [0, 1] or NaN, or bad labels.
    """
    p = np.asarray(prob, dtype=float)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim not in (1, 2):
        raise ValueError(f"prob must have shape (N,), (N, 1) or (N, C), got {p.shape}.")
    if p.shape[0] == 0:
        raise ValueError("classification_table needs at least one study, got none.")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("prob must hold probabilities in [0, 1] (apply sigmoid/softmax to logits first).")
    binary = p.ndim == 1
    n_classes = 2 if binary else p.shape[1]
    if n_classes < 2:
        raise ValueError(f"at least 2 classes are needed, got {n_classes}.")
    names = resolve_class_names(labels, n_classes)
    pos = _resolve_positive(positive, names)
    y = _as_class_index(label, n_classes)
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"prob and label differ in length: {p.shape[0]} vs {y.shape[0]}.")

    if binary:
        probs = np.stack([1.0 - p, p], axis=1)
        pred_class = (p >= threshold).astype(int)
    else:
        probs = p
        pred_class = np.argmax(p, axis=1)

    clipped = np.clip(probs, eps, 1.0 - eps)
    if binary:
        loss = float(-np.mean(y * np.log(clipped[:, 1]) + (1 - y) * np.log(clipped[:, 0])))
    else:
        loss = float(-np.mean(np.log(clipped[np.arange(y.shape[0]), y])))

    def one_vs_rest(c: int) -> dict[str, Any]:
        counts = confusion_counts(pred_class == c, y == c)
        return {**counts, **binary_rates(**counts), "auc": safe_auc(y == c, probs[:, c])}

    result: dict[str, Any] = {
        "n": int(y.shape[0]),
        "labels": names,
        "positive": names[pos],
        "threshold": float(threshold) if binary else None,
        **one_vs_rest(pos),
        "loss": loss,
        "overall_accuracy": float(np.mean(pred_class == y)),
        "confusion_matrix": confusion_matrix(y, pred_class, labels=list(range(n_classes))).tolist(),
    }
    if not binary and n_classes > 2:
        per_class = {name: one_vs_rest(c) for c, name in enumerate(names)}
        result["per_class"] = per_class
        result["macro"] = {k: _nanmean([per_class[c][k] for c in names]) for k in (*RATE_NAMES, "auc")}
    return result


def to_probability(pred: Any, logits: bool = True) -> np.ndarray:
    """Class probabilities from model outputs: sigmoid of one logit, softmax of several.

    Args:
        pred: model output ``(N,)``/``(N, 1)`` (binary) or ``(N, C)`` (multi-class); array-like or tensor.
        logits: whether ``pred`` holds logits (apply sigmoid/softmax) or probabilities already (returned as is).

    Returns:
        ``(N,)`` probabilities of class 1 for a binary output, else ``(N, C)`` probabilities (float64).

    Raises:
        ValueError: on a shape other than ``(N,)``, ``(N, 1)`` or ``(N, C)``.
    """
    if hasattr(pred, "detach"):
        pred = pred.detach().cpu().numpy()
    x = np.asarray(pred, dtype=float)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim not in (1, 2):
        raise ValueError(f"model output must have shape (N,), (N, 1) or (N, C), got {x.shape}.")
    if not logits:
        return x
    return expit(x) if x.ndim == 1 else softmax(x, axis=1)
