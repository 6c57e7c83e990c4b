"""Engine overhead: training images/s of the bundle's trainer vs a bare hand-written PyTorch loop, side by side.

The bundle side is the real thing: ``configs/train.json`` of the bundle is loaded by ``monai.bundle.ConfigWorkflow``
(ID overrides only: the synthetic datalist, image size, batch size, one epoch per run, no validation, no workers) and
``train#trainer`` -- MONAI's ``SupervisedTrainer`` with the bundle's network, loss, optimizer, ``prepare_batch``,
postprocessing, key metric and handlers (LR schedule, stats and TensorBoard logging) -- runs one epoch per repetition.
The bare loop is ``zero_grad -> forward -> loss -> backward -> step`` written by hand on the *same* network,
optimizer and loss objects, over the *same* batches (collected once from the bundle's own train data loader, so
augmentation and decoding are outside both timings; the data path is measured by ``bench_datapath.py``). The trainer
gets the loader's batches as they are (MetaTensors; the bundle's ``prepare_batch`` unwraps them for the network), the
bare loop plain tensors, as a hand-written pipeline would. Both follow the bundle's fast path
(``monai_bone.engines.select_fast_path``): on CUDA, AMP + channels-last; on CPU, fp32.

Repetitions alternate (bundle, bare, bare, bundle, ...) after a warm-up epoch of each; the figure is images/s of the
median epoch. Ratio = bundle / bare (goal >= 0.95); ``ratio_best`` compares the fastest epochs instead (less sensitive
to other processes on a shared machine). On CUDA the script also times both with ``gpu_fast_path false``
(fp32) and reports the AMP speed-up (goal >= 2x); without CUDA those rows say "not measured".

Everything runs on a SYNTHETIC cohort (throughput only). Usage::

    python benchmarks/bench_engine.py --out results/bench            # full: 224 px, batch 16, 8 batches, 5 reps
    python benchmarks/bench_engine.py --out results/bench --quick    # 2-core CPU: 64 px, batch 8, 3 batches, 7 reps

``--quick`` and ``--smoke`` run torch on one thread: on a small shared machine, OpenMP threads that outnumber the free
cores make single steps 10x slower at random, which no median of a few repetitions can hide.

Writes ``bench_engine.json`` and ``bench_engine.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import _bench_common as common  # noqa: E402

__all__ = ["GOAL_AMP_SPEEDUP", "GOAL_RATIO", "PRESETS", "main", "measure_task", "parse_args", "to_markdown"]

GOAL_RATIO = 0.95
GOAL_AMP_SPEEDUP = 2.0
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"tasks": ["hip"], "size": 32, "batch": 2, "batches": 2, "reps": 2, "warmup": 1, "threads": 1},
    "quick": {"tasks": ["hip", "knee"], "size": 64, "batch": 8, "batches": 3, "reps": 7, "warmup": 1, "threads": 1},
    "full": {"tasks": ["hip", "knee"], "size": 224, "batch": 16, "batches": 8, "reps": 5, "warmup": 1, "threads": 0},
}
NETWORKS = {"hip": "XAttnBMD (xattn)", "knee": "HybridAttentionNet"}


def _plain(x: Any) -> Any:
    from monai.data import MetaTensor

    return x.as_tensor() if isinstance(x, MetaTensor) else x


def _build(task: str, datalist: Path, run_dir: Path, args: argparse.Namespace, fast_path: bool | None) -> tuple:
    """The bundle's workflow, initialised; returns ``(workflow, trainer, fast_path settings)``."""
    overrides: dict[str, Any] = {
        "datalist": str(datalist),
        "val_fold": 0,
        "epochs": 1,
        "val_interval": 10**9,  # the ValidationHandler never fires: training steps only
        "spatial_size": args.size,
        "batch_size": args.batch,
        "val_batch_size": args.batch,
        "num_workers": 0,
        "resume": False,
        "seed": 0,
        "ckpt_dir": str(run_dir / "models"),
        "output_dir": str(run_dir / "eval"),
        "log_dir": str(run_dir / "runs"),
        "cache_dir": str(run_dir / "cache"),
        "device": f"$torch.device({args.device!r})",
        "compile": bool(args.compile),
    }
    if fast_path is not None:
        overrides["gpu_fast_path"] = fast_path
    wf = common.bundle_workflow(task, ["train.json"], "train", **overrides)
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    return wf, trainer, wf.parser.get_parsed_content("fast_path")


def _bare_epoch(net, optimizer, loss_fn, batches, fast, device) -> float:
    """The hand-written loop: returns the last loss."""
    import torch

    scaler = torch.amp.GradScaler("cuda") if fast.amp and fast.grad_scaler else None
    net.train()
    loss = None
    for image, extra, label in batches:
        image = image.to(device, non_blocking=fast.non_blocking)
        extra = tuple(e.to(device, non_blocking=fast.non_blocking) for e in extra)
        label = label.to(device, non_blocking=fast.non_blocking)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=fast.amp_dtype, enabled=fast.amp):
            loss = loss_fn(net(image, *extra), label).mean()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
    return float(loss.detach())


