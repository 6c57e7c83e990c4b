"""The locked test split (monai_bone.data.splits): patient-disjoint, stratified, seeded, recorded in the datalist."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from monai_bone.data.datalist import DATALIST_KEY, build_datalist
from monai_bone.data.folds import default_eval_part, fold_records, split_folds
from monai_bone.data.splits import assign_test_split, resolve_test_fraction, split_counts, training_split


def test_assign_test_split_is_patient_disjoint_stratified_and_seeded():
    groups = [f"p{i // 2}" for i in range(200)]  # 100 patients with 2 studies each
    strata = [(i // 2) % 4 for i in range(200)]  # 25 patients per stratum
    held = assign_test_split(groups, strata, 0.2, seed=1)
    test_patients = {g for g, h in zip(groups, held) if h}
    assert len(test_patients) == 20 and sum(held) == 40
    assert not test_patients & {g for g, h in zip(groups, held) if not h}  # no patient on both sides
    per_stratum = Counter(s for s, h in zip(strata, held) if h)
    assert all(v == 10 for v in per_stratum.values())  # 5 patients (10 studies) of each stratum
    assert held == assign_test_split(groups, strata, 0.2, seed=1)
    assert held != assign_test_split(groups, strata, 0.2, seed=2)
    assert assign_test_split(groups, strata, 0.0) == [False] * 200


def test_test_fraction_rules():
    assert resolve_test_fraction(None, labelled=True) == 0.2 and resolve_test_fraction(None, labelled=False) == 0.0
    with pytest.raises(ValueError, match="labelled"):
        resolve_test_fraction(0.2, labelled=False)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        resolve_test_fraction(1.0, labelled=True)
    with pytest.raises(ValueError, match="leaves 0 test"):
        assign_test_split(["a", "b", "c"], [0, 0, 0], 0.1, min_train_groups=2)
    assert split_counts([{"patient_id": "a"}, {"patient_id": "a"}, {"patient_id": None}]) == {
        "n_studies": 3,
        "n_patients": 2,
    }


@pytest.fixture(scope="module")
def hip_cohort(tmp_path_factory):
    from monai_bone.synthetic.synth import synthesize

    root = tmp_path_factory.mktemp("split_hip")
    synthesize("hip", 20, root, seed=4, size=64, progress=False)
    return root


def test_index_holds_out_whole_patients_and_records_the_split(hip_cohort, tmp_path):
    out = tmp_path / "datalist.json"
    clinical = [hip_cohort / "clinical.csv", hip_cohort / "ground_truth.csv"]
    summary = build_datalist(hip_cohort / "dicom", out, clinical=clinical, task="hip", folds=3, progress=False)
    doc = json.loads(out.read_text())
    assert doc["test_fraction"] == 0.2 and doc["test_seed"] == 0
    records = doc[DATALIST_KEY]
    test = [r for r in records if r["split"] == "test"]
    train = [r for r in records if r["split"] == "train"]
    assert test and train and len(test) + len(train) == len(records)
    assert all(r["fold"] is None for r in test) and all(r["fold"] in (0, 1, 2) for r in train)
    assert not {r["patient_id"] for r in test} & {r["patient_id"] for r in train}
    assert summary.test_studies == len(test) and sum(summary.fold_sizes.values()) == len(train)
    assert "locked test split" in str(summary)
    # every part but "test" excludes the test records; "test" is exactly them
    test_images = {r["image"] for r in fold_records(out, 0, "test")}
    assert len(test_images) == len(test)
    for part in ("train", "val", "all"):
        assert not test_images & {r["image"] for r in fold_records(out, 0, part)}
    assert not test_images & {r["image"] for part in split_folds(records, 0) for r in part}
    assert len(training_split(records)) == len(train)
    assert default_eval_part(out) == "test"
    # --test-fraction 0 turns it off
    off = tmp_path / "off.json"
    build_datalist(hip_cohort / "dicom", off, clinical=clinical, task="hip", folds=3, progress=False, test_fraction=0)
    assert all(r["split"] == "train" for r in json.loads(off.read_text())[DATALIST_KEY])
    assert default_eval_part(off) == "val"


def test_default_split_is_skipped_on_a_cohort_too_small_but_an_explicit_one_raises(hip_cohort, tmp_path):
    clinical = [hip_cohort / "clinical.csv", hip_cohort / "ground_truth.csv"]
    files = sorted((hip_cohort / "dicom").rglob("*.dcm"))[:2]
    small = tmp_path / "small"
    for f in files:
        (small / f.parent.name).mkdir(parents=True, exist_ok=True)
        (small / f.parent.name / f.name).write_bytes(f.read_bytes())
    summary = build_datalist(small, tmp_path / "dl.json", clinical=clinical, task="hip", folds=2, progress=False)
    assert summary.test_fraction == 0.0 and summary.test_studies == 0
    with pytest.raises(ValueError, match="leaves 0 test"):
        build_datalist(small, tmp_path / "x.json", clinical=clinical, task="hip", folds=2, test_fraction=0.2)
