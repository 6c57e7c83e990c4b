"""Throughput of the monai-bone networks: forward and train-step images/s, median of repetitions.

Inputs are random tensors (synthetic; this measures speed only, never accuracy). Networks, all ``in_channels=1``:

- ``densenet169``: MONAI ``DenseNet169`` (the knee paper's baseline);
- ``hybrid_attention``: :class:`monai_bone.networks.HybridAttentionNet`;
- ``xattn_bmd_<fusion>``: :class:`monai_bone.networks.XAttnBMD` (default config) for each fusion variant;
- ``resnet34_stride2`` / ``resnet34_stride1``: MONAI ``resnet34(spatial_dims=2, feed_forward=False)`` with
  ``conv1_t_stride=2`` (the standard ResNet34, used by XAttnBMD) and MONAI's default ``conv1_t_stride=1``; their
  ratio is reported as the speed-up of the stride-2 stem.

A train step is ``zero_grad -> forward -> loss -> backward -> SGD step`` (BCE-with-logits for the classifiers, weighted
Smooth L1 for XAttnBMD, mean square for the bare ResNets).

Usage::

    python benchmarks/bench_networks.py --out results/bench            # 224², batch 8, 5 repetitions
    python benchmarks/bench_networks.py --quick --out results/bench    # 3 repetitions, 1 warm-up

Writes ``bench_networks.json`` and ``bench_networks.md`` to ``--out`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import monai
import torch
from monai.networks.nets import DenseNet169, resnet34

from monai_bone.constants import CLINICAL_FIELDS, SCREENING_THRESHOLD
from monai_bone.losses import WeightedSmoothL1Loss
from monai_bone.networks import FUSIONS, HybridAttentionNet, XAttnBMD
from monai_bone.utils.io import atomic_write_json, atomic_write_text

__all__ = ["bench_one", "main", "parse_args", "to_markdown"]

NOTE = "synthetic random input tensors: throughput only, no accuracy"


def _builders() -> dict[str, tuple[str, Callable[[], torch.nn.Module], str]]:
    """name -> (description, constructor, kind); kind selects inputs and loss."""
    nets: dict[str, tuple[str, Callable[[], torch.nn.Module], str]] = {
        "densenet169": ("MONAI DenseNet169, 1 output", lambda: DenseNet169(2, 1, 1), "classifier"),
        "hybrid_attention": (
            "HybridAttentionNet (DenseNet169 + AM), 1 output",
            lambda: HybridAttentionNet(),
            "classifier",
        ),
    }
    for fusion in FUSIONS:
        nets[f"xattn_bmd_{fusion}"] = (
            f"XAttnBMD fusion={fusion}, default config",
            lambda fusion=fusion: XAttnBMD(fusion=fusion, target_mean=0.85, target_std=0.12),
            "bmd",
        )
    for stride in (2, 1):
        nets[f"resnet34_stride{stride}"] = (
            f"MONAI resnet34 2D, conv1_t_stride={stride}, no fc",
            lambda stride=stride: resnet34(
                spatial_dims=2, n_input_channels=1, conv1_t_stride=stride, feed_forward=False
            ),
            "features",
        )
    return nets


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], object], warmup: int, repeats: int, device: torch.device) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def bench_one(
    name: str, description: str, build: Callable[[], torch.nn.Module], kind: str, args: argparse.Namespace
) -> dict:
    """Forward and train-step timings of one network."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = build().to(device)
    g = torch.Generator().manual_seed(1)
    image = torch.rand(args.batch, 1, args.size[0], args.size[1], generator=g).to(device)
    clinical = torch.randn(args.batch, len(CLINICAL_FIELDS), generator=g)
    clinical[::3, 5] = float("nan")  # some missing fields, as in real data
    clinical = clinical.to(device)
    if kind == "classifier":
        target = torch.randint(0, 2, (args.batch, 1), generator=g).float().to(device)
        loss_fn: Callable = torch.nn.BCEWithLogitsLoss()
    elif kind == "bmd":
        target = (0.85 + 0.12 * torch.randn(args.batch, 1, generator=g)).to(device)
        loss_fn = WeightedSmoothL1Loss(threshold=SCREENING_THRESHOLD)
    else:
        target = None
        loss_fn = None

    def forward() -> torch.Tensor:
        return net(image, clinical) if kind == "bmd" else net(image)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = forward()
        loss = out.float().pow(2).mean() if loss_fn is None else loss_fn(out, target)
        loss.backward()
        optimizer.step()

    net.eval()
    with torch.no_grad():
        fwd = _time(forward, args.warmup, args.repeats, device)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    train = _time(train_step, args.warmup, args.repeats, device)
    fwd_med, train_med = statistics.median(fwd), statistics.median(train)
    return {
        "name": name,
        "description": description,
        "parameters": sum(p.numel() for p in net.parameters()),
        "forward_s_median": fwd_med,
        "forward_images_per_s": args.batch / fwd_med,
        "train_step_s_median": train_med,
        "train_images_per_s": args.batch / train_med,
        "forward_s_all": fwd,
        "train_step_s_all": train,
    }


