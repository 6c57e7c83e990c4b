"""Smoke test of benchmarks/bench_cli_startup.py (one timed run per case; no timing assertions)."""

from __future__ import annotations

import json
import math

from _bench_test_utils import check_environment, load, positive


def test_smoke_run_reports_cases_imports_and_ratios(tmp_path, capsys):
    bench = load("bench_cli_startup")
    assert bench.main(["--smoke", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench_cli_startup.json").read_text())
    assert report["benchmark"] == "bench_cli_startup" and report["settings"]["reps"] == 1
    check_environment(report["environment"], "smoke")
    cases = report["cases"]
    assert list(cases) == ["python", "import_torch", "before_help", "after_help", "after_export_help"]
    for case in cases.values():
        assert positive(case["median_s"]) and len(case["all_s"]) == 1
    # what each case imports is measured, not assumed: the baseline and the former start-up import torch, now not
    assert cases["import_torch"]["imports"] == {"torch": True, "monai": False}
    assert cases["before_help"]["imports"] == {"torch": True, "monai": True}
    assert cases["after_help"]["imports"] == {"torch": False, "monai": False}
    assert cases["after_export_help"]["imports"] == {"torch": False, "monai": False}
    ratios = report["ratios"]
    expected = cases["after_help"]["median_s"] / cases["import_torch"]["median_s"]
    assert math.isclose(ratios["after_help_over_import_torch"], expected, abs_tol=1e-3)
    expected = cases["after_help"]["median_s"] / cases["before_help"]["median_s"]
    assert math.isclose(ratios["after_help_over_before_help"], expected, abs_tol=1e-3)
    markdown = (tmp_path / "bench_cli_startup.md").read_text()
    assert markdown in capsys.readouterr().out and "after: monai-bone --help" in markdown

    rows = load("run_all").summary_rows("bench_cli_startup", report, report["command"])
    assert [r["value"] for r in rows] == [
        ratios["after_help_over_import_torch"],
        ratios["after_help_over_before_help"],
        ratios["after_export_help_over_import_torch"],
    ]
    assert all(r["mode"] == "smoke" for r in rows)
