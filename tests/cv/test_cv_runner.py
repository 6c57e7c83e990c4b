"""CV runner: fold grouping, cohort lookup, and a tiny hip ablation with every row (baselines, fusions, losses)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from monai_bone.constants import SYNTHETIC_NOTE
from monai_bone.cv import runner
from monai_bone.cv.folds import cv_splits, find_cohort_info, resolve_datalist
from monai_bone.cv.runner import run_cv


def test_cv_splits() -> None:
    assert cv_splits([0, 1, 2, 3, 0, 1]) == [[0], [1], [2], [3]]
    assert cv_splits([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    with pytest.raises(ValueError, match="at least 2 folds"):
        cv_splits([0, 0, 0])
    with pytest.raises(ValueError, match="only 2 folds"):
        cv_splits([0, 1], 3)


def test_knee_probability() -> None:
    import numpy as np

    from monai_bone.cv.rows import knee_probability

    prob, true = knee_probability(np.array([0.0, 2.0]), np.array([0.0, 1.0]))
    np.testing.assert_allclose(prob, [0.5, 1 / (1 + np.exp(-2.0))])
    np.testing.assert_array_equal(true, [0.0, 1.0])
    # three classes: probability of "osteoporosis" (last) vs rest
    prob, true = knee_probability(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 10.0]]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(prob, [1 / 3, np.exp(10) / (2 + np.exp(10))])
    np.testing.assert_array_equal(true, [0.0, 1.0])


def test_resolve_and_cohort(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="monai-bone index"):
        resolve_datalist(tmp_path)
    (tmp_path / "datalist.json").write_text("{}")
    assert resolve_datalist(tmp_path) == tmp_path / "datalist.json"
    (tmp_path / "cohort.json").write_text(json.dumps({"synthetic": True, "task": "hip", "oracle_r2": 0.8}))
    info = {"synthetic": True, "task": "hip", "source": "dicom"}
    assert find_cohort_info(tmp_path / "datalist.json", info)["oracle_r2"] == 0.8
    assert find_cohort_info(tmp_path / "datalist.json", {**info, "synthetic": False}) is None
    assert find_cohort_info(tmp_path / "datalist.json", {**info, "task": "knee"}) is None


@pytest.fixture(scope="module")
def hip_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    root = tmp_path_factory.mktemp("hipcv")
    synthesize("hip", 12, root, seed=3, size=64, progress=False)
    build_datalist(
        root / "dicom",
        root / "datalist.json",
        clinical=[root / "clinical.csv", root / "ground_truth.csv"],
        task="hip",
        folds=2,
        progress=False,
    )
    return root / "datalist.json"


def test_hip_cv_table_has_every_row(hip_datalist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = {"epochs": 1, "size": 32, "batch_size": 16, "num_workers": 0, "n_boot": 30, "progress": False}
    kwargs["overrides"] = {"pretrained": None}  # explicit random init (the bundle default, ImageNet, is not in CI)
    result = run_cv("hip", hip_datalist.parent, tmp_path / "cv", **kwargs)
    lines = result.paths["csv"].read_text().splitlines()
    assert lines[0] == f"# {SYNTHETIC_NOTE}"
    rows = list(csv.DictReader(lines[1:]))
    names = [r["variant"] for r in rows]
    assert names[:8] == ["ost", "clinical_ridge", "clinical_gbm", "image_stats", "image", "clinical", "concat", "xattn"]
    assert len(names) == 10 and all(n.endswith("_smoothl1") for n in names[8:])
    assert {r["loss"] for r in rows[4:8]} == {"WeightedSmoothL1"} and {r["loss"] for r in rows[8:]} == {"SmoothL1"}
    records = json.loads(hip_datalist.read_text())["training"]
    n_train = sum(r["split"] == "train" for r in records)
    assert n_train < 12  # the default locked test split never enters the CV
    for r in rows:
        assert r["n_folds"] == "2" and r["n_pooled"] == str(n_train) and r["synthetic"] == "True"
        assert r["split"] == "train folds (out-of-fold)" and r["selected_on_split"] == "False"
        assert int(r["n_studies"]) == n_train and 0 < int(r["n_patients"]) <= n_train
        for key in ("mse", "mae", "r2", "auc", "precision", "recall", "f1"):
            for stat in ("mean", "sd", "pooled", "ci_low", "ci_high"):
                float(r[f"{key}_{stat}"])  # every cell numeric
        for key in ("mse_mean", "mse_pooled", "mae_pooled", "r2_pooled", "mse_ci_low", "mse_ci_high"):
            assert math.isfinite(float(r[key])), (r["variant"], key)
    assert all(int(r["params"]) > 0 for r in rows[4:8])
    comparisons = list(csv.DictReader(result.paths["comparisons_csv"].read_text().splitlines()[1:]))
    pairs = {(c["a"], c["b"], c["metric"]) for c in comparisons}
    assert {("xattn", "concat", "mse"), ("xattn", "concat", "auc"), ("xattn", "image_stats", "r2")} <= pairs
    assert "Paper reported (not ours" in result.paths["comparisons_md"].read_text()
    md = result.paths["markdown"].read_text()
    assert "SYNTHETIC DATA" in md and "Synthetic oracle R²" in md and result.oracle_r2 is not None
    assert result.paths["png"].stat().st_size > 1000
    preds = result.paths["predictions"].read_text().splitlines()
    assert len(preds) == 2 + 10 * n_train  # comment + header + every study of every row
    # a CV fit leaves only its out-of-fold predictions, except each network row's fold-0 model, kept because it
    # scored the locked test split (monai_bone.cv.test_split)
    runs = tmp_path / "cv" / "runs"
    kept = sorted(str(p.relative_to(runs)) for p in runs.rglob("*.pt"))
    assert kept == sorted(f"{n}/fold0/models/model.pt" for n in names[4:])
    assert json.loads(result.paths["test_xattn"].read_text())["split"] == "test"

    # a second run with the same settings reuses every finished fit (no training)
    def fail(*_a, **_k):
        raise AssertionError("retrained a finished fit")

    monkeypatch.setattr(runner, "train_and_predict", fail)
    again = run_cv("hip", hip_datalist, tmp_path / "cv", **kwargs)
    assert [r["variant"] for r in again.rows] == names
    assert again.rows[7]["mse_pooled"] == pytest.approx(float(rows[7]["mse_pooled"]))


def test_bad_arguments(hip_datalist: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown hip variant"):
        run_cv("hip", hip_datalist, tmp_path, variants=["hybrid"], progress=False)
    with pytest.raises(ValueError, match="not 'knee'"):
        run_cv("knee", hip_datalist, tmp_path, progress=False)
    with pytest.raises(ValueError, match="only 2 folds"):
        run_cv("hip", hip_datalist, tmp_path, folds=5, progress=False)
