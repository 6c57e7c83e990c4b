"""Smoke test of benchmarks/bench_networks.py in --quick mode (tiny input, a few networks; no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_networks.py"
NETS = ["xattn_bmd_clinical", "resnet34_stride2", "resnet34_stride1"]
RESULT_FIELDS = {
    "name": str,
    "description": str,
    "parameters": int,
    "forward_s_median": float,
    "forward_images_per_s": float,
    "train_step_s_median": float,
    "train_images_per_s": float,
    "forward_s_all": list,
    "train_step_s_all": list,
}


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), "--out", str(tmp_path), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_quick_run_writes_complete_json_and_markdown(tmp_path):
    args = ["--quick", "--size", "32", "48", "--batch", "2", "--repeats", "2", "--warmup", "0", "--threads", "1"]
    proc = _run(tmp_path, *args, "--nets", *NETS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "bench_networks.json").read_text())
    assert report["benchmark"] == "bench_networks" and report["synthetic_input"] is True
    assert "synthetic" in report["note"]
    assert report["quick"] is True and report["repeats"] == 2 and report["warmup"] == 0
    assert report["batch"] == 2 and report["size"] == [32, 48] and report["threads"] == 1
    assert report["device"] == "cpu" and report["torch"] and report["monai"]
    assert [r["name"] for r in report["results"]] == NETS
    for result in report["results"]:
        for key, kind in RESULT_FIELDS.items():
            assert isinstance(result[key], kind), (result["name"], key)
        assert len(result["forward_s_all"]) == len(result["train_step_s_all"]) == 2
        assert result["parameters"] > 0
        for key in ("forward_s_median", "forward_images_per_s", "train_step_s_median", "train_images_per_s"):
            assert math.isfinite(result[key]) and result[key] > 0
        assert math.isclose(result["forward_images_per_s"], 2 / result["forward_s_median"])
    assert set(report["ratios"]) == {
        "resnet34_stride2_over_stride1_forward_speedup",
        "resnet34_stride2_over_stride1_train_speedup",
    }
    by_name = {r["name"]: r for r in report["results"]}
    assert math.isclose(
        report["ratios"]["resnet34_stride2_over_stride1_forward_speedup"],
        by_name["resnet34_stride2"]["forward_images_per_s"] / by_name["resnet34_stride1"]["forward_images_per_s"],
    )
    markdown = (tmp_path / "bench_networks.md").read_text()
    assert markdown == proc.stdout
    for name in NETS:
        assert f"| {name} |" in markdown
    assert "resnet34_stride2_over_stride1_train_speedup" in markdown and "synthetic" in markdown


def _load_module():
    spec = importlib.util.spec_from_file_location("bench_networks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("bad", [["--batch", "1"], ["--size", "16"], ["--size", "64", "64", "64"], ["--nets", "vgg19"]])
def test_bad_arguments_exit_with_usage_error(tmp_path, bad, capsys):
    bench = _load_module()
    with pytest.raises(SystemExit) as err:
        bench.parse_args(["--out", str(tmp_path), "--quick", *bad])
    assert err.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "bench_networks.json").exists()


def test_quick_defaults():
    args = _load_module().parse_args(["--out", "x", "--quick"])
    assert (args.repeats, args.warmup, args.batch, args.size) == (3, 1, 8, [224, 224])
    assert "resnet34_stride1" in args.nets and "hybrid_attention" in args.nets
