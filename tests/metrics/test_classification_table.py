"""The knee Table I metric set against the paper's own numbers and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from monai_bone.metrics import classification_table, resolve_class_names, to_probability


def test_reproduces_paper_table_one_from_its_counts():
    # hybrid-attention paper, 72 test images: sens .8293, spec .8710, prec .8947, FPR .1290, acc .8472, F1 .8608
    # -> TP 34, FN 7 (41 osteoporotic), TN 27, FP 4 (31 normal)
    label = np.array([1] * 41 + [0] * 31)
    prob = np.array([0.9] * 34 + [0.2] * 7 + [0.1] * 27 + [0.8] * 4)
    t = classification_table(prob, label)
    assert (t["tp"], t["fn"], t["tn"], t["fp"]) == (34, 7, 27, 4)
    expected = {"sensitivity": 0.8293, "specificity": 0.8710, "precision": 0.8947, "fpr": 0.1290, "accuracy": 0.8472}
    for key, value in expected.items():
        assert round(t[key], 4) == value, key
    assert round(t["f1"], 4) == 0.8608
    assert t["labels"] == ["normal", "osteoporosis"] and t["positive"] == "osteoporosis"
    assert t["confusion_matrix"] == [[27, 4], [7, 34]]


def test_binary_against_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, 50), 0.01, 0.99)
    t = classification_table(p[:, None], y[:, None], threshold=0.5)
    d = (p >= 0.5).astype(int)
    assert t["sensitivity"] == pytest.approx(recall_score(y, d))
    assert t["specificity"] == pytest.approx(recall_score(1 - y, 1 - d))
    assert t["precision"] == pytest.approx(precision_score(y, d))
    assert t["fpr"] == pytest.approx(1 - recall_score(1 - y, 1 - d))
    assert t["accuracy"] == pytest.approx(accuracy_score(y, d))
    assert t["overall_accuracy"] == pytest.approx(accuracy_score(y, d))
    assert t["f1"] == pytest.approx(f1_score(y, d))
    assert t["auc"] == pytest.approx(roc_auc_score(y, p))
    assert t["loss"] == pytest.approx(log_loss(y, p))
    assert t["confusion_matrix"] == confusion_matrix(y, d).tolist()
    assert t["threshold"] == 0.5 and "per_class" not in t


def test_binary_threshold_is_inclusive_and_configurable():
    t = classification_table([0.5, 0.49], [1, 0])
    assert (t["tp"], t["tn"]) == (1, 1)
    t = classification_table([0.5, 0.49], [1, 0], threshold=0.6)
    assert (t["tp"], t["fn"], t["tn"]) == (0, 1, 1)
    assert math.isnan(t["precision"])  # nothing predicted positive


def test_three_class_against_sklearn():
    rng = np.random.default_rng(1)
    y = np.array([0, 1, 2] * 10)
    logits = rng.normal(0, 1, (30, 3)) + 1.2 * np.eye(3)[y]
    p = to_probability(logits)
    t = classification_table(p, y)
    d = p.argmax(1)
    assert t["labels"] == ["normal", "osteopenia", "osteoporosis"] and t["threshold"] is None
    assert t["overall_accuracy"] == pytest.approx(accuracy_score(y, d))
    assert t["loss"] == pytest.approx(log_loss(y, p))
    assert t["confusion_matrix"] == confusion_matrix(y, d).tolist()
    rec, prec, f1 = recall_score(y, d, average=None), precision_score(y, d, average=None), f1_score(y, d, average=None)
    for c, name in enumerate(t["labels"]):
        pc = t["per_class"][name]
        assert pc["sensitivity"] == pytest.approx(rec[c])
        assert pc["precision"] == pytest.approx(prec[c])
        assert pc["f1"] == pytest.approx(f1[c])
        assert pc["specificity"] == pytest.approx(recall_score(y != c, d != c))
        assert pc["auc"] == pytest.approx(roc_auc_score(y == c, p[:, c]))
    assert t["macro"]["f1"] == pytest.approx(f1_score(y, d, average="macro"))
    assert t["macro"]["sensitivity"] == pytest.approx(recall_score(y, d, average="macro"))
    assert t["macro"]["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    # top level = osteoporosis vs rest
    assert t["positive"] == "osteoporosis"
    for key in ("tp", "fp", "sensitivity", "specificity", "precision", "f1", "auc", "accuracy"):
        assert t[key] == t["per_class"]["osteoporosis"][key]


def test_label_forms_and_positive_choice():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    onehot = np.eye(3)[[0, 2, 1]]
    assert classification_table(p, onehot)["overall_accuracy"] == 1.0
    t = classification_table(p, [0, 2, 1], positive="osteopenia")
    assert t["positive"] == "osteopenia" and t["tp"] == 1
    t = classification_table(p, [0, 2, 1], labels=["a", "b", "c"])
    assert t["positive"] == "c"  # no "osteoporosis" label: last class
    two = classification_table(np.array([[0.8, 0.2], [0.3, 0.7]]), [0, 1])
    assert two["positive"] == "osteoporosis" and two["accuracy"] == 1.0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="probabilities"):
        classification_table([1.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="class indices"):
        classification_table([0.2, 0.3], [1, 2])
    with pytest.raises(ValueError, match="differ in length"):
        classification_table([0.2, 0.3], [1])
    with pytest.raises(ValueError, match="name 2 classes"):
        classification_table(np.full((2, 3), 1 / 3), [0, 1], labels=["a", "b"])
    with pytest.raises(ValueError, match="not one of the labels"):
        classification_table([0.2, 0.3], [1, 0], positive="osteopenia")
    with pytest.raises(ValueError, match="at least one"):
        classification_table(np.zeros(0), np.zeros(0))


def test_to_probability_and_class_names():
    x = torch.tensor([[-2.0], [0.0], [3.0]])
    np.testing.assert_allclose(to_probability(x), torch.sigmoid(x).numpy()[:, 0], rtol=1e-6)
    z = torch.tensor([[1.0, 2.0, 0.5], [800.0, 0.0, 0.0]])
    np.testing.assert_allclose(to_probability(z), torch.softmax(z.double(), 1).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(to_probability([[0.3], [0.6]], logits=False), [0.3, 0.6])
    with pytest.raises(ValueError, match="shape"):
        to_probability(np.zeros((2, 2, 2)))
    assert resolve_class_names(None, 3) == ["normal", "osteopenia", "osteoporosis"]
    assert resolve_class_names(None, 4) == ["0", "1", "2", "3"]
