"""Cost of the request guard on uploads: ``PUT /datastore/`` through the guarded app vs MONAI Label's bare app.

Two real MONAI Label servers (``monai_bone.label.server.LabelServer``, child processes on 127.0.0.1) serve the same
SYNTHETIC hip cohort with the same app and datastore (:class:`~monai_bone.label.datastore.ArchiveDatastore`); one runs
``monai_bone.label.asgi:app`` (the guard: body spooled and checked, form scanned, then replayed), the other MONAI
Label's own ``monailabel.app:app``. One client uploads the same ``--upload-mb`` file (a DICOM prefix plus random bytes)
``--requests`` times to each, alternating, after ``--warmup`` uploads each, and deletes it after every upload.

Usage::

    python benchmarks/bench_label_guard.py --out results/bench            # full: 50 MB, 20 uploads each
    python benchmarks/bench_label_guard.py --out results/bench --quick    # 2-core CPU: 20 MB, 10 uploads each

Needs the ``label`` extra. Writes ``bench_label_guard.json`` and ``bench_label_guard.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as common  # noqa: E402

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"upload_mb": 1.0, "requests": 2, "warmup": 1},
    "quick": {"upload_mb": 20.0, "requests": 10, "warmup": 2},
    "full": {"upload_mb": 50.0, "requests": 20, "warmup": 3},
}
APPS = {"guarded": "monai_bone.label.asgi:app", "bare": "monailabel.app:app"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write JSON + Markdown, print the table; returns the report."""
    import requests

    from monai_bone.bundle import untrained_copy
    from monai_bone.constants import SYNTHETIC_NOTE
    from monai_bone.data.folds import load_records
    from monai_bone.label.process import free_port
    from monai_bone.label.server import LabelServer

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_label_guard_") as tmp:
        work = Path(tmp)
        datalist = common.make_cohort(work, "hip", 5, size=64, folds=5)
        bundle = work / "bundle" / "hip_bmd_xattn"
        untrained_copy(common.BUNDLES["hip"], bundle, load_records(datalist), seed=0)
        source = (datalist.parent / "dicom").resolve()
        payload = b"\0" * 128 + b"DICM" + os.urandom(int(args.upload_mb * 1024 * 1024))
        cap = args.upload_mb + 10
        servers = {
            name: LabelServer(
                source,
                work / name,
                port=free_port(),
                models=["hip"],
                bundles={"hip": bundle},
                device="cpu",
                max_upload_mb=cap,
                extra_args=["--uvicorn_app", app],  # the last --uvicorn_app wins
            )  # fmt: skip
            for name, app in APPS.items()
        }
        lat: dict[str, list[float]] = {name: [] for name in servers}
        for server in servers.values():
            server.start()
        probe: dict[str, int] = {}
        try:
            with requests.Session() as http:
                for name, server in servers.items():  # which app answers: the guard refuses params=null with 400
                    bad = {"params": "null"}
                    r = http.put(f"{server.url}/datastore/", data=bad, files={"file": ("p.dcm", payload[:200])})
                    probe[name] = r.status_code
                for k in range(args.warmup + args.requests):
                    for name in list(servers) if k % 2 == 0 else list(servers)[::-1]:
                        url = f"{servers[name].url}/datastore/"
                        t = time.perf_counter()
                        r = http.put(url, params={"image": "upload"}, files={"file": ("u.dcm", payload)}, timeout=600)
                        seconds = time.perf_counter() - t
                        if r.status_code != 200:
                            raise RuntimeError(f"{name}: upload answered {r.status_code}: {r.text[:300]}")
                        http.delete(url, params={"id": "upload"}, timeout=60).raise_for_status()
                        if k >= args.warmup:
                            lat[name].append(seconds)
        finally:
            for server in servers.values():
                server.stop()
        environment = common.machine_info(args.mode, "cpu")
    summary = {
        name: {"p50_ms": 1000 * statistics.median(s), "mean_ms": 1000 * statistics.fmean(s)} for name, s in lat.items()
    }
    report = {
        "benchmark": "bench_label_guard",
        "command": common.command_line("bench_label_guard", argv),
        "synthetic": True,
        "note": f"{SYNTHETIC_NOTE}; the upload is a DICOM prefix plus random bytes (stored, not inferred)",
        "environment": environment,
        "settings": {
            "upload_mb": args.upload_mb,
            "requests": args.requests,
            "warmup": args.warmup,
            "preset_overrides": args.preset_overrides,
        },  # fmt: skip
        **summary,
        "params_null_status": probe,
        "ratio_p50": summary["guarded"]["p50_ms"] / summary["bare"]["p50_ms"],
        "ratio_mean": summary["guarded"]["mean_ms"] / summary["bare"]["mean_ms"],
    }
    markdown = to_markdown(report)
    common.write_outputs(args.out, "bench_label_guard", report, markdown)
    print(markdown)
    return report


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    env, s = report["environment"], report["settings"]
    mode = common.mode_label(env["mode"], s["preset_overrides"])
    lines = [
        "# bench_label_guard: PUT /datastore/ through the request guard vs MONAI Label's bare app (SYNTHETIC data)",
        "",
        f"Mode **{mode}**; {env['cpu_count']} CPU core(s). {s['requests']} uploads of {s['upload_mb']:g} MB to each "
        f"server, alternating, after {s['warmup']} warm-up uploads each.",
        "",
        "| app | p50 | mean |",
        "| --- | ---: | ---: |",
        f"| MONAI Label bare (`monailabel.app:app`) | {report['bare']['p50_ms']:.0f} ms | "
        f"{report['bare']['mean_ms']:.0f} ms |",
        f"| guarded (`monai_bone.label.asgi:app`) | {report['guarded']['p50_ms']:.0f} ms | "
        f"{report['guarded']['mean_ms']:.0f} ms |",
        "",
        f"Guarded / bare: p50 {report['ratio_p50']:.2f}x, mean {report['ratio_mean']:.2f}x. An upload with "
        f"`params=null` is answered {report['params_null_status']['guarded']} by the guarded app and "
        f"{report['params_null_status']['bare']} by the bare one.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick``/``--smoke`` pick smaller presets (explicit values win)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_label_guard.json and .md")
    p.add_argument("--quick", action="store_true", help="preset for a 2-core CPU machine (about two minutes)")
    p.add_argument("--smoke", action="store_true", help="tiniest preset; not a measurement")
    p.add_argument("--upload-mb", type=float, default=None, help="size of the uploaded file in MB")
    p.add_argument("--requests", type=int, default=None, help="timed uploads per server")
    p.add_argument("--warmup", type=int, default=None, help="untimed uploads per server first")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, PRESETS)
    if not args.upload_mb > 0 or args.requests < 1 or args.warmup < 0:
        p.error("--upload-mb > 0, --requests >= 1 and --warmup >= 0 are required")
    return args


if __name__ == "__main__":
    main()
