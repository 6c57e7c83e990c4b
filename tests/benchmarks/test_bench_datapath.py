"""Smoke test of benchmarks/bench_datapath.py (--smoke: 12 studies, 2 epochs, memory cache): complete report.

No timing assertions: the checks are about the fields and their internal consistency.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from _bench_test_utils import check_environment, load, positive

RESULT_KEYS = {
    "cache",
    "dataset",
    "num_workers",
    "pin_memory",
    "fast_path",
    "train_studies",
    "cache_fill_s",
    "epochs",
    "epoch1_s",
    "epoch2plus_median_s",
    "epoch1_over_epoch2",
    "wait_fraction_epoch1",
    "wait_fraction_epoch2plus",
    "goal_wait_fraction",
    "meets_goal",
}


def test_smoke_run_writes_a_complete_report(tmp_path, capsys):
    bench = load("bench_datapath")
    argv = [
        "--smoke",
        "--out",
        str(tmp_path / "out"),
        "--workdir",
        str(tmp_path / "work"),
        "--caches",
        "memory",
        "none",
    ]
    report = bench.main(argv)
    saved = json.loads((tmp_path / "out" / "bench_datapath.json").read_text())
    assert saved == json.loads(json.dumps(report))
    top = {"benchmark", "command", "synthetic", "note", "environment", "settings", "results", "goal_wait_fraction"}
    assert set(saved) == top | {"meets_goal", "gpu"}
    assert saved["command"] == "python benchmarks/bench_datapath.py " + " ".join(argv)
    assert saved["benchmark"] == "bench_datapath" and saved["synthetic"] is True
    check_environment(saved["environment"], "smoke")
    assert saved["settings"]["epochs"] == 2 and saved["settings"]["caches"] == ["memory", "none"]
    assert saved["settings"]["preset_overrides"] == {"caches": ["memory", "none"]}  # recorded: not the plain preset

    memory, none = saved["results"]
    assert (memory["cache"], none["cache"]) == ("memory", "none")
    assert none["dataset"] == "Dataset" and "CacheDataset" in memory["dataset"]
    for row in (memory, none):
        assert set(row) == RESULT_KEYS
        assert row["num_workers"] == 0 and row["pin_memory"] is torch.cuda.is_available()
        assert row["train_studies"] >= 8
        assert [e["epoch"] for e in row["epochs"]] == [1, 2]
        for e in row["epochs"]:
            assert positive(e["epoch_s"]) and 0 <= e["data_wait_s"] <= e["epoch_s"]
            assert math.isclose(e["wait_fraction"], e["data_wait_s"] / e["epoch_s"], abs_tol=1e-3)
            assert e["batches"] == math.ceil(row["train_studies"] / 4)  # batch 4, drop_last false
        assert (
            row["epoch1_s"] == row["epochs"][0]["epoch_s"] and row["epoch2plus_median_s"] == row["epochs"][1]["epoch_s"]
        )
        assert math.isclose(row["epoch1_over_epoch2"], row["epoch1_s"] / row["epoch2plus_median_s"], rel_tol=1e-3)
        assert 0 <= row["wait_fraction_epoch2plus"] <= 1 and row["cache_fill_s"] >= 0
    assert memory["goal_wait_fraction"] == 0.1
    assert memory["meets_goal"] == (memory["wait_fraction_epoch2plus"] <= 0.1) == saved["meets_goal"]
    assert none["goal_wait_fraction"] is None and none["meets_goal"] is None  # the uncached reference is not judged
    if not torch.cuda.is_available():
        assert saved["gpu"]["status"].startswith("not measured")

    markdown = (tmp_path / "out" / "bench_datapath.md").read_text()
    assert markdown in capsys.readouterr().out
    assert "| memory |" in markdown and "(reference)" in markdown and "SYNTHETIC" in markdown
    assert "Mode **smoke, changed: caches=['memory', 'none']**" in markdown


@pytest.mark.parametrize("bad", [["--epochs", "1"], ["--batch", "1"], ["--caches", "ram"], ["--n", "3"]])
def test_bad_arguments_exit_with_usage_error(tmp_path, bad, capsys):
    bench = load("bench_datapath")
    with pytest.raises(SystemExit) as err:
        bench.parse_args(["--out", str(tmp_path), "--smoke", *bad])
    assert err.value.code == 2 and "error" in capsys.readouterr().err


def test_full_mode_uses_the_bundle_workers_unless_given():
    bench = load("bench_datapath")
    assert bench.parse_args(["--out", "x"]).num_workers is None
    assert bench.parse_args(["--out", "x", "--num-workers", "2"]).num_workers == 2
    assert bench.parse_args(["--out", "x", "--quick"]).num_workers == 1
