"""Dataset caching, collation, device choice and DDP helpers of monai_bone.engines."""

from __future__ import annotations

import socket

import pytest
import torch
from monai.data import CacheDataset, Dataset, PersistentDataset, decollate_batch
from monai.transforms import Compose

from monai_bone.data.collate import collate_records
from monai_bone.data.datasets import make_dataset
from monai_bone.engines import (
    amp_enabled,
    as_bool,
    cleanup_distributed,
    distributed_device,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
    select_device,
    wrap_ddp,
)
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


def test_select_device_and_amp():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("auto") == select_device(None)
    with pytest.raises(ValueError, match="not a torch device"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda:0")
    assert amp_enabled("cuda:0") and not amp_enabled(torch.device("cpu"))


def test_distributed_helpers_outside_and_inside_a_gloo_group(monkeypatch):
    assert get_rank() == 0 and get_world_size() == 1 and is_main_process()
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="needs a distributed launch: torchrun"):
        init_distributed()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MASTER_PORT", str(port))
    try:
        assert init_distributed(backend="gloo")
        assert init_distributed()  # already initialised: no second group
        assert get_world_size() == 1 and is_main_process()
        device = distributed_device()
        net = wrap_ddp(torch.nn.Linear(3, 2), device)
        assert isinstance(net, torch.nn.parallel.DistributedDataParallel)
        assert net(torch.ones(4, 3, device=device)).shape == (4, 2)
        net.module.zero_grad()
    finally:
        cleanup_distributed()
    assert get_world_size() == 1
    cleanup_distributed()  # no group: no-op


def test_as_bool_reads_cli_strings():
    assert as_bool(True) and as_bool("true") and as_bool("YES") and as_bool(1) and as_bool("on")
    assert not as_bool(False) and not as_bool("false") and not as_bool("0") and not as_bool(None)
    with pytest.raises(ValueError, match="--resume must be true or false, got 'maybe'"):
        as_bool("maybe", "resume")
