"""Smoke test of benchmarks/bench_encoders.py (one encoder, one step; no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_encoders.py"


def test_one_encoder_frozen_and_trainable(tmp_path):
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--out",
        str(tmp_path),
        "--encoders",
        "resnet34",
        "--batch",
        "1",
        "--size",
        "64",
    ]
    proc = subprocess.run([*cmd, "--steps", "1", "--warmup", "0"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "bench_encoders.json").read_text())
    assert report["synthetic_input"] is True and "no accuracy" in report["note"]
    rows = {r["backbone"]: r for r in report["rows"]}
    assert set(rows) == {"trainable", "frozen"} and rows["trainable"]["step_ratio"] == 1.0
    assert rows["frozen"]["trainable_params"] < rows["trainable"]["trainable_params"]
    assert all(r["step_s_median"] > 0 and r["peak_mb"] >= 0 for r in rows.values())
    assert "| resnet34 | 64 | frozen |" in (tmp_path / "bench_encoders.md").read_text()
