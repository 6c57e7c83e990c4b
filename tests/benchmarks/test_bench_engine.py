"""Smoke test of benchmarks/bench_engine.py (--smoke: tiny images, 2 batches): complete JSON and Markdown.

No timing assertions; the checks are about the report being well formed and internally consistent.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from _bench_test_utils import check_environment, load, positive

RESULT_KEYS = {
    "task",
    "network",
    "config",
    "fast_path",
    "images_per_epoch",
    "bundle_epoch_s",
    "bare_epoch_s",
    "bundle_images_per_s",
    "bare_images_per_s",
    "ratio",
    "ratio_best",
    "overhead_ms_per_step",
    "goal_ratio",
    "meets_goal",
    "final_loss",
}


def test_smoke_run_writes_a_complete_report(tmp_path, capsys):
    bench = load("bench_engine")
    threads = torch.get_num_threads()
    report = bench.main(["--smoke", "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work")])
    assert torch.get_num_threads() == threads  # the one-thread preset is undone afterwards

    saved = json.loads((tmp_path / "out" / "bench_engine.json").read_text())
    assert saved == json.loads(json.dumps(report))
    top = {"benchmark", "command", "synthetic", "note", "environment", "settings", "results", "goal_ratio"}
    assert set(saved) == top | {"meets_goal", "gpu"}
    assert saved["command"].startswith("python benchmarks/bench_engine.py --smoke --out ")
    assert saved["benchmark"] == "bench_engine" and saved["synthetic"] is True and "SYNTHETIC" in saved["note"]
    check_environment(saved["environment"], "smoke")
    assert saved["environment"]["torch_threads"] == 1
    assert saved["settings"] == {
        "tasks": ["hip"],
        "size": 32,
        "batch": 2,
        "batches": 2,
        "reps": 2,
        "warmup": 1,
        "compile": False,
        "preset_overrides": {},
    }
    (row,) = saved["results"]
    assert set(row) == RESULT_KEYS
    assert row["task"] == "hip" and row["images_per_epoch"] == 4 and "train.json" in row["config"]
    assert len(row["bundle_epoch_s"]) == len(row["bare_epoch_s"]) == 2
    assert all(positive(s) for s in row["bundle_epoch_s"] + row["bare_epoch_s"])
    for key in ("bundle_images_per_s", "bare_images_per_s", "ratio", "ratio_best"):
        assert positive(row[key]), key
    assert math.isclose(row["ratio"], row["bundle_images_per_s"] / row["bare_images_per_s"], rel_tol=1e-2)
    assert row["meets_goal"] == (row["ratio"] >= 0.95) and saved["meets_goal"] == row["meets_goal"]
    assert all(math.isfinite(v) for v in row["final_loss"].values())  # both sides really trained
    expected_device = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert row["fast_path"]["device"] == expected_device
    assert row["fast_path"]["amp"] == torch.cuda.is_available()

    gpu = saved["gpu"]
    if not torch.cuda.is_available():
        assert gpu["status"].startswith("not measured")
        assert gpu["rows"] == [
            {
                "task": "hip",
                "fp32_images_per_s": None,
                "amp_images_per_s": None,
                "amp_speedup": None,
                "goal_amp_speedup": 2.0,
                "meets_goal": None,
            }
        ]
    markdown = (tmp_path / "out" / "bench_engine.md").read_text()
    assert markdown == capsys.readouterr().out
    assert "| hip | XAttnBMD (xattn) |" in markdown and "SYNTHETIC" in markdown and "Mode **smoke**" in markdown
    if not torch.cuda.is_available():
        assert "| hip | not measured | not measured | not measured |" in markdown


@pytest.mark.parametrize("bad", [["--batch", "1"], ["--size", "16"], ["--reps", "0"], ["--tasks", "spine"]])
def test_bad_arguments_exit_with_usage_error(tmp_path, bad, capsys):
    bench = load("bench_engine")
    with pytest.raises(SystemExit) as err:
        bench.parse_args(["--out", str(tmp_path), "--smoke", *bad])
    assert err.value.code == 2 and "error" in capsys.readouterr().err


def test_presets_and_explicit_values():
    bench = load("bench_engine")
    quick = bench.parse_args(["--out", "x", "--quick"])
    assert (quick.mode, quick.size, quick.batch, quick.threads, quick.tasks) == ("quick", 64, 8, 1, ["hip", "knee"])
    full = bench.parse_args(["--out", "x", "--batch", "4"])
    assert (full.mode, full.size, full.batch, full.threads) == ("full", 224, 4, 0)