def measure_task(
    task: str, datalist: Path, run_dir: Path, args: argparse.Namespace, fast_path: bool | None = None
) -> dict[str, Any]:
    """Time the bundle trainer and the bare loop on one task; returns the result row."""
    wf, trainer, fast = _build(task, datalist, run_dir, args, fast_path)
    try:
        loader = wf.parser.get_parsed_content("train#dataloader")
        batches = []
        for b in loader:
            if len(b["image"]) == args.batch:
                batches.append(b)
            if len(batches) == args.batches:
                break
        if len(batches) < args.batches:
            raise RuntimeError(f"{task}: only {len(batches)} full batches of {args.batch} in the training folds")
        extra_keys = ("clinical",) if task == "hip" else ()
        bare_batches = [
            (_plain(b["image"]), tuple(_plain(b[k]) for k in extra_keys), _plain(b["label"])) for b in batches
        ]
        trainer.data_loader = batches  # the same batches for both sides; MONAI's Workflow.run iterates data_loader
        bare_net = trainer.network  # with compile on, MONAI's trainer holds the torch.compile'd module: shared
        device = fast.device

        def run_bundle() -> None:
            trainer.run()

        def run_bare() -> float:
            return _bare_epoch(bare_net, trainer.optimizer, trainer.loss_function, bare_batches, fast, device)

        with common.log_to_file(run_dir / "engine.log"):
            for _ in range(args.warmup):
                run_bundle()
                run_bare()
            bundle_s, bare_s = [], []
            for rep in range(args.reps):
                order = (("bundle", run_bundle), ("bare", run_bare))
                for name, fn in order if rep % 2 == 0 else order[::-1]:
                    seconds, _ = common.timed(fn, device)
                    (bundle_s if name == "bundle" else bare_s).append(seconds)
            bare_loss = run_bare()
        bundle_loss = float(trainer.state.output[0]["loss"] if isinstance(trainer.state.output, list) else math.nan)
    finally:
        wf.finalize()
    images = args.batch * args.batches
    bundle_rate, bare_rate = images / common.median(bundle_s), images / common.median(bare_s)
    ratio = bundle_rate / bare_rate
    return {
        "task": task,
        "network": NETWORKS[task],
        "config": f"bundles/{common.BUNDLES[task].name}/configs/train.json -> train#trainer (SupervisedTrainer)",
        "fast_path": fast.to_dict(),
        "images_per_epoch": images,
        "bundle_epoch_s": [round(s, 5) for s in bundle_s],
        "bare_epoch_s": [round(s, 5) for s in bare_s],
        "bundle_images_per_s": round(bundle_rate, 3),
        "bare_images_per_s": round(bare_rate, 3),
        "ratio": round(ratio, 4),
        "ratio_best": round(min(bare_s) / min(bundle_s), 4),
        "overhead_ms_per_step": round(1000 * (common.median(bundle_s) - common.median(bare_s)) / args.batches, 3),
        "goal_ratio": GOAL_RATIO,
        "meets_goal": bool(ratio >= GOAL_RATIO),
        "final_loss": {"bundle": bundle_loss, "bare": bare_loss},
    }


