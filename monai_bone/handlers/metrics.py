"""Ignite metric handlers for bone-health evaluation, usable as ``key_val_metric`` / ``additional_metrics``.

All of them accept what ``monai.handlers.from_engine(["pred", "label"])`` returns from a decollated
``engine.state.output`` (lists of per-study tensors or numbers) as well as batch-first tensors, e.g.::

    from monai.handlers import MeanAbsoluteError, MeanSquaredError, from_engine
    from monai_bone.handlers import R2, ScreeningAUC, ScreeningMetric

    evaluator = SupervisedEvaluator(
        ...,
        key_val_metric={"val_mae": MeanAbsoluteError(output_transform=from_engine(["pred", "label"]))},
        additional_metrics={
            "val_mse": MeanSquaredError(output_transform=from_engine(["pred", "label"])),
            "val_r2": R2(output_transform=from_engine(["pred", "label"])),
            "val_auc_0899": ScreeningAUC(threshold=0.899, output_transform=from_engine(["pred", "label"])),
            "val_f1_0899": ScreeningMetric("f1", threshold=0.899, output_transform=from_engine(["pred", "label"])),
        },
    )

Distributed runs: :class:`R2` reduces its sums with ignite's ``sync_all_reduce``; :class:`ScreeningAUC` and
:class:`ScreeningMetric` reuse MONAI's cumulative buffers (gathered across ranks by MONAI);
:class:`ClassificationTableMetric` gathers with ``monai.utils.evenly_divisible_all_gather``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from ignite.metrics.regression import R2Score
from monai.handlers import ROCAUC, ConfusionMatrix
from monai.utils import evenly_divisible_all_gather

from monai_bone.constants import SCREENING_THRESHOLD
from monai_bone.metrics.screening import screening_positive
from monai_bone.metrics.table import RATE_NAMES, classification_table, to_probability

__all__ = ["ClassificationTableMetric", "R2", "ScreeningAUC", "ScreeningMetric", "as_batch_matrix"]


def as_batch_matrix(data: Any, name: str = "data") -> torch.Tensor:
    """Turn per-study values into a float64 CPU tensor ``(N, C)``.

    Args:
        data: a list/tuple of per-study tensors, arrays or numbers (decollated engine output), or a batch-first
            tensor/array ``(N,)`` or ``(N, C)``.
        name: what the data is, for error messages.

    Returns:
        A ``(N, C)`` float64 tensor on the CPU.

    Raises:
        ValueError: when per-study items differ in size or a batch has more than two dimensions.
    """

    def _np(x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        return np.asarray(x, dtype=np.float64)

    if isinstance(data, (list, tuple)):
        if len(data) == 0:
            return torch.zeros((0, 1), dtype=torch.float64)
        items = [_np(x).reshape(-1) for x in data]
        sizes = {i.size for i in items}
        if len(sizes) != 1:
            raise ValueError(f"{name}: per-study items differ in size ({sorted(sizes)}).")
        return torch.from_numpy(np.stack(items))
    arr = _np(data)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected shape (N,) or (N, C), got {arr.shape}.")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _single_column(data: Any, name: str) -> torch.Tensor:
    x = as_batch_matrix(data, name)
    if x.shape[1] != 1:
        raise ValueError(f"{name}: expected one value per study (BMD), got {x.shape[1]}.")
    return x


def _split(output: Sequence[Any]) -> tuple[Any, Any]:
    if len(output) != 2:
        raise ValueError(f"output must be a (y_pred, y) pair, got {len(output)} items.")
    return output[0], output[1]


class R2(R2Score):
    """Coefficient of determination R^2 as an Ignite metric: ignite's ``R2Score`` accepting decollated lists.

    Sums are accumulated in float64 (``R2Score`` uses float32, whose ``sum(y^2) - sum(y)^2 / n`` loses digits when
    the spread of BMD is small compared with its mean).

    Args:
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        device: where the sums are accumulated.
    """

    def __init__(self, output_transform: Callable = lambda x: x, device: str | torch.device = "cpu") -> None:
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        super().reset()
        self._sum_of_errors = torch.tensor(0.0, dtype=torch.float64, device=self._device)
        self._y_sq_sum = torch.tensor(0.0, dtype=torch.float64, device=self._device)
        self._y_sum = torch.tensor(0.0, dtype=torch.float64, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        y_pred, y = _split(output)
        super().update((_single_column(y_pred, "y_pred"), _single_column(y, "y")))


class ScreeningAUC(ROCAUC):
    """ROC-AUC of BMD screening: score ``-predicted BMD``, positive when the true BMD is below ``threshold``.

    Reuses MONAI's ``ROCAUC`` handler (cumulative buffers, DDP gathering); returns NaN with a warning when the
    truth holds one class only.

    Args:
        threshold: BMD threshold in g/cm^2 (default 0.899, T = -1); for T = -2.5 use
            ``monai_bone.metrics.bmd_from_t(-2.5)`` with ``inclusive=True``.
        inclusive: count a true BMD equal to the threshold as positive.
        output_transform: extracts ``(y_pred, y)`` (predicted and true BMD) from ``engine.state.output``.
    """

    def __init__(
        self, threshold: float = SCREENING_THRESHOLD, inclusive: bool = False, output_transform: Callable = lambda x: x
    ) -> None:
        super().__init__(average="macro", output_transform=output_transform)
        self.threshold = float(threshold)
        self.inclusive = bool(inclusive)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        y_pred, y = _split(output)
        pred = _single_column(y_pred, "y_pred")
        true = _single_column(y, "y")
        positive = torch.from_numpy(screening_positive(true, self.threshold, self.inclusive).astype(np.float64))
        super().update((-pred, positive[:, None]))

    def compute(self) -> float:
        """The AUC over all studies seen (NaN when the truth holds one class only)."""
        return float(super().compute())


#: ScreeningMetric names -> MONAI confusion-matrix metric names.
_SCREENING_NAMES: dict[str, str] = {
    "precision": "precision",
    "recall": "sensitivity",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "f1": "f1 score",
    "accuracy": "accuracy",
    "fpr": "fall out",
}


class ScreeningMetric(ConfusionMatrix):
    """Threshold screening metric of predicted BMD: the decision is "predicted BMD below ``threshold``".

    Reuses MONAI's ``ConfusionMatrix`` handler on the binarised decision and truth (one channel, counts summed
    over all studies before the ratio is taken, NaN when a denominator is zero).

    Args:
        metric_name: one of ``"precision"``, ``"recall"`` (= ``"sensitivity"``), ``"specificity"``, ``"f1"``,
            ``"accuracy"``, ``"fpr"``.
        threshold: BMD threshold in g/cm^2 (default 0.899, T = -1).
        inclusive: count a BMD equal to the threshold as positive (use for T = -2.5).
        output_transform: extracts ``(y_pred, y)`` (predicted and true BMD) from ``engine.state.output``.
        save_details: store the per-study confusion counts in ``engine.state.metric_details``.

    Raises:
        ValueError: on an unknown ``metric_name``.
    """

    def __init__(
        self,
        metric_name: str = "f1",
        threshold: float = SCREENING_THRESHOLD,
        inclusive: bool = False,
        output_transform: Callable = lambda x: x,
        save_details: bool = False,
    ) -> None:
        key = str(metric_name).lower()
        if key not in _SCREENING_NAMES:
            raise ValueError(f"unknown screening metric {metric_name!r}; choose from {sorted(_SCREENING_NAMES)}.")
        super().__init__(
            include_background=True,
            metric_name=_SCREENING_NAMES[key],
            compute_sample=False,
            reduction="mean",
            output_transform=output_transform,
            save_details=save_details,
        )
        self.screening_name = key
        self.threshold = float(threshold)
        self.inclusive = bool(inclusive)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        y_pred, y = _split(output)
        pred = _single_column(y_pred, "y_pred")
        true = _single_column(y, "y")
        pred_pos = screening_positive(pred, self.threshold, self.inclusive).astype(np.float32)
        true_pos = screening_positive(true, self.threshold, self.inclusive).astype(np.float32)
        super().update((torch.from_numpy(pred_pos)[:, None], torch.from_numpy(true_pos)[:, None]))

    def compute(self) -> float:
        """The metric over all studies seen (NaN when its denominator is zero)."""
        return float(super().compute())


#: Values of :func:`classification_table` that :class:`ClassificationTableMetric` can report.
_TABLE_NAMES: tuple[str, ...] = (*RATE_NAMES, "auc", "loss", "overall_accuracy")


class ClassificationTableMetric(Metric):
    """One value of the knee Table I set (:func:`monai_bone.metrics.classification_table`) as an Ignite metric.

    Model outputs and labels are collected over the epoch (gathered across ranks) and the table is computed once
    at the end, so ratios are exact over the whole evaluation set.

    Args:
        metric_name: one of ``sensitivity``, ``specificity``, ``precision``, ``fpr``, ``accuracy``, ``f1``, ``auc``,
            ``loss``, ``overall_accuracy``.
        logits: whether ``y_pred`` holds logits (sigmoid of one / softmax of several is applied) or probabilities.
        threshold: decision threshold of a binary (one-output) model.
        labels: class names (default by class count, see ``classification_table``).
        positive: screening-positive class name or index (default ``"osteoporosis"``).
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``.
        device: kept for Ignite's ``Metric`` API; collection happens on the CPU.

    Raises:
        ValueError: on an unknown ``metric_name``.
    """

    def __init__(
        self,
        metric_name: str = "accuracy",
        logits: bool = True,
        threshold: float = 0.5,
        labels: Sequence[str] | None = None,
        positive: str | int | None = None,
        output_transform: Callable = lambda x: x,
        device: str | torch.device = "cpu",
    ) -> None:
        if metric_name not in _TABLE_NAMES:
            raise ValueError(f"unknown table metric {metric_name!r}; choose from {list(_TABLE_NAMES)}.")
        self.metric_name = metric_name
        self.logits = bool(logits)
        self.threshold = float(threshold)
        self.labels = list(labels) if labels is not None else None
        self.positive = positive
        self._preds: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._preds = []
        self._targets = []

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        y_pred, y = _split(output)
        pred = as_batch_matrix(y_pred, "y_pred")
        target = as_batch_matrix(y, "y")
        if pred.shape[0] != target.shape[0]:
            raise ValueError(f"y_pred and y differ in batch size: {pred.shape[0]} vs {target.shape[0]}.")
        self._preds.append(pred)
        self._targets.append(target)

    def compute(self) -> float:
        if not self._preds:
            raise NotComputableError("ClassificationTableMetric needs at least one update before compute.")
        pred = evenly_divisible_all_gather(torch.cat(self._preds), concat=True)
        target = evenly_divisible_all_gather(torch.cat(self._targets), concat=True)
        prob = to_probability(pred, logits=self.logits)
        table = classification_table(prob, target, self.threshold, labels=self.labels, positive=self.positive)
        return float(table[self.metric_name])
