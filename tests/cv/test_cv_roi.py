"""``monai-bone cv`` with the ROI stage (one localiser per CV fold, shared by the fold's rows) and the explicit plain
Smooth L1 row, on a tiny synthetic hip cohort."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from monai_bone.cli import main as cli_main
from monai_bone.cv.roi import find_landmarks_csv, roi_fold_overrides
from monai_bone.cv.runner import run_cv
from monai_bone.engines import localiser as localiser_module


@pytest.fixture(scope="module")
def hip_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    root = tmp_path_factory.mktemp("hipcvroi")
    synthesize("hip", 12, root, seed=5, size=96, progress=False)
    build_datalist(
        root / "dicom",
        root / "datalist.json",
        clinical=[root / "clinical.csv", root / "ground_truth.csv"],
        task="hip",
        folds=2,
        progress=False,
    )
    return root / "datalist.json"


def test_roi_fold_overrides(tmp_path: Path) -> None:
    assert roi_fold_overrides(tmp_path, 0, None, None) == {}
    ov = roi_fold_overrides(tmp_path, 1, 30, tmp_path / "realism.csv")
    assert ov["roi_size_mm"] == 30.0 and ov["roi_localiser_path"].endswith("localisers/fold1.pt")
    with pytest.raises(ValueError, match="positive"):
        roi_fold_overrides(tmp_path, 0, 0, None)
    assert find_landmarks_csv(tmp_path / "datalist.json", {"synthetic": False}) is None


def test_cv_with_roi_shares_one_localiser_per_fold(
    hip_datalist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted: list[list[str]] = []
    real_fit = localiser_module.fit_localiser

    def counting_fit(records, path, **kwargs):
        fitted.append(sorted(Path(r["image"]).name for r in records))
        return real_fit(records, path, **{**kwargs, "epochs": 2})

    monkeypatch.setattr(localiser_module, "fit_localiser", counting_fit)
    result = run_cv(
        "hip",
        hip_datalist,
        tmp_path / "cv",
        variants=["ost", "xattn", "xattn_smoothl1"],
        epochs=1,
        size=32,
        batch_size=16,
        num_workers=0,
        n_boot=20,
        loss_ablation=False,
        overrides={"pretrained": None},
        progress=False,
        roi_size_mm=30.0,
    )
    # one localiser per CV fold, fitted once (the second network row of the fold reuses it) on that fold's training
    # records only: never on the held-out fold or the locked test split
    assert len(fitted) == 2
    records = json.loads(hip_datalist.read_text())["training"]
    for j, images in enumerate(fitted):
        assert (tmp_path / "cv" / "localisers" / f"fold{j}.pt").is_file()
        allowed = {Path(r["image"]).name for r in records if r.get("split") == "train" and int(r["fold"]) != j}
        assert images and set(images) <= allowed
    rows = list(csv.DictReader(result.paths["csv"].read_text().splitlines()[1:]))
    assert [r["variant"] for r in rows] == ["ost", "xattn", "xattn_smoothl1"]
    assert [r["loss"] for r in rows[1:]] == ["WeightedSmoothL1", "SmoothL1"]
    assert "30 mm region of interest" in result.paths["markdown"].read_text()
    fit = json.loads((tmp_path / "cv" / "runs" / "xattn" / "fold0" / "oof.json").read_text())
    assert fit["settings"]["extra"]["roi_size_mm"] == 30.0


def test_cli_cv_roi_option_reaches_the_runner(hip_datalist: Path, tmp_path: Path, monkeypatch) -> None:
    seen = {}

    def fake_run_cv(task, data, out, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr("monai_bone.cv.run_cv", fake_run_cv)
    with pytest.raises(SystemExit):
        cli_main(["cv", "--task", "hip", "--data", str(hip_datalist), "--roi-mm", "30", "--variants", "xattn_smoothl1"])
    assert seen["roi_size_mm"] == 30.0 and seen["roi_landmarks_csv"] is None