def _gpu_rows(tasks: list[str], measured: dict[str, tuple[dict, dict]] | None) -> dict[str, Any]:
    if measured is None:
        rows = [
            {
                "task": t,
                "fp32_images_per_s": None,
                "amp_images_per_s": None,
                "amp_speedup": None,
                "goal_amp_speedup": GOAL_AMP_SPEEDUP,
                "meets_goal": None,
            }
            for t in tasks
        ]
        return {"status": common.GPU_NOT_MEASURED, "rows": rows}
    rows = []
    for t, (fp32, amp) in measured.items():
        speedup = amp["bundle_images_per_s"] / fp32["bundle_images_per_s"]
        rows.append(
            {
                "task": t,
                "fp32_images_per_s": fp32["bundle_images_per_s"],
                "amp_images_per_s": amp["bundle_images_per_s"],
                "amp_speedup": round(speedup, 3),
                "bare_fp32_images_per_s": fp32["bare_images_per_s"],
                "bare_amp_images_per_s": amp["bare_images_per_s"],
                "amp_dtype": amp["fast_path"]["amp_dtype"],
                "goal_amp_speedup": GOAL_AMP_SPEEDUP,
                "meets_goal": bool(speedup >= GOAL_AMP_SPEEDUP),
            }
        )
    return {"status": "measured", "rows": rows}


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    env, s = report["environment"], report["settings"]
    mode = common.mode_label(env["mode"], s["preset_overrides"])
    lines = [
        "# bench_engine: bundle trainer vs bare PyTorch loop (SYNTHETIC data, throughput only)",
        "",
        f"Mode **{mode}**; device {env['device']}, {env['cpu_count']} CPU core(s), "
        f"{env['torch_threads']} torch threads, GPU: {env['gpu'] or 'none'}; torch {env['torch']}, "
        f"monai {env['monai']}. Input {s['size']}x{s['size']}, batch {s['batch']}, {s['batches']} batches per epoch, "
        f"median of {s['reps']} epochs after {s['warmup']} warm-up.",
        "",
        "| task | network | bundle trainer img/s | bare loop img/s | ratio (goal >= 0.95) | best-epoch ratio "
        "| overhead ms/step |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        met = "met" if r["meets_goal"] else "NOT met"
        lines.append(
            f"| {r['task']} | {r['network']} | {r['bundle_images_per_s']:.2f} | {r['bare_images_per_s']:.2f} "
            f"| {r['ratio']:.3f} ({met}) | {r['ratio_best']:.3f} | {r['overhead_ms_per_step']:.1f} |"
        )
    gpu = report["gpu"]
    lines += ["", f"GPU fp32 vs AMP + channels-last (goal AMP >= {GOAL_AMP_SPEEDUP}x fp32): {gpu['status']}", ""]
    lines += ["| task | fp32 img/s | AMP img/s | speed-up |", "| --- | ---: | ---: | ---: |"]
    for r in gpu["rows"]:
        if r["amp_speedup"] is None:
            lines.append(f"| {r['task']} | not measured | not measured | not measured |")
        else:
            lines.append(
                f"| {r['task']} | {r['fp32_images_per_s']:.1f} | {r['amp_images_per_s']:.1f} | "
                f"{r['amp_speedup']:.2f}x ({'met' if r['meets_goal'] else 'NOT met'}) |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick``/``--smoke`` pick smaller presets (explicit values win)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_engine.json and bench_engine.md")
    p.add_argument("--quick", action="store_true", help="small preset for a CPU machine (about a minute)")
    p.add_argument("--smoke", action="store_true", help="tiniest preset (test suite); not a measurement")
    p.add_argument("--tasks", nargs="+", choices=sorted(common.BUNDLES), default=None)
    p.add_argument("--size", type=int, default=None, help="spatial_size of the bundle (image side)")
    p.add_argument("--batch", type=int, default=None, help="batch size (>= 2: BatchNorm)")
    p.add_argument("--batches", type=int, default=None, help="batches per timed epoch")
    p.add_argument("--reps", type=int, default=None, help="timed epochs per side")
    p.add_argument("--warmup", type=int, default=None, help="untimed epochs per side first")
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (0: torch's choice; quick/smoke default 1)"
    )
    p.add_argument("--compile", action="store_true", help="torch.compile on both sides (bundle option compile)")
    p.add_argument("--workdir", type=Path, default=None, help="keep the cohort and runs here (default: temporary)")
    args = p.parse_args(argv)
    args.mode = common.mode_of(args)
    common.apply_preset(args, PRESETS)
    if args.batch < 2:
        p.error("--batch must be at least 2 (BatchNorm in training mode)")
    if args.size < 32 or args.batches < 1 or args.reps < 1 or args.warmup < 0:
        p.error("--size >= 32, --batches >= 1, --reps >= 1 and --warmup >= 0 are required")
    if args.device is None:
        args.device = "cuda:0" if common.cuda_available() else "cpu"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, write JSON + Markdown, print the table; returns the report."""
    import torch

    from monai_bone.constants import SYNTHETIC_NOTE

    args = parse_args(argv)
    with common.torch_threads(args.threads), tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        work = args.workdir or Path(tmp)
        results, gpu_measured = [], None
        for task in args.tasks:
            n = math.ceil(args.batch * args.batches / 0.7) + 5  # val fold ~20 % of 5 folds, with a margin
            datalist = common.make_cohort(work, task, n, size=max(64, args.size), folds=5)
            print(f"timing {task} bundle trainer vs bare loop ...", file=sys.stderr, flush=True)
            results.append(measure_task(task, datalist, work / f"run_{task}", args))
            if torch.device(args.device).type == "cuda":
                gpu_measured = gpu_measured or {}
                fp32 = measure_task(task, datalist, work / f"run_{task}_fp32", args, fast_path=False)
                gpu_measured[task] = (fp32, results[-1])
        environment = common.machine_info(args.mode, args.device)
    report = {
        "benchmark": "bench_engine",
        "command": common.command_line("bench_engine", argv),
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "environment": environment,
        "settings": {
            "tasks": args.tasks,
            "size": args.size,
            "batch": args.batch,
            "batches": args.batches,
            "reps": args.reps,
            "warmup": args.warmup,
            "compile": bool(args.compile),
            "preset_overrides": args.preset_overrides,
        },
        "results": results,
        "goal_ratio": GOAL_RATIO,
        "meets_goal": all(r["meets_goal"] for r in results),
        "gpu": _gpu_rows(args.tasks, gpu_measured),
    }
    markdown = to_markdown(report)
    common.write_outputs(args.out, "bench_engine", report, markdown)
    print(markdown, end="")
    return report


if __name__ == "__main__":
    main()
