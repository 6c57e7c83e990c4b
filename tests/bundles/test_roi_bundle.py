"""The bundles' ROI mode end to end: train fits the localiser from synthetic landmarks, inference crops the ROI."""

from __future__ import annotations

import json

import pytest
import torch
from _bundle_test_utils import TINY, make_cohort, read_synthetic_csv, run_bundle

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def knee_datalist(tmp_path_factory):
    return make_cohort(tmp_path_factory.mktemp("roi_knee"), "knee", n=12, folds=3, seed=5)


def test_knee_roi_train_fits_localiser_and_inference_uses_it(knee_datalist, tmp_path):
    cohort = knee_datalist.parent
    roi = {"roi_size_mm": 40.0, "spatial_size": 32}
    tiny = {**TINY, **roi}
    run_bundle(
        "knee_osteoporosis_hybrid_attention",
        ["train.json"],
        {"bundle_root": tmp_path, "datalist": knee_datalist, "epochs": 1, "roi_landmarks_csv": cohort / "realism.csv"}
        | tiny,
    )
    models = tmp_path / "models"
    assert (models / "model.pt").is_file() and (models / "localiser.pt").is_file()
    fitted = json.loads((models / "localiser.pt.json").read_text())
    train = [r for r in json.loads(knee_datalist.read_text())["training"] if r["fold"] != 0]
    assert fitted["n_train"] == len(train) and fitted["held_out"]["n"] == 12 - len(train)
    localiser = torch.load(models / "localiser.pt", weights_only=True)
    assert set(localiser) >= {"state_dict", "size", "channels"}
    assert localiser["bilateral"] is True  # roi_bilateral: the knee localiser reads one knee of a bilateral image
    state = torch.load(models / "model.pt", weights_only=True)
    state = state.get("model", state)
    # the ROI input brings the texture descriptor (roi_texture_features = 32) into the head
    assert state["texture.0.filters.weight"].shape[0] == 32 and state["head.0.weight"].shape[1] == 1792 + 32

    out = tmp_path / "infer"
    overrides = {k: v for k, v in tiny.items() if k != "val_batch_size"}
    run_bundle(
        "knee_osteoporosis_hybrid_attention",
        ["inference.json"],
        {"bundle_root": tmp_path, "input": cohort / "dicom", "output_dir": out} | overrides,
    )
    rows = read_synthetic_csv(out / "predictions.csv")
    assert len(rows) == 12 and all(0.0 <= float(r["prob_osteoporosis"]) <= 1.0 for r in rows)


def test_roi_mode_without_localiser_or_landmarks_says_what_to_provide(knee_datalist, tmp_path):
    with pytest.raises(pytest.fail.Exception, match="no training record carries a landmark"):
        run_bundle(
            "knee_osteoporosis_hybrid_attention",
            ["train.json"],
            {"bundle_root": tmp_path, "datalist": knee_datalist, "epochs": 1, "roi_size_mm": 40.0} | TINY,
        )
    assert not (tmp_path / "models" / "model.pt").exists()
