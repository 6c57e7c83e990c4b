"""BonePredictionWriter inside a real SupervisedEvaluator: CSV/JSON contents, WHO boundaries, attention, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _bone_handler_helpers import (
    KNEE_BINARY_LABELS,
    KNEE_THREE_LABELS,
    direct_outputs,
    evaluator,
    hip_records,
    knee_records,
    linear_net,
    pixel_net,
    read_csv,
)

from monai_bone.constants import CLINICAL_FIELDS, SYNTHETIC_NOTE
from monai_bone.handlers import BonePredictionWriter
from monai_bone.metrics import to_probability

# predicted BMD -> (T-score, WHO class, screening-positive at 0.899)
HIP_CASES = [
    (0.899, -1.0, "normal", False),  # T = -1 exactly: normal, not screening-positive
    (0.719, -2.5, "osteoporosis", True),  # T = -2.5 exactly: osteoporosis
    (0.8989, -1.000833, "osteopenia", True),
    (0.7191, -2.499167, "osteopenia", True),
    (1.019, 0.0, "normal", False),
    (0.5, -4.325, "osteoporosis", True),
    (1.2, 1.508333, "normal", False),
]


def test_hip_predictions_boundaries_csv_and_json(tmp_path):
    values = [c[0] for c in HIP_CASES]
    writer = BonePredictionWriter(tmp_path, task="hip", synthetic=True)
    evaluator(pixel_net(), hip_records(values, truth=None), [writer]).run()  # inference: no label

    comments, rows = read_csv(tmp_path / "predictions.csv")
    assert comments == [f"# {SYNTHETIC_NOTE}"]
    assert len(rows) == 7
    assert list(rows[0]) == ["image", "patient_id", "bmd", "t_score", "who_class", "screening_positive", "error"]
    for row, (bmd, t, who, flag) in zip(rows, HIP_CASES):
        assert float(row["bmd"]) == pytest.approx(bmd, abs=1e-6)
        assert float(row["t_score"]) == pytest.approx(t, abs=2e-6)
        assert row["who_class"] == who, bmd
        assert row["screening_positive"] == str(flag), bmd
        assert row["error"] == ""
    doc = json.loads((tmp_path / "predictions.json").read_text())
    assert doc["task"] == "hip" and doc["synthetic"] is True and doc["note"] == SYNTHETIC_NOTE
    assert doc["n"] == 7 and doc["n_errors"] == 0
    assert doc["reference"] == {"mean": pytest.approx(1.019), "sd": 0.12, "units": "g/cm^2"}
    assert doc["screening_threshold"] == 0.899
    assert [p["who_class"] for p in doc["predictions"]] == [c[2] for c in HIP_CASES]
    assert [p["screening_positive"] for p in doc["predictions"]] == [c[3] for c in HIP_CASES]
    assert doc["predictions"][0]["patient_id"] == "SYN-H-0001"
    assert doc["predictions"][0]["image"] == "/data/study_00.dcm"


def test_hip_reference_is_configurable(tmp_path):
    writer = BonePredictionWriter(tmp_path, task="hip", ref_mean=1.0, ref_sd=0.1, filename="site_b")
    evaluator(pixel_net(), hip_records([0.9, 0.75, 0.8], truth=None), [writer]).run()
    _, rows = read_csv(tmp_path / "site_b.csv")
    assert [float(r["t_score"]) for r in rows] == pytest.approx([-1.0, -2.5, -2.0])
    assert [r["who_class"] for r in rows] == ["normal", "osteoporosis", "osteopenia"]


def test_hip_attention_columns_and_error_rows(tmp_path):
    values = [0.9, 0.8, 0.7, 1.0, 0.85, 0.95, 0.75]
    errors = ["", "", "", "", "", "decode failed: JPEG 2000 needs pylibjpeg-openjpeg", ""]
    weights = torch.softmax(torch.arange(len(CLINICAL_FIELDS), dtype=torch.float32), 0)

    def add_attention(item):  # what an attention-exporting inference pipeline puts beside "pred"
        return {**item, "field_weights": weights.clone()}

    writer = BonePredictionWriter(tmp_path, task="hip", relative_to="/data")
    evaluator(pixel_net(), hip_records(values, truth=None, errors=errors), [writer], postprocessing=add_attention).run()
    _, rows = read_csv(tmp_path / "predictions.csv")
    assert len(rows) == 7
    assert [r["image"] for r in rows] == [f"study_{i:02d}.dcm" for i in range(7)]
    attn_cols = [f"attn_{f}" for f in CLINICAL_FIELDS]
    assert [c for c in rows[0] if c.startswith("attn_")] == attn_cols
    assert list(rows[0])[-1] == "error"
    for i, row in enumerate(rows):
        if errors[i]:
            assert row["error"] == errors[i]
            assert row["bmd"] == row["who_class"] == row[attn_cols[0]] == ""
        else:
            np.testing.assert_allclose([float(row[c]) for c in attn_cols], weights.numpy(), atol=1e-6)
    doc = json.loads((tmp_path / "predictions.json").read_text())
    assert doc["n_errors"] == 1 and "bmd" not in doc["predictions"][5]
    assert doc["predictions"][5]["error"].startswith("decode failed")


@pytest.mark.parametrize("labels, out", [(KNEE_BINARY_LABELS, 1), (KNEE_THREE_LABELS, 3)])
def test_knee_probabilities_and_class_names(tmp_path, labels, out):
    records = knee_records(labels)
    net = linear_net(out)
    writer = BonePredictionWriter(tmp_path, task="knee")
    evaluator(net, records, [writer]).run()
    prob = to_probability(direct_outputs(net, records))
    probs = np.stack([1 - prob, prob], 1) if prob.ndim == 1 else prob
    names = ["normal", "osteoporosis"] if out == 1 else ["normal", "osteopenia", "osteoporosis"]
    _, rows = read_csv(tmp_path / "predictions.csv")
    assert len(rows) == 7
    assert list(rows[0])[:5] == ["image", "patient_id", "class_name", "class_index", "probability"]
    idx = (prob >= 0.5).astype(int) if prob.ndim == 1 else probs.argmax(1)
    assert [r["class_name"] for r in rows] == [names[i] for i in idx]
    assert [int(r["class_index"]) for r in rows] == idx.tolist()
    np.testing.assert_allclose([float(r["probability"]) for r in rows], probs[np.arange(7), idx], atol=1e-6)
    for c, name in enumerate(names):
        np.testing.assert_allclose([float(r[f"prob_{name}"]) for r in rows], probs[:, c], atol=1e-6)
    doc = json.loads((tmp_path / "predictions.json").read_text())
    assert doc["task"] == "knee" and doc["synthetic"] is False and "note" not in doc and doc["n"] == 7


def test_knee_custom_labels_and_probability_input(tmp_path):
    records = knee_records([0, 1, 1])
    net = torch.nn.Sequential(linear_net(2), torch.nn.Softmax(dim=1))  # already probabilities
    writer = BonePredictionWriter(tmp_path, task="knee", labels=["healthy", "osteoporotic"], logits=False)
    evaluator(net, records, [writer]).run()
    expected = direct_outputs(net, records)
    _, rows = read_csv(tmp_path / "predictions.csv")
    np.testing.assert_allclose([float(r["prob_osteoporotic"]) for r in rows], expected[:, 1], atol=1e-6)
    assert {r["class_name"] for r in rows} <= {"healthy", "osteoporotic"}
    assert json.loads((tmp_path / "predictions.json").read_text())["labels"] == ["healthy", "osteoporotic"]


def test_bad_arguments_and_outputs(tmp_path):
    with pytest.raises(ValueError, match="task"):
        BonePredictionWriter(tmp_path, task="wrist")
    with pytest.raises(ValueError, match="reference"):
        BonePredictionWriter(tmp_path, ref_sd=-0.1)
    writer = BonePredictionWriter(tmp_path, task="hip")
    with pytest.raises(ValueError, match="one BMD value"):
        evaluator(linear_net(2), hip_records([0.8, 0.9], truth=None), [writer]).run()
