"""Must show (issue 11): a locked test record is never seen by training, statistics, thresholds or CV fits;
evaluate.json scores the test split by default and says whether the model was selected on the split it scores.

Test-split records get sentinels no training record has (BMD >= 2.4 g/cm², age 119, weight 299 kg); every dataset
the bundle builds, the clinical statistics file, the baselines' fits and the CV outputs are checked for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _bundle_test_utils import BUNDLES, TINY

import monai_bone.data
from monai_bone.bundle import bundle_workflow, train_and_predict
from monai_bone.cv import baselines, image_stats, runner
from monai_bone.data.datalist import DATALIST_KEY, build_datalist
from monai_bone.handlers.report import OPTIMISTIC_LINE
from monai_bone.transforms import ClinicalStats

pytestmark = pytest.mark.timeout(900)

SENTINEL = {"age_xray": 119.0, "weight": 299.0}
SENTINEL_BMD = 2.4  # test records get 2.4, 2.401, ... (distinct, so R² on the test split is defined)
BUNDLE = BUNDLES / "hip_bmd_xattn"


def _has_sentinel(record) -> bool:
    return any(record.get(k) == v for k, v in SENTINEL.items()) or float(record.get("bmd") or 0) >= SENTINEL_BMD


@pytest.fixture(scope="module")
def sentinel_datalist(tmp_path_factory) -> Path:
    from monai_bone.synthetic.synth import synthesize

    root = tmp_path_factory.mktemp("sentinel")
    synthesize("hip", 20, root, seed=8, size=64, progress=False)
    datalist = root / "datalist.json"
    clinical = [root / "clinical.csv", root / "ground_truth.csv"]
    build_datalist(root / "dicom", datalist, clinical=clinical, task="hip", folds=3, seed=8, progress=False)
    doc = json.loads(datalist.read_text())
    for i, r in enumerate(r for r in doc[DATALIST_KEY] if r["split"] == "test"):
        r.update(SENTINEL, bmd=round(SENTINEL_BMD + 0.001 * i, 4))
    datalist.write_text(json.dumps(doc))
    return datalist


def _records(datalist: Path) -> list[dict]:
    return json.loads(datalist.read_text())[DATALIST_KEY]


def test_training_statistics_and_cv_never_see_a_test_record(sentinel_datalist, tmp_path, monkeypatch):
    records = _records(sentinel_datalist)
    n_test = sum(r["split"] == "test" for r in records)
    assert n_test >= 2 and sum(_has_sentinel(r) for r in records) == n_test

    # every dataset the bundle builds during training
    seen: list[dict] = []
    make_dataset = monai_bone.data.make_dataset

    def spy(data, *args, **kwargs):
        seen.extend(data)
        return make_dataset(data, *args, **kwargs)

    monkeypatch.setattr(monai_bone.data, "make_dataset", spy)
    run = tmp_path / "fit"
    overrides = {"epochs": 1, **TINY, "spatial_size": 32, "val_interval": 1}
    train_and_predict(BUNDLE, sentinel_datalist, [0], run, overrides, save_checkpoints=True)
    assert seen and not any(_has_sentinel(r) for r in seen)
    assert len(seen) == len(records) - n_test  # train folds + validation fold, nothing else

    # clinical normalisation statistics == those fitted on the training records alone
    saved = ClinicalStats.load(run / "models" / "clinical_stats.json")
    train_only = [r for r in records if r["split"] == "train" and r["fold"] != 0]
    assert saved == ClinicalStats.fit(train_only)
    assert saved.n_records == len(train_only)

    # CV baselines (OST line, clinical ridge, trivial image statistics): no fit receives a test record
    fitted: list[dict] = []
    for cls in (baselines.OSTBaseline, baselines.ClinicalBaseline, image_stats.ImageStatsBaseline):
        original = cls.fit

        def fit(self, recs, y, _original=original):
            fitted.extend(recs)
            assert not any(float(v) >= SENTINEL_BMD for v in y)
            return _original(self, recs, y)

        monkeypatch.setattr(cls, "fit", fit)
    result = runner.run_cv(
        "hip",
        sentinel_datalist,
        tmp_path / "cv",
        variants=["ost", "clinical_ridge", "image_stats"],
        n_boot=20,
        progress=False,
    )
    assert fitted and not any(_has_sentinel(r) for r in fitted)
    oof = [line.split(",") for line in result.paths["predictions"].read_text().splitlines()[2:]]
    assert oof and all(float(row[4]) < SENTINEL_BMD for row in oof)  # the "true" column
    assert all(r["n_studies"] == len(records) - n_test for r in result.rows)
    ops = result.paths["operating_points_csv"].read_text()
    assert "youden_sensitivity" in ops and "osta high (OST < -4)" in ops and "clinical_logistic" in ops
    assert "sex" in result.paths["subgroups_csv"].read_text()

    # --repeats: other fold seeds re-fold the training split only; the test records stay out of every repeat
    fitted.clear()
    again = runner.run_cv(
        "hip",
        sentinel_datalist,
        tmp_path / "cv_rep",
        variants=["ost", "image_stats"],
        n_boot=20,
        progress=False,
        repeats=2,
    )
    assert fitted and not any(_has_sentinel(r) for r in fitted)
    copy = _records(tmp_path / "cv_rep" / "repeat1" / "datalist.json")
    assert [r["split"] for r in copy] == [r["split"] for r in records]
    assert [r["fold"] for r in copy] != [r["fold"] for r in records]
    lines = again.paths["repeats_csv"].read_text().splitlines()[2:]
    assert len(lines) == 4 and "± " in again.paths["repeats_md"].read_text()


def test_evaluate_scores_the_test_split_and_says_when_it_is_optimistic(sentinel_datalist, tmp_path):
    records = _records(sentinel_datalist)
    test = [r for r in records if r["split"] == "test"]
    run = tmp_path / "fit"
    overrides = {"epochs": 1, **TINY, "spatial_size": 32, "val_interval": 1}
    train_and_predict(BUNDLE, sentinel_datalist, [0], run, overrides, save_checkpoints=True)
    common = {
        "datalist": str(sentinel_datalist),
        "ckpt_dir": str(run / "models"),
        "n_bootstrap": 20,
        **TINY,
        "spatial_size": 32,
    }

    def evaluate(out: Path, **extra) -> dict:
        wf = bundle_workflow(BUNDLE, ("train.json", "evaluate.json"), "train", output_dir=str(out), **common, **extra)
        wf.initialize()
        wf.run()
        wf.finalize()
        return json.loads((out / "metrics.json").read_text())

    m = evaluate(tmp_path / "eval_test")
    assert m["split"] == "test" and m["selected_on_split"] is False and "optimistic" not in m
    assert m["n_studies"] == len(test) and m["n_patients"] == len({r["patient_id"] for r in test})
    assert {"slope", "intercept"} <= set(m["calibration"]) and "proportional_p" in m["bland_altman"]

    v = evaluate(tmp_path / "eval_val", eval_part="val")
    val = [r for r in records if r["split"] == "train" and r["fold"] == 0]
    assert v["split"] == "val" and v["selected_on_split"] is True and v["optimistic"] == OPTIMISTIC_LINE
    assert v["n_studies"] == len(val)
