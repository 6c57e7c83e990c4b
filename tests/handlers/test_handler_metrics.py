"""Ignite metric handlers inside a real SupervisedEvaluator (batch size 3 over 7 studies)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _bone_handler_helpers import (
    HIP_PRED,
    HIP_TRUE,
    KNEE_BINARY_LABELS,
    KNEE_THREE_LABELS,
    direct_outputs,
    evaluator,
    hip_records,
    knee_records,
    linear_net,
    pixel_net,
)
from monai.handlers import MeanAbsoluteError, MeanSquaredError, from_engine
from sklearn.metrics import r2_score

from monai_bone.handlers import R2, ClassificationTableMetric, ScreeningAUC, ScreeningMetric, as_batch_matrix
from monai_bone.metrics import bmd_from_t, classification_table, regression_metrics, screening_metrics, to_probability

FE = from_engine(["pred", "label"])
NAMES = ("precision", "recall", "specificity", "f1", "accuracy", "fpr")


def test_hip_metric_handlers_match_functions():
    records = hip_records()
    net = pixel_net()
    pred = direct_outputs(net, records)[:, 0]
    np.testing.assert_allclose(pred, HIP_PRED, rtol=1e-6)
    t25 = bmd_from_t(-2.5)
    metrics = {"mse": MeanSquaredError(output_transform=FE), "r2": R2(output_transform=FE)}
    metrics["auc_low"] = ScreeningAUC(output_transform=FE)
    metrics["auc_osteo"] = ScreeningAUC(threshold=t25, inclusive=True, output_transform=FE)
    for name in NAMES:
        metrics[f"low_{name}"] = ScreeningMetric(name, output_transform=FE)
        metrics[f"osteo_{name}"] = ScreeningMetric(name, threshold=t25, inclusive=True, output_transform=FE)
    ev = evaluator(net, records, key_metric={"mae": MeanAbsoluteError(output_transform=FE)}, metrics=metrics)
    ev.run()
    got = ev.state.metrics
    assert ev.state.iteration == 3  # 3 + 3 + 1
    reg = regression_metrics(pred, HIP_TRUE)
    assert got["mae"] == pytest.approx(reg["mae"], rel=1e-5)
    assert got["mse"] == pytest.approx(reg["mse"], rel=1e-5)
    assert got["r2"] == pytest.approx(reg["r2"], rel=1e-9)
    assert got["r2"] == pytest.approx(r2_score(HIP_TRUE, pred), rel=1e-9)
    low = screening_metrics(pred, HIP_TRUE, 0.899)
    osteo = screening_metrics(pred, HIP_TRUE, t25, inclusive=True)
    assert got["auc_low"] == pytest.approx(low["auc"])
    assert got["auc_osteo"] == pytest.approx(osteo["auc"])
    for name in NAMES:
        assert got[f"low_{name}"] == pytest.approx(low[name], rel=1e-6), name
        assert got[f"osteo_{name}"] == pytest.approx(osteo[name], rel=1e-6), name
    # the two thresholds give different decisions on this cohort: the test would notice a swapped threshold
    assert low["recall"] != osteo["recall"]


def test_r2_float64_accumulation_and_batch_first_input():
    m = R2()
    true = torch.tensor([0.80, 0.81, 0.82, 0.79, 0.80], dtype=torch.float32) + 100.0  # large mean, tiny spread
    pred = true + torch.tensor([0.001, -0.002, 0.0, 0.001, 0.0])
    m.update((pred, true))
    assert m.compute() == pytest.approx(r2_score(true.double().numpy(), pred.double().numpy()), rel=1e-6)
    m.reset()
    m.update(([torch.tensor([1.0]), torch.tensor([2.0])], [1.0, 3.0]))
    assert m.compute() == pytest.approx(r2_score([1.0, 3.0], [1.0, 2.0]))


def test_screening_handlers_reject_multi_value_predictions_and_bad_names():
    with pytest.raises(ValueError, match="unknown screening metric"):
        ScreeningMetric("dice")
    m = ScreeningAUC()
    with pytest.raises(ValueError, match="one value per study"):
        m.update((torch.zeros(3, 2), torch.zeros(3, 1)))
    with pytest.raises(ValueError, match="unknown table metric"):
        ClassificationTableMetric("dice")


@pytest.mark.parametrize("labels, out", [(KNEE_BINARY_LABELS, 1), (KNEE_THREE_LABELS, 3)])
def test_knee_table_metric_matches_function(labels, out):
    records = knee_records(labels)
    net = linear_net(out)
    prob = to_probability(direct_outputs(net, records))
    table = classification_table(prob, labels)
    names = ("accuracy", "sensitivity", "specificity", "precision", "f1", "auc", "loss", "overall_accuracy", "fpr")
    metrics = {n: ClassificationTableMetric(n, output_transform=FE) for n in names[1:]}
    key = {"accuracy": ClassificationTableMetric(output_transform=FE)}
    ev = evaluator(net, records, key_metric=key, metrics=metrics)
    ev.run()
    for n in names:
        expected, got = table[n], ev.state.metrics[n]
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, rel=1e-6), n


def test_as_batch_matrix_forms():
    assert as_batch_matrix([1.0, 2.0]).shape == (2, 1)
    assert as_batch_matrix([torch.tensor([1.0, 2.0, 3.0])] * 4).shape == (4, 3)
    assert as_batch_matrix(torch.zeros(5)).shape == (5, 1)
    assert as_batch_matrix(np.zeros((5, 3))).dtype == torch.float64
    with pytest.raises(ValueError, match="differ in size"):
        as_batch_matrix([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(ValueError, match="expected shape"):
        as_batch_matrix(torch.zeros(2, 2, 2))
