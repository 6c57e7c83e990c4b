"""Cost of the image encoders for transfer learning: train-step time and peak memory, frozen vs trainable backbone.

Configurations (all ``in_channels=1``, random weights -- cost does not depend on the values, and real ImageNet /
RAD-DINO weights cannot be fetched on the machines this runs on):

- ``resnet34``: :class:`~monai_bone.networks.XAttnBMD` (fusion ``xattn``) with the paper's ResNet34 encoder, 224 px;
- ``densenet169``: :class:`~monai_bone.networks.HybridAttentionNet` (the knee network), 224 px;
- ``rad-dino-224`` / ``rad-dino-518``: XAttnBMD with the RAD-DINO-shaped DINOv2 ViT-B/14 (768-d, 12 layers; the
  published architecture, random init) at 224 px (256 patch tokens) and 518 px (1369 tokens, RAD-DINO's training size).

Each is measured with the backbone trainable and frozen (:func:`monai_bone.networks.set_backbone_trainable`: no
gradients into the backbone, as during ``freeze_backbone_epochs``). A train step is ``zero_grad -> forward -> loss ->
backward -> AdamW step`` on random tensors. Each configuration runs in its own process so peak memory is its own:
CPU = peak resident set size of that process minus its size before the first step (``ru_maxrss``); CUDA =
``torch.cuda.max_memory_allocated``. Ratios are against ``resnet34`` with a trainable backbone (the paper's setting)
measured in the same run.

Usage::

    python benchmarks/bench_encoders.py --out results/bench                 # batch 2, 3 steps, all configurations
    python benchmarks/bench_encoders.py --device cuda --amp --batch 16 --out results/bench_gpu
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {"resnet34": 224, "densenet169": 224, "rad-dino-224": 224, "rad-dino-518": 518}
BASELINE = ("resnet34", False)
NOTE = "random input tensors and random weights: cost only (time, memory), no accuracy"


def _build(name: str):
    from monai_bone.networks import HybridAttentionNet, XAttnBMD

    if name == "densenet169":
        return HybridAttentionNet(in_channels=1), False
    encoder = "rad-dino" if name.startswith("rad-dino") else "resnet34"
    return XAttnBMD(in_channels=1, fusion="xattn", image_encoder=encoder, target_mean=0.85, target_std=0.12), True


def measure(name: str, frozen: bool, args: argparse.Namespace) -> dict:
    """Median train-step time and peak memory of one configuration (run in a fresh process)."""
    import torch

    from monai_bone.networks import set_backbone_trainable

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net, clinical_input = _build(name)
    net = net.to(device).train()
    if frozen:
        set_backbone_trainable(net, False)
    size = args.size or CONFIGS[name]
    image = torch.rand(args.batch, 1, size, size, device=device)
    clinical = torch.randn(args.batch, 10, device=device)
    target = torch.rand(args.batch, 1, device=device)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(args.amp))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with amp:
            out = net(image, clinical) if clinical_input else net(image)
        torch.nn.functional.mse_loss(out.float(), target).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024  # kB on Linux
    return {
        "encoder": name,
        "input_px": size,
        "backbone": "frozen" if frozen else "trainable",
        "trainable_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "step_s_median": statistics.median(times),
        "step_s_all": times,
        "peak_mb": peak_mb,
    }


def _run_child(name: str, frozen: bool, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--frozen", str(int(frozen))]
    cmd += ["--device", args.device, "--batch", str(args.batch), "--steps", str(args.steps)]
    cmd += ["--warmup", str(args.warmup), "--threads", str(args.threads)] + (["--amp"] if args.amp else [])
    cmd += ["--size", str(args.size)] if args.size else []
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} (frozen={frozen}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def to_markdown(report: dict) -> str:
    """The result table, ratios against the baseline row."""
    lines = [
        f"# bench_encoders ({report['note']})",
        "",
        f"Device {report['device']}{' + bf16 autocast' if report['amp'] else ''}, batch {report['batch']}, median of "
        f"{report['steps']} train steps after {report['warmup']} warm-up; {report['host']}. Baseline: ResNet34 "
        "XAttn-BMD, trainable backbone, 224 px.",
        "",
        "| encoder | px | backbone | trainable params | step s | step ratio | peak MB | memory ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['encoder']} | {r['input_px']} | {r['backbone']} | {r['trainable_params']:,} | "
            f"{r['step_s_median']:.3f} | {r['step_ratio']:.2f} | {r['peak_mb']:.0f} | {r['memory_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results/bench"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (GPU)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    p.add_argument("--size", type=int, default=None, help="input size for every encoder (default: 224 / 518)")
    p.add_argument("--encoders", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--frozen", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, bool(args.frozen), args)))
        return 0
    wanted = [(n, f) for n in args.encoders for f in (False, True)]
    if BASELINE not in wanted:
        wanted.insert(0, BASELINE)
    rows = []
    for name, frozen in wanted:
        print(f"measuring {name} ({'frozen' if frozen else 'trainable'}) ...", file=sys.stderr, flush=True)
        rows.append(_run_child(name, frozen, args))
    base = next(r for r in rows if (r["encoder"], r["backbone"] == "frozen") == BASELINE)
    for r in rows:
        r["step_ratio"] = r["step_s_median"] / base["step_s_median"]
        r["memory_ratio"] = r["peak_mb"] / base["peak_mb"] if base["peak_mb"] > 0 else float("nan")
    report = {
        "benchmark": "bench_encoders",
        "note": NOTE,
        "synthetic_input": True,
        "device": args.device,
        "amp": bool(args.amp),
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "host": f"{platform.machine()}, {args.threads} thread(s)",
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_encoders.json").write_text(json.dumps(report, indent=2) + "\n")
    md = to_markdown(report)
    (args.out / "bench_encoders.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
