"""Smoke test of benchmarks/bench_data.py in --quick mode (tiny sizes): well-formed JSON/Markdown with every field.

No timing assertions: the numbers depend on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_data.py"

SYNTH_KEYS = {"task", "preset", "size", "studies_per_rep", "reps", "seconds", "median_s", "studies_per_s"}
INDEX_KEYS = {
    "task",
    "size",
    "files",
    "reps",
    "bare_seconds",
    "index_seconds",
    "bare_files_per_s",
    "index_files_per_s",
    "ratio",
    "bare_cpu_seconds",
    "index_cpu_seconds",
    "cpu_ratio",
    "scan_seconds",
    "scan_files_per_s",
    "scan_ratio",
    "goal_ratio",
    "meets_goal",
    "index_summary",
}


def _load():
    spec = importlib.util.spec_from_file_location("bench_data", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_bench_data_quick(tmp_path, capsys):
    bench = _load()
    argv = ["--out", str(tmp_path / "out"), "--quick", "--reps", "2", "--synth-n", "2", "--synth-size", "128"]
    argv += ["--index-n", "12", "--index-size", "64", "--workdir", str(tmp_path / "work")]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "studies/s" in printed and "ratio" in printed

    result = json.loads((tmp_path / "out" / "bench_data.json").read_text())
    assert set(result) == {
        "benchmark",
        "quick",
        "synthetic",
        "note",
        "environment",
        "synth",
        "synth_simple",
        "synth_ratio",
        "index",
    }
    assert result["quick"] is True and result["synthetic"] is True and "SYNTHETIC" in result["note"]
    assert {"python", "platform", "cpu_count", "pydicom", "numpy"} <= set(result["environment"])

    synth = result["synth"]
    assert set(synth) == SYNTH_KEYS
    assert (synth["task"], synth["size"], synth["studies_per_rep"], synth["reps"]) == ("hip", 128, 2, 2)
    assert len(synth["seconds"]) == 2 and all(_positive(s) for s in synth["seconds"])
    assert _positive(synth["median_s"]) and _positive(synth["studies_per_s"])
    simple = result["synth_simple"]  # the simple preset timed in the same run as the baseline
    assert set(simple) == SYNTH_KEYS and (synth["preset"], simple["preset"]) == ("realistic", "simple")
    assert math.isclose(result["synth_ratio"], synth["studies_per_s"] / simple["studies_per_s"], rel_tol=0.01)

    index = result["index"]
    assert set(index) == INDEX_KEYS
    assert (index["files"], index["size"], index["reps"], index["goal_ratio"]) == (12, 64, 2, 0.8)
    assert len(index["index_cpu_seconds"]) == 2 and _positive(index["cpu_ratio"])
    for key in ("bare_seconds", "index_seconds", "scan_seconds"):
        assert len(index[key]) == 2 and all(_positive(s) for s in index[key])
    for key in ("bare_files_per_s", "index_files_per_s", "scan_files_per_s", "ratio", "scan_ratio"):
        assert _positive(index[key])
    assert index["meets_goal"] == (index["ratio"] >= 0.8)
    assert index["index_summary"] == {"seen": 12, "used": 12, "rejected": 0}

    markdown = (tmp_path / "out" / "bench_data.md").read_text()
    assert "SYNTHETIC" in markdown and "ratio index / bare" in markdown and "ratio realistic / simple" in markdown
