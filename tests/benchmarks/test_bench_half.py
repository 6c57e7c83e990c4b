"""benchmarks/bench_half.py on a tiny untrained hip bundle: rows for fp32/fp16/bf16, sizes halved, changes small."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
from _bundle_test_utils import make_cohort  # noqa: E402

from monai_bone.bundle import (
    default_bundle_dir,  # noqa: E402
    untrained_copy,  # noqa: E402
)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_half.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_half", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_half_rows_on_a_tiny_bundle(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    datalist = make_cohort(tmp_path, "hip", 6, folds=2, seed=0)
    records = json.loads(datalist.read_text())["training"]
    bundle = untrained_copy(default_bundle_dir("hip"), tmp_path / "hip_bmd_xattn", records, seed=0)
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["spatial_size"] = 64
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    mod = _module()
    rows = mod.measure_bundle(bundle, datalist, tmp_path / "work")
    assert [r["precision"] for r in rows] == ["fp32", "fp16", "bf16"]
    assert rows[0]["max_abs_change"] == 0 and rows[0]["size_ratio"] == 1
    for r in rows[1:]:
        assert 0.45 < r["size_ratio"] < 0.55 and r["max_abs_change"] < 0.05 and r["n_studies"] >= 1
    assert "SYNTHETIC" in mod.to_markdown(rows)
