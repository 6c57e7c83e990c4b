"""Data path: share of each training epoch spent waiting for data, with the bundle's dataset caching, epoch 1 vs 2+.

The bundle's ``configs/train.json`` is run by ``monai.bundle.ConfigWorkflow`` (ID overrides only: synthetic datalist,
image size, batch size, epochs, workers, cache mode; validation off so that epochs are training only), and two timers
are attached to its ``SupervisedTrainer``:

* **data wait** -- Ignite's ``GET_BATCH_STARTED`` -> ``GET_BATCH_COMPLETED``: the trainer waiting for the next batch
  from the bundle's DataLoader (cache lookup, random augmentation, collation, worker start-up at each epoch's first
  batch);
* **epoch** -- ``EPOCH_STARTED`` -> ``EPOCH_COMPLETED`` (after the bundle's epoch handlers).

Each cache mode of ``monai_bone.data.make_dataset`` gets a fresh workflow: ``memory`` (``CacheDataset``, the bundle
default: decoding happens once, before epoch 1, and is reported as ``cache_fill_s``), ``disk`` (``PersistentDataset``:
epoch 1 decodes and writes the cache, later epochs read it) and ``none`` (decode every epoch; the reference that shows
what caching buys). The headline is the wait fraction over epochs >= 2 (sum of waits / sum of epoch times; goal
<= 10 % for the caching modes), with the median epoch >= 2 time against epoch 1.

Everything runs on a SYNTHETIC cohort. Usage::

    python benchmarks/bench_datapath.py --out results/bench            # full: 1024² -> 224 px, 120 studies, 4 ep.
    python benchmarks/bench_datapath.py --out results/bench --quick    # 2-core CPU: 1024² -> 64 px, 48 studies, 3 ep.

Writes ``bench_datapath.json`` and ``bench_datapath.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import _bench_common as common  # noqa: E402

__all__ = ["CACHED_MODES", "GOAL_WAIT_FRACTION", "PRESETS", "EpochTimer", "main", "measure_mode", "parse_args"]

GOAL_WAIT_FRACTION = 0.10
#: Cache modes the goal applies to (``none`` is the uncached reference).
CACHED_MODES: tuple[str, ...] = ("memory", "disk")
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "task": "hip",
        "n": 12,
        "image_size": 64,
        "size": 64,  # >= 64: a last batch of one study still gives BatchNorm more than one value per channel
        "batch": 4,
        "epochs": 2,
        "num_workers": 0,
        "caches": ["memory"],
        "threads": 1,
    },
    "quick": {
        "task": "hip",
        "n": 48,
        "image_size": 1024,
        "size": 64,
        "batch": 8,
        "epochs": 3,
        "num_workers": 1,
        "caches": ["memory", "disk", "none"],
        "threads": 1,
    },
    "full": {
        "task": "hip",
        "n": 120,
        "image_size": 1024,
        "size": 224,
        "batch": 16,
        "epochs": 4,
        "num_workers": None,  # the bundle's own value
        "caches": ["memory", "disk", "none"],
        "threads": 0,
    },
}


class EpochTimer:
    """Ignite handler pair: per-epoch wall time and time spent waiting for batches."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._epoch_start = self._batch_start = 0.0
        self._wait = 0.0
        self._batches = 0

    def attach(self, engine: Any) -> None:
        """Register on the epoch and get-batch events of ``engine``."""
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.GET_BATCH_STARTED, self._get_started)
        engine.add_event_handler(Events.GET_BATCH_COMPLETED, self._get_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _epoch_started(self, _engine: Any) -> None:
        self._wait, self._batches = 0.0, 0
        self._epoch_start = time.perf_counter()

    def _get_started(self, _engine: Any) -> None:
        self._batch_start = time.perf_counter()

    def _get_completed(self, _engine: Any) -> None:
        self._wait += time.perf_counter() - self._batch_start
        self._batches += 1

    def _epoch_completed(self, engine: Any) -> None:
        common.sync(engine.state.device)
        seconds = time.perf_counter() - self._epoch_start
        self.epochs.append(
            {
                "epoch": int(engine.state.epoch),
                "epoch_s": round(seconds, 5),
                "data_wait_s": round(self._wait, 5),
                "wait_fraction": round(self._wait / seconds, 5) if seconds > 0 else 0.0,
                "batches": self._batches,
            }
        )


def measure_mode(cache: str, datalist: Path, run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train ``args.epochs`` epochs of the bundle with one cache mode; returns its result row."""
    overrides: dict[str, Any] = {
        "datalist": str(datalist),
        "val_fold": 0,
        "epochs": args.epochs,
        "val_interval": 10**9,  # no validation: epochs are training only
        "spatial_size": args.size,
        "batch_size": args.batch,
        "val_batch_size": args.batch,
        "resume": False,
        "seed": 0,
        "cache": cache,
        "ckpt_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
        "log_dir": str(run_dir / "runs"),
        "cache_dir": str(run_dir / "cache"),
        "device": f"$torch.device({args.device!r})",
    }
    if args.num_workers is not None:
        overrides["num_workers"] = args.num_workers
    wf = common.bundle_workflow(args.task, ["train.json"], "train", **overrides)
    try:
        wf.initialize()
        fill_s, dataset = common.timed(lambda: wf.parser.get_parsed_content("train#dataset"))
        trainer = wf.parser.get_parsed_content("train#trainer")
        loader = wf.parser.get_parsed_content("train#dataloader")
        timer = EpochTimer()
        timer.attach(trainer)
        with common.log_to_file(run_dir / "datapath.log"):
            trainer.run()
        fast = wf.parser.get_parsed_content("fast_path")
    finally:
        wf.finalize()
    later = timer.epochs[1:]
    wait_later = sum(e["data_wait_s"] for e in later) / sum(e["epoch_s"] for e in later)
    epoch1 = timer.epochs[0]["epoch_s"]
    epoch2 = common.median([e["epoch_s"] for e in later])
    cached = cache in CACHED_MODES
    return {
        "cache": cache,
        "dataset": type(dataset).__name__,
        "num_workers": int(loader.num_workers),
        "pin_memory": bool(loader.pin_memory),
        "fast_path": fast.to_dict(),
        "train_studies": len(dataset),
        "cache_fill_s": round(fill_s, 4),
        "epochs": timer.epochs,
        "epoch1_s": epoch1,
        "epoch2plus_median_s": round(epoch2, 5),
        "epoch1_over_epoch2": round(epoch1 / epoch2, 4),
        "wait_fraction_epoch1": timer.epochs[0]["wait_fraction"],
        "wait_fraction_epoch2plus": round(wait_later, 5),
        "goal_wait_fraction": GOAL_WAIT_FRACTION if cached else None,
        "meets_goal": common.verdict(wait_later, GOAL_WAIT_FRACTION, higher_is_better=False) if cached else None,
    }


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    env, s = report["environment"], report["settings"]
    mode = common.mode_label(env["mode"], s["preset_overrides"])
    lines = [
        "# bench_datapath: waiting for data in the bundle's training epochs (SYNTHETIC data)",
        "",
        f"Mode **{mode}**; device {env['device']}, {env['cpu_count']} CPU core(s), {env['torch_threads']} torch "
        f"threads, GPU: {env['gpu'] or 'none'}. Task {s['task']}, {s['n']} studies ({s['image_size']}² DICOM) -> "
        f"{s['size']}² input, batch {s['batch']}, {s['epochs']} epochs, validation off.",
        "",
        "| cache | dataset | workers | cache fill s | epoch 1 s | epoch >= 2 s (median) | epoch 1 / 2 "
        "| data wait epoch 1 | data wait epoch >= 2 (goal <= 10 %) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        goal = "reference" if r["meets_goal"] is None else ("met" if r["meets_goal"] else "NOT met")
        lines.append(
            f"| {r['cache']} | {r['dataset']} | {r['num_workers']} | {r['cache_fill_s']:.2f} | {r['epoch1_s']:.2f} "
            f"| {r['epoch2plus_median_s']:.2f} | {r['epoch1_over_epoch2']:.2f} "
            f"| {100 * r['wait_fraction_epoch1']:.1f} % | {100 * r['wait_fraction_epoch2plus']:.1f} % ({goal}) |"
        )
    lines += ["", f"GPU data path (pinned memory, non-blocking copies): {report['gpu']['status']}."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick``/``--smoke`` pick smaller presets (explicit values win)."""
    from monai_bone.data.datasets import CACHE_MODES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_datapath.json and bench_datapath.md")
    p.add_argument("--quick", action="store_true", help="small preset for a CPU machine (about a minute)")
    p.add_argument("--smoke", action="store_true", help="tiniest preset (test suite); not a measurement")
    p.add_argument("--task", choices=sorted(common.BUNDLES), default=None)
    p.add_argument("--n", type=int, default=None, help="studies in the synthetic cohort (80 %% train)")
    p.add_argument("--image-size", type=int, default=None, help="side of the synthetic DICOM images")
    p.add_argument("--size", type=int, default=None, help="bundle spatial_size (network input side)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="epochs per cache mode (>= 2)")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers (full default: the bundle's)")
    p.add_argument("--caches", nargs="+", choices=CACHE_MODES, default=None, help="cache modes to time")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (0: torch's choice; quick/smoke 1)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the cohort and runs here (default: temporary)")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, PRESETS)
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (epoch 1 vs later epochs)")
    if args.batch < 2 or args.size < 32 or args.n < 10:
        p.error("--batch >= 2, --size >= 32 and --n >= 10 are required")
    if args.device is None:
        args.device = "cuda:0" if common.cuda_available() else "cpu"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write JSON + Markdown, print the table; returns the report."""
    from monai_bone.constants import SYNTHETIC_NOTE

    args = parse_args(argv)
    with common.torch_threads(args.threads), tempfile.TemporaryDirectory(prefix="bench_datapath_") as tmp:
        work = args.workdir or Path(tmp)
        datalist = common.make_cohort(work, args.task, args.n, size=args.image_size, folds=5)
        results = []
        for cache in args.caches:
            print(f"timing {args.task} epochs with cache={cache} ...", file=sys.stderr, flush=True)
            results.append(measure_mode(cache, datalist, work / f"run_{cache}", args))
        environment = common.machine_info(args.mode, args.device)
    judged = [r["meets_goal"] for r in results if r["meets_goal"] is not None]
    report = {
        "benchmark": "bench_datapath",
        "command": common.command_line("bench_datapath", argv),
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "environment": environment,
        "settings": {
            "task": args.task,
            "n": args.n,
            "image_size": args.image_size,
            "size": args.size,
            "batch": args.batch,
            "epochs": args.epochs,
            "num_workers": results[0]["num_workers"],
            "caches": list(args.caches),
            "preset_overrides": args.preset_overrides,
        },
        "results": results,
        "goal_wait_fraction": GOAL_WAIT_FRACTION,
        "meets_goal": all(judged) if judged else None,
        "gpu": {
            "status": "measured" if "cuda" in str(args.device) else common.GPU_NOT_MEASURED,
        },
    }
    markdown = to_markdown(report)
    common.write_outputs(args.out, "bench_datapath", report, markdown)
    print(markdown, end="")
    return report


if __name__ == "__main__":
    main()
