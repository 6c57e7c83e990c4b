"""Smoke test of benchmarks/bench_label_guard.py (--smoke: 1 MB, 2 uploads each): two real MONAI Label servers.

No timing assertions: the report must be complete, and the two servers must really run different apps (the guarded
one refuses ``params=null`` with 400, MONAI Label's bare app fails with 500).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _bench_test_utils import check_environment, load, positive

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "label"))
from _label_test_utils import require_monailabel  # noqa: E402


def test_smoke_run_compares_the_guarded_and_the_bare_app(tmp_path):
    require_monailabel()
    bench = load("bench_label_guard")
    report = bench.main(["--smoke", "--out", str(tmp_path / "out")])
    saved = json.loads((tmp_path / "out" / "bench_label_guard.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["benchmark"] == "bench_label_guard" and saved["synthetic"] is True
    check_environment(saved["environment"], "smoke")
    assert saved["params_null_status"] == {"guarded": 400, "bare": 500}
    assert all(positive(saved[app][k]) for app in ("guarded", "bare") for k in ("p50_ms", "mean_ms"))
    assert positive(saved["ratio_p50"]) and positive(saved["ratio_mean"])
    assert "SYNTHETIC" in (tmp_path / "out" / "bench_label_guard.md").read_text()
