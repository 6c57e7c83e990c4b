"""Smoke test of benchmarks/bench_label.py (--smoke: 2 studies at 64 px, 4 requests): a real MONAI Label server.

No timing assertions: the report must be complete, both paths must return the same BMD, and the port must be free
after the server stopped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _bench_test_utils import check_environment, load, positive

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "label"))
from _label_test_utils import require_monailabel  # noqa: E402


def test_smoke_run_writes_a_complete_report(tmp_path):
    require_monailabel()
    bench = load("bench_label")
    report = bench.main(["--smoke", "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work")])
    saved = json.loads((tmp_path / "out" / "bench_label.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["benchmark"] == "bench_label" and saved["synthetic"] is True and "untrained" in saved["note"]
    check_environment(saved["environment"], "smoke")
    assert saved["environment"]["torch_threads"] == 1
    for side in ("http", "in_process"):
        s = saved[side]
        assert s["requests"] == 4
        assert all(positive(s[k]) for k in ("requests_per_s", "p50_ms", "p95_ms", "mean_ms"))
        assert s["p95_ms"] >= s["p50_ms"]
    assert positive(saved["ratio_p50"]) and positive(saved["ratio_throughput"])
    assert saved["max_abs_diff_bmd"] <= 1e-5
    assert saved["port_released"] is True
    md = (tmp_path / "out" / "bench_label.md").read_text()
    assert "SYNTHETIC" in md and "MONAI Label HTTP" in md
