"""``monai-bone watch`` end to end vs the bundle's inference in-process on the same files: studies/s and their ratio.

A throw-away Orthanc with DICOMweb (``tests/data/orthanc_server.py``; Debian ``orthanc`` + ``orthanc-dicomweb``) holds
``--studies`` SYNTHETIC hip DX studies (uploaded before timing). The watch side times one poll of
:class:`monai_bone.results.watch.Watcher` -- QIDO-RS query, WADO-RS retrieval, the bundle's ``inference.json`` with
``write_sr: true``, STOW-RS of every SR -- the in-process side times ``inference.json`` with ``write_sr: true`` on the
same files from local disk. Both use an untrained copy of the hip bundle (random weights: speed only) and
``--threads`` torch threads. The ratio is the cost of the PACS round trip.

Usage::

    python benchmarks/bench_watch.py --out results/bench --quick    # 2-core CPU: 50 studies of 256² -> 128 px
    python benchmarks/bench_watch.py --out results/bench            # 50 studies of 1024² -> 224 px

Writes ``bench_watch.json`` and ``bench_watch.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as common  # noqa: E402

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"image_size": 64, "size": 64, "studies": 3, "threads": 1},
    "quick": {"image_size": 256, "size": 128, "studies": 50, "threads": 1},
    "full": {"image_size": 1024, "size": 224, "studies": 50, "threads": 0},
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write JSON + Markdown, print the table; returns the report."""
    import json

    from monai_bone.bundle import bundle_workflow, quiet_engines, untrained_copy
    from monai_bone.constants import SYNTHETIC_NOTE
    from monai_bone.data.folds import load_records
    from monai_bone.results.pacs import PacsClient
    from monai_bone.results.state import WatchState
    from monai_bone.results.watch import WatchConfig, Watcher

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    from orthanc_server import OrthancServer

    args = parse_args(argv)
    overrides = {"spatial_size": args.size, "num_workers": 0, "batch_size": 8, "device": "$torch.device('cpu')"}
    with common.torch_threads(args.threads), tempfile.TemporaryDirectory(prefix="bench_watch_") as tmp:
        work = Path(tmp)
        datalist = common.make_cohort(work, "hip", args.studies, size=args.image_size, folds=1)
        source = (datalist.parent / "dicom").resolve()
        bundle = untrained_copy(common.BUNDLES["hip"], work / "bundle" / "hip_bmd_xattn", load_records(datalist))
        files = sorted(source.rglob("*.dcm"))

        def in_process() -> dict:
            with quiet_engines():
                out = str(work / "local")
                wf = bundle_workflow(
                    bundle, ("inference.json",), "infer", input=str(source), output_dir=out, write_sr=True, **overrides
                )
                wf.initialize()
                wf.run()
                wf.finalize()
            return json.loads((work / "local" / "dicom" / "dicom_outputs.json").read_text())

        local_s, local_doc = common.timed(in_process)
        with OrthancServer(workdir=work / "orthanc") as server:
            for f in files:
                server.upload(f)
            config = WatchConfig(bundles={"hip": bundle}, workdir=work / "watch", overrides={"hip": overrides})
            watcher = Watcher(PacsClient(server.dicomweb_url), WatchState(work / "state.json"), config)
            logging.getLogger("monai_bone.results.watch").setLevel(logging.WARNING)
            watch_s, counts = common.timed(watcher.poll)
            stored = server.get_json("/statistics")["CountInstances"] - len(files)
        environment = common.machine_info(args.mode, "cpu")
    report = {
        "benchmark": "bench_watch",
        "command": common.command_line("bench_watch", argv),
        "synthetic": True,
        "note": f"{SYNTHETIC_NOTE}; untrained (random) hip weights: speed only",
        "environment": environment,
        "settings": {"image_size": args.image_size, "size": args.size, "studies": len(files)},
        "in_process": {"seconds": local_s, "studies_per_s": len(files) / local_s, "srs": local_doc["n_sr"]},
        "watch": {"seconds": watch_s, "studies_per_s": counts["stored"] / watch_s, "stored": counts["stored"]},
        "srs_in_orthanc": stored,
    }
    report["ratio_studies_per_s"] = report["watch"]["studies_per_s"] / report["in_process"]["studies_per_s"]
    markdown = to_markdown(report)
    common.write_outputs(args.out, "bench_watch", report, markdown)
    print(markdown)
    return report


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    env, s, w, p = report["environment"], report["settings"], report["watch"], report["in_process"]
    lines = [
        "# bench_watch: PACS round trip vs in-process inference (SYNTHETIC data, untrained weights)",
        "",
        f"Mode **{env['mode']}**; {env['cpu_count']} CPU core(s), {env['torch_threads']} torch threads; "
        f"{s['studies']} hip studies of {s['image_size']}² DICOM -> {s['size']}² input, one SR each.",
        "",
        "| path | seconds | studies/s |",
        "| --- | ---: | ---: |",
        f"| in-process inference.json + SR | {p['seconds']:.1f} | {p['studies_per_s']:.2f} |",
        f"| watch: QIDO -> WADO -> inference.json + SR -> STOW | {w['seconds']:.1f} | {w['studies_per_s']:.2f} |",
        "",
        f"watch / in-process studies/s: **{report['ratio_studies_per_s']:.2f}**; SRs stored in Orthanc: "
        f"{report['srs_in_orthanc']} of {s['studies']}.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick``/``--smoke`` pick smaller presets (explicit values win)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_watch.json and bench_watch.md")
    p.add_argument("--quick", action="store_true", help="preset for a 2-core CPU machine")
    p.add_argument("--smoke", action="store_true", help="tiniest preset (test suite); not a measurement")
    p.add_argument("--image-size", type=int, default=None, help="side of the synthetic DICOM images")
    p.add_argument("--size", type=int, default=None, help="bundle spatial_size (network input side)")
    p.add_argument("--studies", type=int, default=None, help="number of synthetic studies")
    p.add_argument("--threads", type=int, default=None, help="torch threads (0: torch's choice)")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, PRESETS)
    if args.size < 32 or args.image_size < 32 or args.studies < 1:
        p.error("--size/--image-size >= 32 and --studies >= 1 are required")
    return args


if __name__ == "__main__":
    main()
