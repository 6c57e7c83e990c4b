"""``monai-bone export``: pack a trained bundle into a zip with a sha256 manifest (:mod:`monai_bone.bundle.export`)."""

from __future__ import annotations

import argparse
import logging

from monai_bone.cli.arguments import add_flag
from monai_bone.cli.commands import command_help

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``export`` and its arguments; sets ``func=run``."""
    p = subparsers.add_parser(
        "export",
        help=command_help("export"),
        description=(
            "Pack BUNDLE_DIR into a zip in MONAI's layout (one <name>/ top folder, consumable by "
            "monai.bundle.download(url=...) and monai.bundle.load): models/model.pt, models/model.ts (MONAI "
            "ckpt_export of the inference config), models/clinical_stats.json (hip), configs/, docs/, LICENSE, plus "
            "manifest.json and sha256sums covering every file. Data, logs, per-study outputs and other checkpoints "
            "are never packed. Prints the manifest digest (also written to X.zip.manifest-sha256) for recipients' "
            "--expect-sha256; --sign-key adds an ed25519 signature for --trust-key."
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
    add_flag(p, "--overwrite", help="replace an existing archive")
    p.add_argument(
        "--name",
        default=None,
        metavar="BUNDLE_NAME",
        help="top folder of the archive (default: the bundle folder's name, e.g. hip_bmd_xattn)",
    )
    p.add_argument(
        "--sign-key",
        default=None,
        metavar="KEY",
        help="sign the manifest with this ed25519 private key (make one with `monai-bone bundle keygen KEY`)",
    )
    add_flag(p, "--onnx", help="add models/model.onnx (every input, dynamic batch axis)")
    p.add_argument(
        "--half",
        choices=("fp16", "bf16"),
        default=None,
        help="pack models/model.pt in half precision (half the size, loads back to fp32; model.ts/.onnx stay fp32)",
    )
    p.add_argument(
        "--model-zoo",
        default=None,
        metavar="DIR",
        help="also write the model-zoo pull-request folder DIR/<name>/ (no weights; needs --weights-url)",
    )
    p.add_argument(
        "--weights-url",
        default=None,
        metavar="URL",
        help="where you will publish models/model.pt (and .ts) for large_files.yml (--model-zoo)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Export the bundle; returns 0 on success (errors raise ``ValueError``/``FileNotFoundError`` with a message).

    Raises:
        ValueError: the archive exists (without ``--overwrite``) or a bundle check failed.
        FileNotFoundError: a required bundle file is missing.
    """
    # export runs MONAI's ckpt_export (torch): imported only when the command runs, so `export --help` stays light
    from monai_bone.bundle import digest_path, export_bundle
    from monai_bone.bundle.manifest import manifest_bytes
    from monai_bone.bundle.signing import manifest_digest

    try:
        manifest = export_bundle(
            args.bundle_dir,
            args.out,
            ckpt_file=args.ckpt,
            net_id=args.net_id,
            key_in_ckpt=args.key_in_ckpt,
            overwrite=args.overwrite,
            bundle_name=args.name,
            sign_key=args.sign_key,
            onnx=args.onnx,
            half=args.half,
        )
        if args.model_zoo:
            from monai_bone.bundle.zoo import write_model_zoo_folder

            zoo = write_model_zoo_folder(args.out, args.model_zoo, args.weights_url, overwrite=args.overwrite)
            logger.info("model-zoo folder: %s", zoo)
    except FileExistsError as err:  # reported like other bad input (message, exit code 1)
        raise ValueError(str(err)) from err
    digest = manifest_digest(manifest_bytes(manifest))
    logger.info(
        "wrote %s: %s %s, %d files, sha256 manifest included%s",
        args.out,
        manifest.get("bundle_name"),
        manifest.get("bundle_version"),
        len(manifest["files"]),
        ", signed" if args.sign_key else "",
    )
    print(f"manifest sha256: {digest}  (also in {digest_path(args.out)})")
    print(f"recipients verify with: monai-bone import {args.out} --out DIR --expect-sha256 {digest}")
    return 0
