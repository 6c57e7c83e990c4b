"""``run_cv`` scores the locked test split with thresholds chosen on the training split's out-of-fold predictions:
test records carry a sentinel BMD that must never reach a fit or a threshold choice (SYNTHETIC data, 1 epoch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_bone.cv import run_cv
from monai_bone.cv import test_split as test_split_mod
from monai_bone.handlers import report as report_mod
from monai_bone.metrics.operating_points import choose_threshold
from monai_bone.metrics.screening import screening_positive

#: planted on the test records (one each, distinct: the evaluator's R² needs spread): far below any synthetic hip
SENTINELS = (0.3011, 0.3022, 0.3033, 0.3044, 0.3055, 0.3066)


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


@pytest.fixture(scope="module")
def sentinel_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    root = tmp_path_factory.mktemp("cvtest")
    synthesize("hip", 15, root, seed=4, size=64, progress=False)
    datalist = root / "datalist.json"
    clinical = [root / "clinical.csv", root / "ground_truth.csv"]
    build_datalist(root / "dicom", datalist, clinical=clinical, task="hip", folds=2, seed=4, progress=False)
    doc = json.loads(datalist.read_text())
    test = [r for r in doc["training"] if r.get("split") == "test"]
    assert test
    assert len(test) <= len(SENTINELS) and min(float(r["bmd"]) for r in doc["training"]) > 0.35
    for r, value in zip(test, SENTINELS):
        r["bmd"] = value
    datalist.write_text(json.dumps(doc))
    return datalist


def test_cv_scores_test_split_with_thresholds_from_out_of_fold_predictions(
    sentinel_datalist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen_on: list[tuple[np.ndarray, np.ndarray]] = []
    read = report_mod.read_reference_predictions

    def spy(*args, **kwargs):
        chosen_on.append(read(*args, **kwargs))
        return chosen_on[-1]

    monkeypatch.setattr(report_mod, "read_reference_predictions", spy)
    held_out: list = []
    fit_baselines = test_split_mod.baseline_predictions

    def baselines_spy(task, datalist, val_fold, seed):
        held_out.append(val_fold)
        return fit_baselines(task, datalist, val_fold, seed)

    monkeypatch.setattr(test_split_mod, "baseline_predictions", baselines_spy)
    settings = {"epochs": 1, "size": 64, "batch_size": 4, "num_workers": 0, "device": "cpu", "n_boot": 20}
    result = run_cv(
        "hip",
        sentinel_datalist,
        tmp_path / "cv",
        variants=["image"],
        loss_ablation=False,
        overrides={"pretrained": None},
        progress=False,
        **settings,
    )
    records = json.loads(sentinel_datalist.read_text())["training"]
    test = [r for r in records if r.get("split") == "test"]
    train = [r for r in records if r.get("split") != "test"]

    # the thresholds' source: out-of-fold predictions of training-split records only (no sentinel, no test id)
    oof = [r for r in _rows(result.paths["predictions"]) if r["variant"] == "image"]
    assert len(oof) == len(train) and not {r["id"] for r in oof} & {r["patient_id"] for r in test}
    assert not {round(float(r["true"]), 4) for r in oof} & set(SENTINELS)

    # the test report: the kept fold-0 fit scored the test records (sentinel truths), nothing selected there
    metrics = json.loads(result.paths["test_image"].read_text())
    assert metrics["split"] == "test" and metrics["selected_on_split"] is False and "optimistic" not in metrics
    assert metrics["n_studies"] == len(test)
    scored = _rows(result.paths["test_image"].parent / "predictions.csv")
    assert sorted(float(r["true_bmd"]) for r in scored) == pytest.approx(SENTINELS[: len(test)], abs=1e-6)
    ops = metrics["operating_points"]
    assert ops["thresholds_chosen_on"] == "training folds (oof_predictions.csv)"

    # what the report chose its cuts on: exactly the out-of-fold rows, never a test record
    assert len(chosen_on) == 1
    ref_pred, ref_true = chosen_on[0]
    assert len(ref_true) == len(train) and not np.isin(np.round(ref_true, 4), SENTINELS).any()
    assert np.allclose(np.sort(ref_pred), np.sort([float(r["pred"]) for r in oof]), atol=1e-5)
    cut = choose_threshold(-ref_pred, screening_positive(ref_true, 0.899), "youden")
    assert ops["targets"]["low_bmd"]["youden"]["threshold_bmd"] == pytest.approx(-cut)

    summary = _rows(result.paths["test_split_csv"])
    baselines = ["OST index", "clinical-only ridge", "trivial image statistics + clinical ridge"]
    assert [r["variant"] for r in summary] == ["image", *baselines] and {r["split"] for r in summary} == {"test"}
    assert {r["n_studies"] for r in summary} == {str(len(test))} and {r["selected_on_split"] for r in summary} == {
        "False"
    }
    md = result.paths["test_split_md"].read_text()
    assert "SYNTHETIC" in md and "| OST index | test |" in md
    assert held_out == [[0]]  # the baselines train on what the kept fold-0 fit trained on: all but datalist fold 0
    paired = _rows(result.paths["test_split_paired_csv"])
    assert {(r["row"], r["b"], r["metric"]) for r in paired} == {
        ("image", b, m) for b in baselines for m in ("r2", "auc")
    }
    assert {r["n_studies"] for r in paired} == {str(len(test))}
    assert f"hip image vs OST index on 'test' (n {len(test)} studies / {len(test)} patients, paired): ΔR²" in md
    assert (tmp_path / "cv" / "runs" / "image" / "fold0" / "models" / "model.pt").is_file()
    assert not (tmp_path / "cv" / "runs" / "image" / "fold1" / "models" / "model.pt").exists()
