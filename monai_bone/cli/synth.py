"""``monai-bone synth``: write a SYNTHETIC hip or knee cohort (DX DICOM or KOP-style PNG folders + CSV/JSON).

Example::

    monai-bone synth --task hip --n 233 --out data/synth_hip --seed 0
    monai-bone synth --task knee --n 372 --out data/synth_knee --format kop --classes 2
    monai-bone synth --task hip --n 500 --out data/fast_hip --size 128 --preset simple   # speed tests
    monai-bone synth --config configs/synthetic/knee_kop.yaml --out data/synth_knee       # a reviewed preset file

Phantoms are ``realistic`` by default (BMD in bone structure; acquisition, processing, pose, osteoarthritis, metal,
markers, collimation and field of view vary; see realism.csv); ``--preset simple`` keeps the earlier easy look.
"""

from __future__ import annotations

import argparse
import logging

from monai_bone.cli.arguments import add_flag
from monai_bone.cli.commands import command_help
from monai_bone.cli.config import add_config_argument
from monai_bone.synthetic.phantom import PRESETS
from monai_bone.synthetic.synth import FORMATS, synthesize
from monai_bone.tasks import task_names

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def _positive_int(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``synth`` sub-command on ``subparsers`` (sets ``func=run``)."""
    parser = subparsers.add_parser(
        "synth",
        help=command_help("synth"),
        description="Sample a synthetic cohort (clinical fields and BMD from a documented formula), render phantom "
        "hip/knee AP radiographs whose bone texture follows BMD, and write DX DICOM (or KOP-style PNG class "
        "folders), clinical.csv, ground_truth.csv, realism.csv (each image's realism factors) and cohort.json "
        "(with the oracle, clinical-only and image-only R^2 ceilings). All outputs are labelled SYNTHETIC.",
    )
    add_config_argument(parser)
    parser.add_argument("--task", required=True, choices=task_names(), help="hip (BMD regression) or knee (KOP)")
    parser.add_argument("--n", required=True, type=_positive_int(1), help="number of subjects")
    parser.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> identical files; default 0)")
    parser.add_argument("--size", type=_positive_int(64), default=1024, help="image side in pixels (default 1024)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="dicom", help="dicom (default) or kop")
    parser.add_argument(
        "--classes",
        dest="n_classes",
        type=int,
        choices=(2, 3),
        default=None,
        help="knee classes (default 3 -- normal/osteopenia/osteoporosis -- with the realistic preset, else 2)",
    )
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="realistic",
        help="phantom look: realistic (default) or simple (fast, BMD visible in brightness; for speed tests)",
    )
    add_flag(parser, "--overwrite", help="replace a previous synthetic cohort in --out")
    add_flag(parser, "--no-progress", dest="progress", help="hide the progress bar", const=False)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``monai-bone synth``; returns the exit code (0 on success)."""
    info = synthesize(
        args.task,
        args.n,
        args.out,
        seed=args.seed,
        size=args.size,
        fmt=args.fmt,
        n_classes=args.n_classes,
        progress=args.progress,
        overwrite=args.overwrite,
        preset=args.preset,
    )
    logger.info("wrote SYNTHETIC cohort of %d subjects to %s (see cohort.json)", info["n"], args.out)
    return 0
