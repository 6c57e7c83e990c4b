"""Datasets (cache modes, skipped studies) and collation of monai_bone.data."""

from __future__ import annotations

import pytest
import torch
from monai.data import CacheDataset, Dataset, PersistentDataset, decollate_batch
from monai.transforms import Compose

from monai_bone.data.collate import collate_records
from monai_bone.data.datasets import make_dataset
from monai_bone.transforms import ClinicalStats, ClinicalVectord

RECORDS = [
    {"patient_id": "A", "age_xray": 70.0, "weight": 60.0, "sex": "F"},
    {"patient_id": "B", "age_xray": 80.0, "weight": 80.0, "sex": "M"},
    {"patient_id": "C", "age_xray": 75.0, "weight": None, "sex": None},
]
FIELDS = ("age_xray", "weight", "sex")


def _vector_transform(records):
    stats = ClinicalStats.fit(records, fields=FIELDS)
    return Compose([ClinicalVectord(fields=FIELDS, stats=stats, mask_key=None)])


def test_make_dataset_modes(tmp_path):
    t = _vector_transform(RECORDS)
    assert isinstance(make_dataset(RECORDS, t), CacheDataset)
    assert type(make_dataset(RECORDS, t, cache="none")) is Dataset
    disk = make_dataset(RECORDS, t, cache="disk", cache_dir=tmp_path / "c")
    assert isinstance(disk, PersistentDataset)
    with pytest.raises(ValueError, match="cache='disk' needs a cache_dir"):
        make_dataset(RECORDS, t, cache="disk")
    with pytest.raises(ValueError, match="cache must be one of"):
        make_dataset(RECORDS, t, cache="ram")


def test_disk_cache_is_keyed_by_the_fitted_statistics(tmp_path):
    """Two folds share one disk cache; each must see values normalised with its own training statistics."""
    cache = tmp_path / "cache"
    fold_a = make_dataset(RECORDS, _vector_transform(RECORDS[:2]), cache="disk", cache_dir=cache)
    a = fold_a[0]["clinical"]
    fold_b = make_dataset(RECORDS, _vector_transform(RECORDS[1:]), cache="disk", cache_dir=cache)
    b = fold_b[0]["clinical"]
    assert not torch.allclose(a[:1], b[:1])  # age standardised with different means
    fresh = _vector_transform(RECORDS[1:])(dict(RECORDS[0]))["clinical"]
    torch.testing.assert_close(b, fresh, equal_nan=True)
    assert len(list(cache.glob("*.pt"))) == 2  # one entry per (record, transform) pair


def test_collate_records_keeps_missing_values_per_study():
    batch = [
        {"image": torch.zeros(1, 4, 4), "patient_id": "A", "bmd": None, "sop_instance_uid": None, "x": 1.0},
        {"image": torch.ones(1, 4, 4), "patient_id": None, "bmd": 0.7, "sop_instance_uid": "1.2", "x": 2.0},
    ]
    out = collate_records(batch)
    assert out["image"].shape == (2, 1, 4, 4)
    assert out["x"].tolist() == [1.0, 2.0]
    assert out["patient_id"] == ["A", None] and out["bmd"] == [None, 0.7]
    items = decollate_batch(out)
    assert items[1]["patient_id"] is None and items[1]["bmd"] == 0.7 and items[0]["sop_instance_uid"] is None
    torch.testing.assert_close(items[1]["image"], torch.ones(1, 4, 4))
    # a key missing from one sample becomes None there
    out = collate_records([{"a": torch.zeros(1)}, {"a": torch.ones(1), "extra": 3}])
    assert out["extra"] == [None, 3]
    # non-dictionary batches go to MONAI's collate unchanged
    assert collate_records([torch.zeros(2), torch.ones(2)]).shape == (2, 2)
