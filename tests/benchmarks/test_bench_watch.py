"""Smoke test of benchmarks/bench_watch.py (--smoke: 3 studies at 64 px) against a real Orthanc: complete report, one
SR per study stored. No timing assertions."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from _bench_test_utils import load, positive

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from orthanc_server import find_dicomweb_plugin, find_orthanc  # noqa: E402


@pytest.mark.skipif(
    (find_orthanc() is None or find_dicomweb_plugin() is None) and os.environ.get("CI") != "true",
    reason="Orthanc + DICOMweb plugin not installed",
)
def test_smoke_run_writes_a_complete_report(tmp_path):
    report = load("bench_watch").main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "bench_watch.json").read_text())
    assert saved == json.loads(json.dumps(report)) and saved["synthetic"] is True
    assert saved["watch"]["stored"] == saved["in_process"]["srs"] == saved["srs_in_orthanc"] == 3
    assert positive(saved["ratio_studies_per_s"])
    assert "SYNTHETIC" in (tmp_path / "bench_watch.md").read_text()
