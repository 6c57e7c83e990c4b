"""``monai-bone cv --task knee`` on a 3-class index (the synthetic knee default): the network gets three logits from the
datalist's class names (no ``--set num_classes=3`` needed), and the locked test split's report chooses its operating
points on the same "osteoporosis vs rest" reference the CV wrote (``oof_predictions.csv``: ``true`` 0/1), not on
all-negative labels (SYNTHETIC data, 1 epoch, 32 px)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from monai_bone.cli import cv as cv_cli
from monai_bone.cli import parse_args
from monai_bone.data.datalist import build_datalist
from monai_bone.handlers import report as report_mod
from monai_bone.metrics.operating_points import choose_threshold
from monai_bone.synthetic.synth import synthesize


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


@pytest.fixture(scope="module")
def three_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("knee3")
    synthesize("knee", 15, root, seed=7, size=64, fmt="kop", n_classes=3, progress=False)
    build_datalist(root, root / "datalist.json", task="knee", folds=2, seed=7, progress=False)
    return root / "datalist.json"


def test_three_class_test_split_thresholds_use_the_cv_reference(
    three_class: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = json.loads(three_class.read_text())
    assert doc["labels"] == ["normal", "osteopenia", "osteoporosis"]
    read = report_mod.read_reference_predictions
    spy = mock.Mock(wraps=read)
    monkeypatch.setattr(report_mod, "read_reference_predictions", spy)
    out = tmp_path / "cv"
    argv = ["cv", "--task", "knee", "--data", str(three_class), "--out", str(out), "--epochs", "1", "--size", "32"]
    argv += ["--batch-size", "4", "--num-workers", "0", "--device", "cpu", "--variants", "hybrid", "--n-boot", "10"]
    assert cv_cli.run(parse_args([*argv, "--pretrained", "null", "--no-progress"])) == 0
    train = [r for r in doc["training"] if r.get("split") != "test"]
    oof = [r for r in _rows(out / "oof_predictions.csv") if r["variant"] == "hybrid"]
    assert len(oof) == len(train) and {r["loss"] for r in oof} == {"CrossEntropy"}
    # the CV's reference: osteoporosis (class 2) vs rest, as 0/1
    expected = {r["patient_id"]: float(int(r["label"]) == 2) for r in train}
    assert {r["id"]: float(r["true"]) for r in oof} == expected
    assert 0 < sum(expected.values()) < len(expected)  # both classes present: the cut is chosen on real labels

    metrics = json.loads((out / "test" / "hybrid" / "metrics.json").read_text())
    assert metrics["labels"] == ["normal", "osteopenia", "osteoporosis"] and metrics["positive"] == "osteoporosis"
    scored = _rows(out / "test" / "hybrid" / "predictions.csv")  # the kept fit outputs three class probabilities
    assert scored and {"prob_normal", "prob_osteopenia", "prob_osteoporosis"} <= set(scored[0])
    assert spy.call_count == 1
    # what the report received: the same call again on the file it read
    ref_pred, ref_true = read(*spy.call_args.args, **spy.call_args.kwargs)
    # exactly the out-of-fold rows: each probability with its own 0/1 truth (not re-read as a class index)
    want = np.array(sorted((float(r["pred"]), float(r["true"])) for r in oof))
    got = np.array(sorted(zip(ref_pred.tolist(), ref_true.tolist())))
    assert np.allclose(got, want, atol=1e-6)
    target = metrics["operating_points"]["targets"]["osteoporosis"]
    assert metrics["operating_points"]["thresholds_chosen_on"] == "training folds (oof_predictions.csv)"
    cut = choose_threshold(want[:, 0], want[:, 1].astype(bool), "youden")
    assert np.isfinite(cut) and target["youden"]["threshold"] == pytest.approx(cut, abs=1e-4)
    assert np.isfinite(target["sens90"]["threshold"])


def test_a_class_count_that_contradicts_the_datalist_is_one_clear_line(
    three_class: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    from monai_bone.cli import main

    argv = ["cv", "--task", "knee", "--data", str(three_class), "--out", str(tmp_path / "cv"), "--no-progress"]
    assert main([*argv, "--set", "num_classes=2"]) != 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "bad --set num_classes=2" in errors[0]
    assert "3 classes (normal, osteopenia, osteoporosis)" in errors[0]
    assert "Traceback" not in capsys.readouterr().err and not (tmp_path / "cv").exists()
    # the count the datalist has is accepted as given
    assert cv_cli._with_class_count("knee", str(three_class), {"num_classes": 3}) == {"num_classes": 3}
