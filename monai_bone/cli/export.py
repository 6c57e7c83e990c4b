"""``monai-bone export``: pack a trained bundle into a zip with a sha256 manifest (see :mod:`monai_bone.bundle_io`)."""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export`` and its arguments; sets ``func=run``."""
    p = subparsers.add_parser(
        "export",
        help="pack a trained bundle (weights, TorchScript, configs, docs, licence) into a verified zip",
        description=(
            "Pack BUNDLE_DIR into a zip: models/model.pt, models/model.ts (MONAI ckpt_export of the inference "
            "config), models/clinical_stats.json (hip), configs/, docs/, LICENSE, plus manifest.json and sha256sums "
            "covering every file. Data, logs, per-study outputs and other checkpoints are never packed."
        ),
    )
    p.add_argument("bundle_dir", metavar="BUNDLE_DIR", help="trained bundle folder (with models/model.pt)")
    p.add_argument("--out", required=True, metavar="X.zip", help="archive to write")
    p.add_argument("--ckpt", default=None, metavar="PT", help="export these weights instead of models/model.pt")
    p.add_argument(
        "--key-in-ckpt",
        default="",
        metavar="KEY",
        help="network key inside a training checkpoint given with --ckpt (e.g. network); only its weights are packed",
    )
    p.add_argument("--net-id", default="network_def", help="network ID in the inference config (default network_def)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing archive")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export the bundle; returns 0 on success (errors raise ``ValueError``/``FileNotFoundError`` with a message).

    Raises:
        ValueError: the archive exists (without ``--overwrite``) or a bundle check failed.
        FileNotFoundError: a required bundle file is missing.
    """
    from monai_bone.bundle_io import export_bundle

    try:
        manifest = export_bundle(
            args.bundle_dir,
            args.out,
            ckpt_file=args.ckpt,
            net_id=args.net_id,
            key_in_ckpt=args.key_in_ckpt,
            overwrite=args.overwrite,
        )
    except FileExistsError as err:  # reported like other bad input (message, exit code 1)
        raise ValueError(str(err)) from err
    logger.info(
        "wrote %s: %s %s, %d files, sha256 manifest included",
        args.out,
        manifest.get("bundle_name"),
        manifest.get("bundle_version"),
        len(manifest["files"]),
    )
    return 0