def to_markdown(report: dict) -> str:
    """The report as a Markdown table plus the stride ratio."""
    size = "x".join(str(s) for s in report["size"])
    lines = [
        f"# bench_networks ({report['note']})",
        "",
        f"device {report['device']} ({report['threads']} threads), torch {report['torch']}, monai {report['monai']}, "
        f"batch {report['batch']}, input 1x{size}, median of {report['repeats']} (warm-up {report['warmup']})"
        + (", quick mode" if report["quick"] else ""),
        "",
        "| network | parameters | forward img/s | train-step img/s | forward s | train-step s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['name']} | {r['parameters']:,} | {r['forward_images_per_s']:.2f} | {r['train_images_per_s']:.2f} "
            f"| {r['forward_s_median']:.3f} | {r['train_step_s_median']:.3f} |"
        )
    ratios = report["ratios"]
    if ratios:
        lines += ["", "| ratio | value |", "| --- | ---: |"]
        lines += [f"| {k} | {v:.2f} |" for k, v in ratios.items()]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; ``--quick`` lowers the repetition defaults."""
    builders = _builders()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for bench_networks.json and bench_networks.md")
    p.add_argument("--quick", action="store_true", help="3 repetitions and 1 warm-up unless given explicitly")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, nargs="+", default=[224], help="H [W] of the input (default 224)")
    p.add_argument("--repeats", type=int, default=None, help="timed repetitions (default 5, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed warm-up runs (default 2, quick 1)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--nets", nargs="+", choices=sorted(builders), default=list(builders), help="networks to time")
    args = p.parse_args(argv)
    if len(args.size) == 1:
        args.size = [args.size[0], args.size[0]]
    if len(args.size) != 2 or min(args.size) < 32:
        p.error("--size takes H or H W, each at least 32")
    if args.batch < 2:
        p.error("--batch must be at least 2 (BatchNorm in training mode)")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write JSON + Markdown, print the table; returns the report dict."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    builders = _builders()
    results = []
    for name in args.nets:
        description, build, kind = builders[name]
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        results.append(bench_one(name, description, build, kind, args))
    by_name = {r["name"]: r for r in results}
    ratios = {}
    if "resnet34_stride2" in by_name and "resnet34_stride1" in by_name:
        s2, s1 = by_name["resnet34_stride2"], by_name["resnet34_stride1"]
        ratios["resnet34_stride2_over_stride1_forward_speedup"] = (
            s2["forward_images_per_s"] / s1["forward_images_per_s"]
        )
        ratios["resnet34_stride2_over_stride1_train_speedup"] = s2["train_images_per_s"] / s1["train_images_per_s"]
    report = {
        "benchmark": "bench_networks",
        "synthetic_input": True,
        "note": NOTE,
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "batch": args.batch,
        "size": args.size,
        "in_channels": 1,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "quick": args.quick,
        "results": results,
        "ratios": ratios,
    }
    atomic_write_json(args.out / "bench_networks.json", report)
    markdown = to_markdown(report)
    atomic_write_text(args.out / "bench_networks.md", markdown)
    print(markdown, end="")
    return report


if __name__ == "__main__":
    main()
