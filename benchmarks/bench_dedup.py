"""Index throughput with duplicate grouping (pixel hashing) on vs off, on the same synthetic DICOM cohort.

``monai-bone index`` hashes the decoded pixels of every labelled image (:mod:`monai_bone.data.duplicates`) so that
near-duplicates share a fold/test group. This prints files per second of :func:`build_datalist` with ``dedup=False``
(the bare header-only index: the baseline) and ``dedup=True`` on the same files, and their ratio (median of
``--reps``), in wall-clock time and in CPU time of the process (``time.process_time``, which moves less with other
work on a shared machine). Everything measured is SYNTHETIC data. Usage::

    python benchmarks/bench_dedup.py --n 200 --size 1024 --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="hip studies (default 200)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per setting (default 3)")
    args = parser.parse_args(argv)

    from monai_bone.data.datalist import build_datalist
    from monai_bone.synthetic.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize("hip", args.n, root / "c", seed=0, size=args.size, progress=False)
        clinical = [root / "c" / "clinical.csv", root / "c" / "ground_truth.csv"]
        seconds: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for rep in range(args.reps):
            for dedup in (False, True):
                start, cpu_start = time.perf_counter(), time.process_time()
                build_datalist(
                    root / "c" / "dicom",
                    root / f"dl_{dedup}_{rep}.json",
                    clinical=clinical,
                    task="hip",
                    folds=5,
                    progress=False,
                    dedup=dedup,
                )
                seconds[dedup].append(time.perf_counter() - start)
                cpu[dedup].append(time.process_time() - cpu_start)
    rate = {k: args.n / statistics.median(v) for k, v in seconds.items()}
    cpu_ratio = statistics.median(cpu[False]) / statistics.median(cpu[True])
    result = {
        "synthetic": True,
        "n_files": args.n,
        "size": args.size,
        "reps": args.reps,
        "files_per_s_dedup_off": round(rate[False], 1),
        "files_per_s_dedup_on": round(rate[True], 1),
        "ratio_on_vs_off": round(rate[True] / rate[False], 3),
        "cpu_ratio_on_vs_off": round(cpu_ratio, 3),
    }
    print(
        f"SYNTHETIC index of {args.n} hip DICOM files at {args.size}px (median of {args.reps}): "
        f"dedup off {rate[False]:.1f} files/s, dedup on {rate[True]:.1f} files/s, ratio {rate[True] / rate[False]:.2f} "
        f"(in CPU time of the process, less sensitive to other work on the machine: {cpu_ratio:.2f})"
    )
    return result


if __name__ == "__main__":
    main()
