"""Data-side throughput: synthetic cohort generation and ``monai-bone index`` versus a bare pydicom header loop.

Measures (median of ``--reps`` repetitions, each on the same files):

* **synth** -- hip studies per second written by :func:`monai_bone.synthetic.synth.synthesize` at ``--synth-size``
  (1024² by default): cohort sampling, phantom rendering and DICOM writing, end to end -- for the default
  ``realistic`` phantom preset and for the ``simple`` preset as the baseline in the same run (ratio printed).
* **index** -- files per second of :func:`monai_bone.data.datalist.build_datalist` (header-only scan, pixel-data
  sanity checks, decoder check, CSV join, folds, writing the datalist/rejects/warnings) over a synthetic hip cohort,
  and of a bare ``pydicom.dcmread(f, stop_before_pixels=True)`` loop over the same files (listing included).
  The printed ratio is index files/s ÷ bare files/s (goal >= 0.8: the index adds little on top of reading headers),
  in wall-clock time; the same ratio in CPU time of the process (``time.process_time``: the index's fsync waits are
  not in it) is printed beside it, as it moves less with other work on a shared machine. Fixed per-run costs
  (CSV join, folds, three fsync'd outputs) weigh less with more files: ``--index-n 1000`` shows it.
  A third timing, the *scan* phase alone (source listing + per-file header checks, without the CSV join, folds and
  the three fsync'd output files), shows how much of the gap is per-file work and how much is fixed per run.
  The index runs with duplicate hashing off (``dedup=False``, ``--no-dedup``): the goal is about the header scan;
  ``benchmarks/bench_dedup.py`` prints the index with hashing on vs off.

Everything measured is SYNTHETIC data. Usage::

    python benchmarks/bench_data.py --out bench_out            # full: 16 studies x 5 reps, index 400 files at 1024²
    python benchmarks/bench_data.py --out bench_out --quick    # quick: 6 studies x 3 reps, index 300 files at 256²

Writes ``bench_data.json`` and ``bench_data.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_RATIO = 0.8


def _median_rate(count: int, seconds: list[float]) -> float:
    return count / statistics.median(seconds)


def bench_synth(work: Path, n: int, size: int, reps: int, preset: str = "realistic") -> dict[str, Any]:
    """Time ``synthesize("hip", n, ..., size, preset=preset)`` ``reps`` times (fresh folder and seed each time)."""
    from monai_bone.synthetic.synth import synthesize

    seconds = []
    for rep in range(reps):
        out = work / f"synth_{preset}_{rep}"
        start = time.perf_counter()
        synthesize("hip", n, out, seed=rep, size=size, progress=False, preset=preset)
        seconds.append(time.perf_counter() - start)
    return {
        "task": "hip",
        "preset": preset,
        "size": size,
        "studies_per_rep": n,
        "reps": reps,
        "seconds": [round(s, 4) for s in seconds],
        "median_s": round(statistics.median(seconds), 4),
        "studies_per_s": round(_median_rate(n, seconds), 3),
    }


def _bare_loop(root: Path) -> int:
    import pydicom

    count = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        pydicom.dcmread(path, stop_before_pixels=True)
        count += 1
    return count


def _scan_loop(root: Path) -> int:
    """The index's per-file work only: source listing + header read/checks (no CSV join, folds or outputs)."""
    from monai_bone.data.dicom_records import RejectError
    from monai_bone.data.sources import open_source

    source = open_source(root, kind="dicom")
    count = 0
    for path in source.files():
        with contextlib.suppress(RejectError):
            source.read(path)
        count += 1
    return count


def bench_index(work: Path, n: int, size: int, reps: int) -> dict[str, Any]:
    """Index a synthetic hip cohort of ``n`` studies ``reps`` times and compare with the bare header loop."""
    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    cohort = work / "index_cohort"
    synthesize("hip", n, cohort, seed=123, size=size, progress=False)
    dicom = cohort / "dicom"
    clinical = [cohort / "clinical.csv", cohort / "ground_truth.csv"]
    folds = min(5, n)

    def run_index(rep: int):
        return build_datalist(  # header-only (duplicate hashing off: benchmarks/bench_dedup.py measures its cost)
            dicom,
            work / f"index_{rep}" / "datalist.json",
            clinical=clinical,
            task="hip",
            folds=folds,
            progress=False,
            dedup=False,
        )

    run_index(-1)  # warm-up: page cache, imports, decoder lookup
    _bare_loop(dicom)
    _scan_loop(dicom)
    bare, index, scan = [], [], []
    bare_cpu, index_cpu = [], []
    summary = None
    for rep in range(reps):  # interleaved so that all three see the same cache/load conditions
        start, cpu = time.perf_counter(), time.process_time()
        files = _bare_loop(dicom)
        bare.append(time.perf_counter() - start)
        bare_cpu.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        summary = run_index(rep)
        index.append(time.perf_counter() - start)
        index_cpu.append(time.process_time() - cpu)
        start = time.perf_counter()
        scanned = _scan_loop(dicom)
        scan.append(time.perf_counter() - start)
    bare_rate, index_rate = _median_rate(files, bare), _median_rate(summary.seen, index)
    scan_rate = _median_rate(scanned, scan)
    ratio = index_rate / bare_rate
    # CPU time of this process (the fsync waits of the index's outputs are not in it): the same ratio, less
    # sensitive to other work on a shared machine
    cpu_ratio = _median_rate(summary.seen, index_cpu) / _median_rate(files, bare_cpu)
    return {
        "task": "hip",
        "size": size,
        "files": files,
        "reps": reps,
        "bare_seconds": [round(s, 4) for s in bare],
        "index_seconds": [round(s, 4) for s in index],
        "bare_files_per_s": round(bare_rate, 1),
        "index_files_per_s": round(index_rate, 1),
        "ratio": round(ratio, 3),
        "bare_cpu_seconds": [round(s, 4) for s in bare_cpu],
        "index_cpu_seconds": [round(s, 4) for s in index_cpu],
        "cpu_ratio": round(cpu_ratio, 3),
        "scan_seconds": [round(s, 4) for s in scan],
        "scan_files_per_s": round(scan_rate, 1),
        "scan_ratio": round(scan_rate / bare_rate, 3),
        "goal_ratio": GOAL_RATIO,
        "meets_goal": bool(ratio >= GOAL_RATIO),
        "index_summary": {"seen": summary.seen, "used": summary.used, "rejected": summary.rejected},
    }


