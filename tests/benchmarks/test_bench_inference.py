"""Smoke test of benchmarks/bench_inference.py (--smoke: 2 studies at 64 px) and of its bare reference pipeline.

No timing assertions. The bare pipeline is checked against the bundle's own preprocessing on a MONOCHROME1 and a
MONOCHROME2 file: a latency comparison is only meaningful when both paths compute the same thing.
"""

from __future__ import annotations

import json
import math

import pydicom
import pytest
import torch
from _bench_test_utils import BENCHMARKS, check_environment, load, positive
from monai.bundle import ConfigParser

LATENCY_KEYS = {
    "bundle_ms",
    "bare_ms",
    "ratio",
    "goal_ratio",
    "meets_goal",
    "bundle_all_ms",
    "bare_all_ms",
    "max_abs_diff_bmd",
    "who_class_agreement",
    "evaluator_per_study_ms",
    "evaluator_ratio",
    "evaluator_outputs",
    "cold_single_study_s",
}


def test_smoke_run_writes_a_complete_report(tmp_path, capsys):
    bench = load("bench_inference")
    report = bench.main(["--smoke", "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work")])
    saved = json.loads((tmp_path / "out" / "bench_inference.json").read_text())
    assert saved == json.loads(json.dumps(report))
    top = {"benchmark", "command", "synthetic", "note", "environment", "settings", "latency", "backends"}
    assert set(saved) == top | {"meets_goal", "gpu"}
    assert saved["command"].startswith("python benchmarks/bench_inference.py --smoke --out ")
    assert saved["benchmark"] == "bench_inference" and saved["synthetic"] is True
    check_environment(saved["environment"], "smoke")
    assert saved["settings"]["studies"] == 2 and saved["settings"]["size"] == 64

    lat = saved["latency"]
    assert set(lat) == LATENCY_KEYS
    for key in ("bundle_ms", "bare_ms", "ratio", "evaluator_per_study_ms", "evaluator_ratio", "cold_single_study_s"):
        assert positive(lat[key]), key
    assert len(lat["bundle_all_ms"]) == len(lat["bare_all_ms"]) == 2
    assert math.isclose(lat["ratio"], lat["bundle_ms"] / lat["bare_ms"], rel_tol=1e-3)
    assert lat["meets_goal"] == (lat["ratio"] <= 1.3) == saved["meets_goal"]
    assert lat["max_abs_diff_bmd"] < 1e-3  # the two paths predict the same BMD
    assert lat["who_class_agreement"] == 1.0
    assert lat["evaluator_outputs"]  # the bundle's prediction writer wrote its report

    b = saved["backends"]
    assert positive(b["preprocess_ms"]) and positive(b["torchscript_build_s"])
    assert set(b["backends"]) == {"eager", "torchscript", "onnxruntime"}
    for name, row in b["backends"].items():
        if name == "onnxruntime" and row["forward_ms"] is None:  # optional extra not installed
            assert row["status"]
            continue
        assert positive(row["forward_ms"]) and row["end_to_end_ms"] > row["forward_ms"]
        assert row["max_abs_diff_vs_eager"] < 1e-3, name
    assert b["backends"]["eager"]["speedup_vs_eager"] == 1.0
    if not torch.cuda.is_available():
        assert saved["gpu"]["status"].startswith("not measured")

    markdown = (tmp_path / "out" / "bench_inference.md").read_text()
    assert markdown in capsys.readouterr().out
    assert "| bare: pydicom" in markdown and "| torchscript |" in markdown and "SYNTHETIC" in markdown


def test_bare_pipeline_matches_the_bundle_preprocessing(tmp_path):
    """Same image tensor (MONOCHROME1 and 2) and same clinical vector as inference.json's preprocessing."""
    bench = load("bench_inference")
    common = load("_bench_common")
    from monai_bone.data.folds import load_records
    from monai_bone.transforms.clinical_fit import fit_clinical_stats

    datalist = common.make_cohort(tmp_path, "hip", 12, size=96, folds=2, seed=3)
    records = load_records(datalist)
    stats = tmp_path / "stats.json"
    fit_clinical_stats(records, stats)
    parser = ConfigParser()
    parser.read_config(str(BENCHMARKS.parent / "bundles" / "hip_bmd_xattn" / "configs" / "inference.json"))
    parser.update({"clinical_stats_path": str(stats), "spatial_size": 48})
    parser.get_parsed_content("imports")
    preprocessing = parser.get_parsed_content("preprocessing")
    bare = bench.BareHipPipeline(None, 48, json.loads(stats.read_text()), torch.device("cpu"), 1.0, 0.1)
    kinds = {pydicom.dcmread(r["image"], stop_before_pixels=True).PhotometricInterpretation: r for r in records}
    assert set(kinds) == {"MONOCHROME1", "MONOCHROME2"}, "the cohort should hold both photometric kinds"
    for record in kinds.values():
        item = preprocessing(dict(record))
        torch.testing.assert_close(bare.image(record["image"])[0], item["image"].as_tensor(), atol=2e-3, rtol=0)
        torch.testing.assert_close(bare.clinical(record)[0], item["clinical"], equal_nan=True)


@pytest.mark.parametrize("bad", [["--size", "16"], ["--studies", "0"], ["--cold-reps", "0"]])
def test_bad_arguments_exit_with_usage_error(tmp_path, bad, capsys):
    bench = load("bench_inference")
    with pytest.raises(SystemExit) as err:
        bench.parse_args(["--out", str(tmp_path), "--smoke", *bad])
    assert err.value.code == 2 and "error" in capsys.readouterr().err
