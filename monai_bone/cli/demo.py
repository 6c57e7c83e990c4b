"""``monai-bone demo``: synthetic cohorts → index → train both bundles briefly → evaluate → infer → report.

Example::

    monai-bone demo --config configs/demo_small.yaml --out my-demo   # options on the command line win over the file
"""

from __future__ import annotations

import argparse
import logging

from monai_bone.cli.arguments import add_flag, folds_argument
from monai_bone.cli.commands import command_help
from monai_bone.cli.config import add_config_argument
from monai_bone.tasks import task_names

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``demo`` and its arguments; sets ``func=run``."""
    # the defaults live in monai_bone.demo, which imports torch: loaded only when `demo` is the command (start-up)
    from monai_bone.demo import DEMO_DEFAULTS as D
    from monai_bone.demo import QUICK_SETTINGS as Q

    p = subparsers.add_parser(
        "demo",
        help=command_help("demo"),
        description=(
            "Generate small synthetic hip and knee cohorts, index them, train both bundles briefly through their "
            "train.json (only size/epochs/batch overridden), evaluate, run inference on a few DICOM files and write "
            "DIR/report.md with metrics and plots. Every output is labelled SYNTHETIC. About 5 minutes on 2 CPU "
            "cores with the defaults."
        ),
    )
    add_config_argument(p)
    p.add_argument("--out", default="monai-bone-demo", metavar="DIR", help="report folder (default ./monai-bone-demo)")
    add_flag(
        p,
        "--quick",
        help=f"smoke run: {Q['n_hip']} studies per task, {Q['epochs']} epoch, {Q['size']} px (explicit options win)",
    )
    p.add_argument("--n-hip", type=int, default=None, metavar="N", help=f"hip cohort size (default {D['n_hip']})")
    p.add_argument("--n-knee", type=int, default=None, metavar="N", help=f"knee cohort size (default {D['n_knee']})")
    p.add_argument("--epochs", type=int, default=None, metavar="E", help=f"epochs per bundle (default {D['epochs']})")
    p.add_argument("--size", type=int, default=None, metavar="PX", help=f"network input size (default {D['size']})")
    p.add_argument(
        "--synth-size", type=int, default=None, metavar="PX", help=f"generated image size (default {D['synth_size']})"
    )
    p.add_argument("--batch-size", type=int, default=None, metavar="B", help=f"default {D['batch_size']}")
    p.add_argument(
        "--folds",
        type=folds_argument,
        default=None,
        metavar="K",
        help=f"index folds, 0 validates (default {D['folds']})",
    )
    p.add_argument("--n-infer", type=int, default=None, metavar="N", help=f"inference files per task ({D['n_infer']})")
    p.add_argument("--task", choices=(*task_names(), "both"), default="both")
    p.add_argument("--device", default=None, help="torch device (default: CUDA when available, else CPU)")
    p.add_argument("--num-workers", type=int, default=0, metavar="W", help="data loader workers (default 0)")
    p.add_argument("--seed", type=int, default=0)
    add_flag(p, "--overwrite", help="replace an earlier demo in DIR")
    add_flag(p, "--no-progress", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the demo, print the SYNTHETIC summary table and return 0."""
    from monai_bone.demo import format_summary, run_demo  # imports torch and MONAI (CLI start-up)

    result = run_demo(
        args.out,
        n_hip=args.n_hip,
        n_knee=args.n_knee,
        epochs=args.epochs,
        size=args.size,
        synth_size=args.synth_size,
        batch_size=args.batch_size,
        folds=args.folds,
        n_infer=args.n_infer,
        quick=args.quick,
        tasks=task_names() if args.task == "both" else (args.task,),
        seed=args.seed,
        device=args.device,
        num_workers=args.num_workers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        quiet=not getattr(args, "verbose", False),
    )
    print(format_summary(result.summary))
    print(f"\nreport: {result.report}  (total {result.summary['wall_s']:.0f} s)")
    return 0
