"""``monai-bone cv``: cross-validated ablation table (baselines and bundle-trained networks; :mod:`monai_bone.cv`).

Example (a reviewed study file; options on the command line win over it)::

    monai-bone cv --config configs/hip_ablation.yaml --data cohort/datalist.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from monai_bone.cli.arguments import add_flag, folds_argument
from monai_bone.cli.commands import command_help
from monai_bone.cli.config import add_config_argument
from monai_bone.tasks import task_names

__all__ = ["add_parser", "parse_set", "run"]

logger = logging.getLogger(__name__)


def parse_set(items: list[str] | None) -> dict:
    """``ID=VALUE`` strings → overrides; VALUE is read as JSON when it parses (numbers, booleans, lists), else text.

    Raises:
        ValueError: for an item without ``=``.
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects ID=VALUE (e.g. learning_rate=3e-4), got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cv`` and its arguments; sets ``func=run``."""
    # the row names live beside the CV code, which imports torch: loaded only when `cv` is the command (CLI start-up)
    from monai_bone.cv.rows import HIP_BASELINES, HIP_FUSIONS, KNEE_VARIANTS

    p = subparsers.add_parser(
        "cv",
        help=command_help("cv"),
        description=(
            "Cross-validate over the datalist's patient-disjoint folds and write the ablation table as CSV, Markdown "
            "and PNG (mean ± SD over folds, bootstrap 95 %% CI of pooled out-of-fold predictions). Hip rows: "
            f"{', '.join(HIP_BASELINES + HIP_FUSIONS)}, then the best two networks with plain Smooth L1. Knee rows: "
            f"{', '.join(KNEE_VARIANTS)} (Table I set). Networks train through the bundle's train.json."
        ),
    )
    add_config_argument(p)
    p.add_argument("--task", required=True, choices=task_names())
    p.add_argument("--data", required=True, metavar="DIR", help="datalist JSON or a folder holding datalist.json")
    p.add_argument(
        "--folds", type=folds_argument, default=None, metavar="K", help="CV folds (default: the datalist's folds)"
    )
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: ./cv_<task>)")
    p.add_argument("--epochs", type=int, default=None, metavar="E", help="epochs per fit (default: the bundle's)")
    p.add_argument("--size", type=int, default=None, metavar="PX", help="network input size (default: the bundle's)")
    p.add_argument("--batch-size", type=int, default=None, metavar="B")
    p.add_argument("--num-workers", type=int, default=None, metavar="W", help="data loader workers")
    p.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: CUDA when available)")
    p.add_argument("--bundle", default=None, metavar="DIR", help="bundle folder (default: this tree's bundle)")
    p.add_argument("--variants", default=None, metavar="A,B", help="comma-separated subset of the rows")
    add_flag(p, "--no-loss-ablation", help="hip: skip the Smooth L1 reruns")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="R",
        help="repeat the CV with R fold seeds (seed, seed+1, ...) and report each row's spread (repeats.md)",
    )
    p.add_argument(
        "--roi-mm",
        type=float,
        default=None,
        metavar="MM",
        help="network input: a crop of MM mm around a landmark found by a localiser fitted per CV fold (default: whole "
        "image)",
    )
    p.add_argument(
        "--roi-landmarks",
        default=None,
        metavar="CSV",
        help="landmarks (roi_row, roi_col per file) for the localisers (default: a synthetic cohort's realism.csv)",
    )
    p.add_argument(
        "--pretrained",
        default=None,
        metavar="W",
        help="initial weights of the networks: imagenet (the bundles' default, downloaded once into the torch hub "
        "cache), a local weights file, or null (random initialisation; no download)",
    )
    add_flag(
        p,
        "--no-test-eval",
        help="do not score the locked test split (default: when the datalist has one, each network row's fold-0 fit "
        "is scored by the bundle's evaluate.json, thresholds chosen on its out-of-fold predictions)",
    )
    p.add_argument("--set", action="append", metavar="ID=VALUE", help="extra bundle config override (repeatable)")
    add_flag(p, "--no-progress", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the cross-validation, print the Markdown table and return 0."""
    from monai_bone.cv import run_cv  # imports torch and MONAI: only when the command runs (CLI start-up)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    overrides = parse_set(args.set)
    if args.pretrained is not None:
        text = args.pretrained.strip()
        overrides["pretrained"] = None if text.lower() in ("null", "none", "") else text
    overrides = _with_class_count(args.task, args.data, overrides)
    try:
        result = _run_cv(run_cv, args, variants, overrides)
    except RuntimeError as err:  # e.g. ImageNet weights neither cached nor downloadable: the bundles' one line
        line = _argument_error_line(err)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 1
    text = result.paths["markdown"].read_text(encoding="utf-8")
    print(text.split("\n## Paper reported")[0].rstrip())
    print(f"\nwritten: {', '.join(str(p) for p in result.paths.values())}")
    return 0


def _with_class_count(task: str, data: str, overrides: dict) -> dict:
    """A classification task's ``num_classes`` from the datalist's class names unless ``--set`` gives it: a 3-class
    index (the synthetic knee default) trains three logits, as the CV's tables and thresholds expect."""
    from monai_bone.cv.folds import resolve_datalist
    from monai_bone.data.folds import datalist_info
    from monai_bone.tasks import get_task

    if get_task(task).is_regression:
        return overrides
    path = resolve_datalist(data)
    labels = datalist_info(path).get("labels")
    if "num_classes" not in overrides:
        return {**overrides, "num_classes": len(labels)} if labels else overrides
    given = overrides["num_classes"]
    if labels and (not isinstance(given, int) or isinstance(given, bool) or given != len(labels)):
        raise ValueError(
            f"bad --set num_classes={given}: {path} has {len(labels)} classes ({', '.join(map(str, labels))}); "
            f"leave num_classes out (it follows the datalist) or index the data with that many classes"
        )
    return overrides


def _argument_error_line(err: BaseException) -> str | None:
    """The bundles' one-line message for a bad argument (:mod:`monai_bone.bundle.errors`), in cv's option names."""
    from monai_bone.bundle.errors import format_argument_error

    line = format_argument_error(err)
    return None if line is None else line.replace("--pretrained_path FILE", "--set pretrained_path=FILE")


def _run_cv(run_cv, args: argparse.Namespace, variants: list[str] | None, overrides: dict):
    return run_cv(
        args.task,
        args.data,
        args.out or f"cv_{args.task}",
        folds=args.folds,
        epochs=args.epochs,
        size=args.size,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        bundle_dir=args.bundle,
        variants=variants,
        loss_ablation=not args.no_loss_ablation,
        n_boot=args.n_boot,
        seed=args.seed,
        overrides=overrides,
        progress=not args.no_progress,
        quiet=not getattr(args, "verbose", False),
        repeats=args.repeats,
        roi_size_mm=getattr(args, "roi_mm", None),
        roi_landmarks_csv=getattr(args, "roi_landmarks", None),
        test_eval=False if args.no_test_eval else None,
    )
