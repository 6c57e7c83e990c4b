"""Smoke test of benchmarks/run_all.py: runs two benchmarks in their smoke settings, collects every report.

No timing assertions: the report must list every benchmark with a status, carry the results it ran, and build the
summary table from them; ``--collect-only`` must rebuild the same summary without running anything.
"""

from __future__ import annotations

import json

from _bench_test_utils import check_environment, load

ALL = ["bench_data", "bench_networks", "bench_engine", "bench_datapath", "bench_inference", "bench_label", "accuracy"]
ALL += ["bench_cli_startup"]


def test_runs_selected_benchmarks_and_collects_the_report(tmp_path, capsys):
    run_all = load("run_all")
    out = tmp_path / "out"
    assert run_all.main(["--smoke", "--out", str(out), "--benchmarks", "bench_data", "bench_networks"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["benchmark"] == "run_all" and report["mode"] == "smoke" and report["synthetic"] is True
    check_environment(report["environment"], "smoke")
    assert list(report["benchmarks"]) == ALL
    for name in ("bench_data", "bench_networks"):
        b = report["benchmarks"][name]
        assert b["status"] == "ok" and b["seconds"] > 0 and f"benchmarks/{name}.py" in b["command"]
        assert b["result"] == json.loads((out / f"{name}.json").read_text())
    for name in ALL[2:]:
        assert report["benchmarks"][name]["status"] == "not run" and report["benchmarks"][name]["result"] is None

    rows = report["summary"]
    by_bench = {}
    for r in rows:
        assert {"benchmark", "measurement", "value", "goal", "met", "mode"} <= set(r)
        by_bench.setdefault(r["benchmark"], []).append(r)
    assert set(by_bench) == set(ALL)
    index = next(r for r in by_bench["bench_data"] if r["measurement"].startswith("index files/s"))
    data = report["benchmarks"]["bench_data"]["result"]["index"]
    assert index["value"] == data["ratio"] and index["met"] == data["meets_goal"] and index["goal"] == ">= 0.8"
    assert index["mode"] == "quick"  # bench_data has no smoke preset: run_all gives it --quick with tiny sizes
    nets = [r for r in by_bench["bench_networks"] if "train images/s" in r["measurement"]]
    assert len(nets) == 3 and all(r["value"] > 0 for r in nets)
    assert by_bench["bench_engine"] == [
        {"benchmark": "bench_engine", "measurement": "-", "value": "not run", "goal": "", "met": None, "mode": "-"}
    ]
    markdown = (out / "report.md").read_text()
    assert markdown in capsys.readouterr().out
    assert (
        "| bench_data | index files/s vs bare pydicom header loop" in markdown and "| accuracy | not run |" in markdown
    )

    assert run_all.main(["--out", str(out), "--collect-only"]) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["benchmarks"]["bench_data"]["status"] == "collected"
    assert [r["value"] for r in again["summary"]] == [r["value"] for r in rows]


def test_summary_rows_of_results_written_by_the_other_benchmarks(tmp_path):
    """The summarisers read the fields the benchmark scripts write (GPU rows stay 'not measured' without CUDA)."""
    engine = load("bench_engine")
    run_all = load("run_all")
    report = engine.main(["--smoke", "--out", str(tmp_path), "--workdir", str(tmp_path / "w")])
    rows = run_all.summary_rows("bench_engine", report, "python benchmarks/bench_engine.py --smoke")
    assert rows[0]["value"] == report["results"][0]["ratio"] and rows[0]["goal"] == ">= 0.95"
    assert rows[0]["mode"] == "smoke" and rows[0]["command"].endswith("--smoke")
    gpu = rows[1]
    assert "GPU" in gpu["measurement"]
    if report["gpu"]["rows"][0]["amp_speedup"] is None:
        assert gpu["value"].startswith("not measured") and gpu["met"] is None
