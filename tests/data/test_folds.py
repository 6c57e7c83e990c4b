"""Fold split, record loading, target statistics and class names of monai_bone.data.folds."""

from __future__ import annotations

import json
import logging
import math

import pytest

from monai_bone.constants import KNEE_LABELS_THREE
from monai_bone.data.folds import (
    class_names,
    datalist_info,
    fold_records,
    has_value,
    load_records,
    split_folds,
    target_stats,
)


def _write(path, records, **top):
    data = {"task": "hip", "synthetic": True, "num_folds": 3, **top, "training": records}
    path.write_text(json.dumps(data))
    return path


def _records(n=9, folds=3):
    return [
        {"image": f"img/{i}.dcm", "patient_id": f"P{i}", "bmd": 0.7 + 0.02 * i, "fold": i % folds} for i in range(n)
    ]


def test_split_folds_partitions_records():
    recs = _records()
    train, val = split_folds(recs, 1)
    assert {r["fold"] for r in val} == {1}
    assert {r["fold"] for r in train} == {0, 2}
    assert len(train) + len(val) == len(recs)
    # several held-out folds
    train, val = split_folds(recs, [0, 2])
    assert {r["fold"] for r in train} == {1} and len(val) == 6


def test_split_folds_errors_name_the_problem():
    recs = _records()
    with pytest.raises(ValueError, match=r"val_fold \[7\] not found; folds present are \[0, 1, 2\]"):
        split_folds(recs, 7, source="my.json")
    recs[4]["fold"] = None
    with pytest.raises(ValueError, match=r"my.json: record 4 .*has no 'fold'"):
        split_folds(recs, 0, source="my.json")
    single = [dict(r, fold=0) for r in _records()]
    with pytest.raises(ValueError, match="no training records left"):
        split_folds(single, 0)


def test_fold_records_absolute_paths_and_required_target(tmp_path, caplog):
    recs = _records()
    recs[0]["bmd"] = None  # fold 0, training part when val_fold=1
    recs[3]["bmd"] = float("nan")  # fold 0
    path = _write(tmp_path / "datalist.json", recs)
    with caplog.at_level(logging.WARNING, logger="monai_bone.data.folds"):
        train = fold_records(path, val_fold=1, part="train", require="bmd")
    assert len(train) == 6 - 2
    assert "2 of 6 train records have no 'bmd'" in caplog.text
    assert all(r["image"].startswith(str(tmp_path)) for r in train)
    val = fold_records(path, val_fold=1, part="val", require="bmd")
    assert sorted(r["patient_id"] for r in val) == ["P1", "P4", "P7"]
    assert len(fold_records(path, val_fold=None, part="train")) == 9
    assert fold_records(path, val_fold=None, part="val") == []
    assert len(fold_records(path, part="all")) == 9
    with pytest.raises(ValueError, match="part must be one of"):
        fold_records(path, part="holdout")
    with pytest.raises(ValueError, match="no locked test split"):
        fold_records(path, part="test")


def test_fold_records_without_any_label_explains_how_to_fix(tmp_path):
    recs = [dict(r, bmd=None) for r in _records()]
    path = _write(tmp_path / "datalist.json", recs)
    with pytest.raises(ValueError, match="no train record has a 'bmd' value; join the ground truth CSV"):
        fold_records(path, 0, "train", require="bmd")


def test_load_records_and_info_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="datalist not found"):
        load_records(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not a valid JSON datalist"):
        datalist_info(bad)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        datalist_info(listed)
    no_image = _write(tmp_path / "noimg.json", [{"patient_id": "P1", "fold": 0}])
    with pytest.raises(ValueError, match="record 0 of 'training' has no 'image'"):
        load_records(no_image)
    not_list = tmp_path / "notlist.json"
    not_list.write_text('{"training": "x"}')
    with pytest.raises(ValueError, match="notlist.json: 'training' must be a list of records, got str"):
        load_records(not_list)
    not_record = tmp_path / "notrecord.json"
    not_record.write_text('{"training": ["a.dcm"]}')
    with pytest.raises(ValueError, match="notrecord.json: record 0 of 'training' has no 'image'"):
        load_records(not_record)
    info = datalist_info(_write(tmp_path / "ok.json", _records(), labels=["a", "b"]))
    assert info["task"] == "hip" and info["labels"] == ["a", "b"] and "training" not in info


def test_has_value_and_target_stats():
    assert has_value({"x": 0.0}, "x") and has_value({"x": "F"}, "x")
    assert not has_value({"x": None}, "x") and not has_value({"x": " "}, "x")
    assert not has_value({"x": float("nan")}, "x") and not has_value({}, "x")
    mean, sd = target_stats([{"bmd": 0.8}, {"bmd": 1.0}, {"bmd": None}], "bmd")
    assert mean == pytest.approx(0.9) and sd == pytest.approx(math.sqrt(0.02))
    assert target_stats([{"bmd": 0.8}], "bmd", default=(0.85, 0.13)) == (0.85, 0.13)
    assert target_stats([{"bmd": 0.8}, {"bmd": 0.8}], "bmd", default=(0.0, 0.5)) == (0.8, 0.5)


def test_class_names_checks_num_classes(tmp_path):
    two = _write(tmp_path / "two.json", _records(), labels=["normal", "osteoporosis"])
    assert class_names(two, 2) == ["normal", "osteoporosis"]
    with pytest.raises(ValueError, match=r"has 2 classes .* num_classes=3; pass --num_classes 2"):
        class_names(two, 3)
    unnamed = _write(tmp_path / "unnamed.json", _records())
    assert class_names(unnamed, 3) == list(KNEE_LABELS_THREE)
    with pytest.raises(ValueError, match="num_classes must be 2 or 3"):
        class_names(unnamed, 5)