def _environment() -> dict[str, Any]:
    import numpy
    import pydicom

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "pydicom": pydicom.__version__,
        "numpy": numpy.__version__,
    }


def _markdown(result: dict[str, Any]) -> str:
    s, i = result["synth"], result["index"]
    verdict = "met" if i["meets_goal"] else "NOT met"
    return "\n".join(
        [
            "# monai-bone data benchmark (SYNTHETIC data)",
            "",
            f"{result['note']}",
            "",
            f"Mode: {'quick' if result['quick'] else 'full'}; medians of {s['reps']} (synth) / {i['reps']} (index) "
            f"repetitions; {result['environment']['cpu_count']} CPU(s), Python {result['environment']['python']}, "
            f"pydicom {result['environment']['pydicom']}.",
            "",
            "| measurement | value |",
            "|---|---|",
            f"| synth hip studies/s at {s['size']}² ({s['studies_per_rep']} per run), realistic preset | "
            f"{s['studies_per_s']} |",
            f"| synth hip studies/s, simple preset (baseline) | {result['synth_simple']['studies_per_s']} |",
            f"| ratio realistic / simple | {result['synth_ratio']} |",
            f"| bare `dcmread(stop_before_pixels=True)` files/s ({i['files']} files, {i['size']}²) | "
            f"{i['bare_files_per_s']} |",
            f"| `build_datalist` files/s (same files, CSV join, folds, outputs) | {i['index_files_per_s']} |",
            f"| ratio index / bare (goal >= {i['goal_ratio']}) | {i['ratio']} ({verdict}) |",
            f"| the same ratio in CPU time of the process (fsync waits excluded) | {i['cpu_ratio']} |",
            f"| scan only (listing + header checks, no CSV/folds/outputs) files/s | {i['scan_files_per_s']} |",
            f"| ratio scan only / bare | {i['scan_ratio']} |",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for bench_data.json and bench_data.md")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 3)")
    parser.add_argument("--synth-n", type=int, default=None, help="studies per synth run (default 16, quick 6)")
    parser.add_argument("--synth-size", type=int, default=1024, help="synth image size (default 1024)")
    parser.add_argument("--index-n", type=int, default=None, help="files to index (default 400, quick 300)")
    parser.add_argument(
        "--index-size", type=int, default=None, help="index cohort image size (default 1024, quick 256)"
    )
    parser.add_argument("--workdir", default=None, help="keep generated files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 5)
    synth_n = args.synth_n or (6 if args.quick else 16)
    index_n = args.index_n or (300 if args.quick else 400)
    index_size = args.index_size or (256 if args.quick else 1024)

    from monai_bone.constants import SYNTHETIC_NOTE
    from monai_bone.utils.io import atomic_write_json, atomic_write_text

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        work = Path(args.workdir) if args.workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        synth = bench_synth(work, synth_n, args.synth_size, reps)
        synth_simple = bench_synth(work, synth_n, args.synth_size, reps, preset="simple")
        index = bench_index(work, index_n, index_size, reps)
    result = {
        "benchmark": "bench_data",
        "quick": bool(args.quick),
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "environment": _environment(),
        "synth": synth,
        "synth_simple": synth_simple,
        "synth_ratio": round(synth["studies_per_s"] / synth_simple["studies_per_s"], 3),
        "index": index,
    }
    out = Path(args.out)
    atomic_write_json(out / "bench_data.json", result)
    atomic_write_text(out / "bench_data.md", _markdown(result))
    print(f"synth: {synth['studies_per_s']} hip studies/s at {synth['size']}^2 (SYNTHETIC)")
    print(
        f"index: {index['index_files_per_s']} files/s vs bare pydicom header loop {index['bare_files_per_s']} files/s "
        f"-> ratio {index['ratio']} (goal >= {GOAL_RATIO}: {'met' if index['meets_goal'] else 'NOT met'})"
    )
    print(f"index in CPU time (fsync waits excluded, less load-sensitive): ratio {index['cpu_ratio']}")
    print(f"index scan phase only (listing + header checks): ratio {index['scan_ratio']} vs bare")
    print(f"wrote {out / 'bench_data.json'} and {out / 'bench_data.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
