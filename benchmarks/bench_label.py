"""Hip inference over MONAI Label HTTP vs the same bundle called in-process: requests/s and p50/p95 latency.

A real MONAI Label server (``monai_bone.label.server.LabelServer``, child process on 127.0.0.1) serves an untrained
copy of the hip bundle (random weights: latency only, predictions meaningless) over a SYNTHETIC hip cohort. The same
bundle is loaded in this process as a :class:`monai_bone.label.BundlePredictor` -- the object the server's infer task
calls -- so the ratio is the cost of serving: HTTP, FastAPI/MONAI Label request handling, the datastore lookup and the
JSON round trip. Requests are sequential (one client), alternating HTTP and in-process per study, ``--requests`` of
each over the cohort's studies after ``--warmup`` of each; both sides use ``--threads`` torch threads. The BMD each
path returns is compared (they must agree within 1e-5).

Usage::

    python benchmarks/bench_label.py --out results/bench            # full: 1024² DICOM, 224 px, 50 requests
    python benchmarks/bench_label.py --out results/bench --quick    # 2-core CPU: 512² DICOM, 224 px, 50 requests

Needs the ``label`` extra. Writes ``bench_label.json`` and ``bench_label.md`` to ``--out``.
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
    "smoke": {"image_size": 64, "size": 64, "studies": 2, "requests": 4, "warmup": 1, "threads": 1},
    "quick": {"image_size": 512, "size": 224, "studies": 5, "requests": 50, "warmup": 3, "threads": 1},
    "full": {"image_size": 1024, "size": 224, "studies": 10, "requests": 50, "warmup": 5, "threads": 0},
}


def _summary(seconds: list[float]) -> dict[str, float]:
    import numpy as np

    return {
        "requests": len(seconds),
        "requests_per_s": len(seconds) / sum(seconds),
        "p50_ms": 1000 * statistics.median(seconds),
        "p95_ms": 1000 * float(np.percentile(seconds, 95)),
        "mean_ms": 1000 * statistics.fmean(seconds),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write JSON + Markdown, print the table; returns the report."""
    import requests
    import torch

    from monai_bone.bundle import untrained_copy
    from monai_bone.constants import SYNTHETIC_NOTE
    from monai_bone.data.folds import load_records
    from monai_bone.label import BundlePredictor
    from monai_bone.label.process import free_port, port_is_free
    from monai_bone.label.server import LabelServer
    from monai_bone.label.studies import image_id_for

    args = parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the server process inherits it
    with common.torch_threads(args.threads), tempfile.TemporaryDirectory(prefix="bench_label_") as tmp:
        work = args.workdir or Path(tmp)
        datalist = common.make_cohort(work, "hip", max(args.studies, 5), size=args.image_size, folds=5)
        records = load_records(datalist)
        bundle = work / "bundle" / "hip_bmd_xattn"
        if not bundle.exists():
            untrained_copy(common.BUNDLES["hip"], bundle, records, seed=0)
        source = (datalist.parent / "dicom").resolve()  # the synthetic cohort's DICOM folder, served as is
        files = [(datalist.parent / r["image"]).resolve() for r in records][: args.studies]
        overrides = {"spatial_size": args.size}
        device = "cpu"
        predictor = BundlePredictor(bundle, device=device, overrides=overrides)
        port = free_port()
        server = LabelServer(
            source, work / "label", port=port, models=["hip"], bundles={"hip": bundle},
            overrides={"hip": overrides}, device=device,
        )  # fmt: skip
        print("starting MONAI Label ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        lat: dict[str, list[float]] = {"http": [], "in_process": []}
        diffs: list[float] = []
        with server, requests.Session() as session:
            startup_s = time.perf_counter() - t0
            ids = [image_id_for(f.relative_to(source)) for f in files]

            def http(i: int) -> dict:
                url = f"{server.url}/infer/hip_bmd_xattn"
                r = session.post(url, params={"image": ids[i], "output": "json"}, timeout=600)
                r.raise_for_status()
                return r.json()

            for k in range(args.warmup):
                http(k % len(files))
                predictor.predict(files[k % len(files)])
            print(f"timing {args.requests} sequential requests per path ...", file=sys.stderr, flush=True)
            for k in range(args.requests):
                i = k % len(files)
                order = [("http", lambda i=i: http(i)), ("in_process", lambda i=i: predictor.predict(files[i]))]
                got = {}
                for name, fn in order if k % 2 == 0 else order[::-1]:
                    t = time.perf_counter()
                    got[name] = fn()
                    lat[name].append(time.perf_counter() - t)
                diffs.append(abs(got["http"]["bmd"] - got["in_process"]["bmd"]))
        released = port_is_free(port)
        environment = common.machine_info(args.mode, device)  # inside torch_threads: the thread count used
    http_s, local_s = _summary(lat["http"]), _summary(lat["in_process"])
    report = {
        "benchmark": "bench_label",
        "command": common.command_line("bench_label", argv),
        "synthetic": True,
        "note": f"{SYNTHETIC_NOTE}; untrained (random) hip weights: latency only",
        "environment": environment,
        "settings": {
            "image_size": args.image_size,
            "size": args.size,
            "studies": len(files),
            "requests": args.requests,
            "warmup": args.warmup,
            "preset_overrides": args.preset_overrides,
        },
        "http": http_s,
        "in_process": local_s,
        "ratio_p50": http_s["p50_ms"] / local_s["p50_ms"],
        "ratio_p95": http_s["p95_ms"] / local_s["p95_ms"],
        "ratio_throughput": http_s["requests_per_s"] / local_s["requests_per_s"],
        "overhead_p50_ms": http_s["p50_ms"] - local_s["p50_ms"],
        "max_abs_diff_bmd": max(diffs),
        "server_startup_s": startup_s,
        "port_released": released,
        "torch": torch.__version__,
    }
    markdown = to_markdown(report)
    common.write_outputs(args.out, "bench_label", report, markdown)
    print(markdown)
    return report


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    env, s, h, p = report["environment"], report["settings"], report["http"], report["in_process"]
    mode = common.mode_label(env["mode"], s["preset_overrides"])

    def row(name: str, r: dict) -> str:
        cells = [f"{r['requests_per_s']:.2f}"] + [f"{r[k]:.1f} ms" for k in ("p50_ms", "p95_ms", "mean_ms")]
        return f"| {name} | " + " | ".join(cells) + " |"

    lines = [
        "# bench_label: hip inference over MONAI Label HTTP vs in-process (SYNTHETIC data, untrained weights)",
        "",
        f"Mode **{mode}**; device {env['device']}, {env['cpu_count']} CPU core(s), {env['torch_threads']} torch "
        f"threads. {s['requests']} sequential requests per path over {s['studies']} studies of "
        f"{s['image_size']}² DICOM -> {s['size']}² input, after {s['warmup']} warm-up requests.",
        "",
        "| path | requests/s | p50 | p95 | mean |",
        "| --- | ---: | ---: | ---: | ---: |",
        row("in-process BundlePredictor", p),
        row("MONAI Label HTTP (POST /infer)", h),
        "",
        f"HTTP / in-process: p50 {report['ratio_p50']:.2f}x, p95 {report['ratio_p95']:.2f}x, throughput "
        f"{report['ratio_throughput']:.2f}x (serving overhead {report['overhead_p50_ms']:.1f} ms at p50). "
        f"BMD of the two paths differ by at most {report['max_abs_diff_bmd']:.1e} g/cm². Server start-up "
        f"{report['server_startup_s']:.1f} s; port released after shutdown: {report['port_released']}.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick``/``--smoke`` pick smaller presets (explicit values win)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_label.json and bench_label.md")
    p.add_argument("--quick", action="store_true", help="preset for a 2-core CPU machine (about a minute)")
    p.add_argument("--smoke", action="store_true", help="tiniest preset (test suite); not a measurement")
    p.add_argument("--image-size", type=int, default=None, help="side of the synthetic DICOM images")
    p.add_argument("--size", type=int, default=None, help="bundle spatial_size (network input side)")
    p.add_argument("--studies", type=int, default=None, help="distinct studies the requests cycle over")
    p.add_argument("--requests", type=int, default=None, help="timed requests per path")
    p.add_argument("--warmup", type=int, default=None, help="untimed requests per path first")
    p.add_argument("--threads", type=int, default=None, help="torch threads of both sides (0: torch's choice)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the cohort and server files here")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, PRESETS)
    if args.size < 32 or args.image_size < 32 or min(args.studies, args.requests) < 1 or args.warmup < 0:
        p.error("--size/--image-size >= 32, --studies/--requests >= 1 and --warmup >= 0 are required")
    return args


if __name__ == "__main__":
    main()
