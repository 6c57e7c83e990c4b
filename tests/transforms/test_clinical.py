"""ClinicalStats (fit on training records, JSON round trip, refusal of bad stats) and ClinicalVector[d]."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset

from monai_bone.constants import CATEGORICAL_CODES, CLINICAL_FIELDS
from monai_bone.transforms import ClinicalStats, ClinicalVector, ClinicalVectord, encode_field


def _records(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        height = float(rng.normal(1.65, 0.08))
        weight = float(rng.normal(72, 12))
        out.append(
            {
                "image": f"img{i}.dcm",
                "age_xray": float(rng.uniform(70, 81)),
                "age_bmd": float(rng.uniform(70, 81)),
                "height": height,
                "weight": weight,
                "bmi": weight / height**2,
                "alcohol": float(rng.gamma(1.5, 3.0)),
                "activity": float(rng.gamma(2.0, 2.0)),
                "diet_score": float(rng.normal(0, 1)),
                "sex": "F" if i % 2 else "M",
                "smoking": ("never", "former", "current")[i % 3],
            }
        )
    return out


def test_fit_matches_numpy_population_stats():
    records = _records(30)
    stats = ClinicalStats.fit(records)
    assert stats.fields == CLINICAL_FIELDS and stats.n_records == 30
    ages = np.array([r["age_xray"] for r in records])
    assert stats.mean["age_xray"] == pytest.approx(ages.mean())
    assert stats.std["age_xray"] == pytest.approx(ages.std(ddof=0))
    sex = np.array([CATEGORICAL_CODES["sex"][r["sex"]] for r in records])
    assert stats.mean["sex"] == pytest.approx(sex.mean()) and stats.std["sex"] == pytest.approx(sex.std())
    smoking = np.array([CATEGORICAL_CODES["smoking"][r["smoking"]] for r in records])
    assert stats.mean["smoking"] == pytest.approx(smoking.mean())


def test_fit_uses_only_the_given_records_and_skips_missing():
    train, held_out = _records(20, seed=1), _records(10, seed=2)
    for r in held_out:
        r["weight"] = 500.0  # would move the mean a lot if it leaked in
    stats = ClinicalStats.fit(train)
    assert stats.mean["weight"] == pytest.approx(np.mean([r["weight"] for r in train]))
    assert stats.mean["weight"] < 150
    assert ClinicalStats.fit(train + held_out).mean["weight"] > 150
    train[0]["height"] = None
    train[1]["height"] = float("nan")
    train[2]["height"] = ""
    partial = ClinicalStats.fit(train)
    assert partial.count["height"] == 17
    assert partial.mean["height"] == pytest.approx(np.mean([r["height"] for r in train[3:]]))


def test_fit_refuses_unknown_and_empty_fields():
    records = _records(5)
    with pytest.raises(ValueError, match="unknown clinical field"):
        ClinicalStats.fit(records, fields=("age_xray", "shoe_size"))
    for r in records:
        r["diet_score"] = None
    with pytest.raises(ValueError, match="'diet_score' has no value"):
        ClinicalStats.fit(records)
    with pytest.raises(ValueError, match="zero records"):
        ClinicalStats.fit([])


def test_fit_constant_field_gets_unit_sd_with_warning(caplog):
    records = _records(6)
    for r in records:
        r["sex"] = "F"
    with caplog.at_level(logging.WARNING, logger="monai_bone.transforms.clinical_stats"):
        stats = ClinicalStats.fit(records)
    assert stats.std["sex"] == 1.0 and stats.zero_variance == ("sex",)
    assert any("'sex' is constant" in r.getMessage() for r in caplog.records)
    vector, _ = ClinicalVector(stats=stats)({"sex": "F"})
    assert vector[CLINICAL_FIELDS.index("sex")] == 0.0


def test_save_load_round_trip(tmp_path):
    stats = ClinicalStats.fit(_records(12), fields=("age_xray", "bmi", "sex", "smoking"))
    path = stats.save(tmp_path / "stats" / "clinical_stats.json")
    assert sorted(p.name for p in path.parent.iterdir()) == ["clinical_stats.json"]  # no temp file left
    data = json.loads(path.read_text())
    assert data["format"] == "monai_bone.ClinicalStats" and data["fields"] == ["age_xray", "bmi", "sex", "smoking"]
    assert data["categorical_codes"] == {"sex": CATEGORICAL_CODES["sex"], "smoking": CATEGORICAL_CODES["smoking"]}
    loaded = ClinicalStats.load(path)
    assert loaded == stats and loaded.fields == stats.fields and loaded.count == stats.count
    assert ClinicalStats.from_dict(stats.to_dict()) == stats


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["mean"].update(shoe=1.0) or d["std"].update(shoe=1.0) or d["fields"].append("shoe"), "unknown"),
        (lambda d: d["std"].update(bmi=0.0), "standard deviation"),
        (lambda d: d["std"].update(bmi=-2.0), "standard deviation"),
        (lambda d: d["mean"].update(bmi=float("nan")), "mean must be finite"),
        (lambda d: d["std"].pop("bmi"), "lack mean/std"),
        (lambda d: d["categorical_codes"].update(sex={"F": 1.0, "M": 0.0}), "categorical codes"),
        (lambda d: d.update(format="something else"), "not monai_bone.ClinicalStats"),
    ],
)
def test_from_dict_refuses_bad_stats(change, message):
    data = ClinicalStats.fit(_records(8)).to_dict()
    change(data)
    with pytest.raises(ValueError, match=message):
        ClinicalStats.from_dict(data)


def test_load_refuses_garbage_naming_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        ClinicalStats.load(bad)
    with pytest.raises(FileNotFoundError):
        ClinicalStats.load(tmp_path / "missing.json")


def test_encode_field():
    assert encode_field("sex", "f") == 0.0 and encode_field("sex", " M ") == 1.0 and encode_field("sex", 1.0) == 1.0
    assert encode_field("smoking", "Former") == 1.0
    assert encode_field("weight", "71.5") == 71.5 and encode_field("weight", 71) == 71.0
    for missing in (None, float("nan"), "", "NA", float("inf")):
        assert math.isnan(encode_field("weight", missing))
    seen = []
    assert math.isnan(encode_field("sex", "X", lambda f, v: seen.append((f, v))))
    assert math.isnan(encode_field("sex", 7.0, lambda f, v: seen.append((f, v))))
    assert math.isnan(encode_field("alcohol", "lots", lambda f, v: seen.append((f, v))))
    assert seen == [("sex", "X"), ("sex", 7.0), ("alcohol", "lots")]


def test_vector_normalised_with_nan_and_mask(caplog):
    stats = ClinicalStats.fit(_records(25))
    record = dict(_records(1, seed=9)[0])
    record.pop("alcohol")  # absent key
    record["activity"] = None
    record["diet_score"] = float("nan")
    record["sex"] = "X"  # unknown code
    with caplog.at_level(logging.WARNING, logger="monai_bone.transforms.array"):
        vector, mask = ClinicalVector(stats=stats)(record)
    assert vector.shape == (10,) and vector.dtype == torch.float32 and mask.dtype == torch.float32
    missing = {"alcohol", "activity", "diet_score", "sex"}
    for i, field in enumerate(CLINICAL_FIELDS):
        if field in missing:
            assert math.isnan(vector[i]) and mask[i] == 0.0, field
        else:
            assert mask[i] == 1.0
            raw = encode_field(field, record[field])
            assert float(vector[i]) == pytest.approx((raw - stats.mean[field]) / stats.std[field], rel=1e-5)
    assert any("'sex'" in r.getMessage() and "'X'" in r.getMessage() for r in caplog.records)


def test_vector_without_stats_and_field_subset(tmp_path):
    record = {"weight": 70.0, "sex": "M", "smoking": "current", "age_xray": 75.0}
    vector, mask = ClinicalVector(fields=("smoking", "weight", "sex", "height"))(record)
    np.testing.assert_array_equal(vector[:3].numpy(), [2.0, 70.0, 1.0])
    assert math.isnan(vector[3]) and mask.tolist() == [1.0, 1.0, 1.0, 0.0]
    path = ClinicalStats.fit(_records(10), fields=("weight", "sex")).save(tmp_path / "s.json")
    by_path, _ = ClinicalVector(fields=("sex", "weight"), stats=str(path))(record)
    stats = ClinicalStats.load(path)
    assert float(by_path[1]) == pytest.approx((70.0 - stats.mean["weight"]) / stats.std["weight"])
    with pytest.raises(ValueError, match="no mean/std for \\['height'\\]"):
        ClinicalVector(fields=("weight", "height"), stats=path)
    with pytest.raises(ValueError, match="unknown clinical field"):
        ClinicalVector(fields=("weight", "shoe_size"))


def test_vectord_keys_and_dataloader_collation():
    stats = ClinicalStats.fit(_records(20))
    items = _records(4, seed=5)
    items[1]["sex"] = None
    items[2]["bmi"] = None
    transform = ClinicalVectord(stats=stats, remove_fields=True)
    out = transform(items[0])
    assert set(out) == {"image", "clinical", "clinical_mask"}
    assert ClinicalVectord(mask_key=None, output_key="meta_vec")(items[0]).keys() >= {"meta_vec", "sex"}
    batch = next(iter(DataLoader(Dataset(items, transform), batch_size=4)))
    assert batch["clinical"].shape == (4, 10) and batch["clinical_mask"].shape == (4, 10)
    assert batch["clinical_mask"][1, CLINICAL_FIELDS.index("sex")] == 0.0
    assert torch.isnan(batch["clinical"][2, CLINICAL_FIELDS.index("bmi")])
    assert int(batch["clinical_mask"].sum()) == 4 * 10 - 2
