"""``monai-bone bundle``: the shipped bundles (``path``, ``copy``) and signing keys for sharing (``keygen``)."""

from __future__ import annotations

import argparse
import logging

from monai_bone.cli.commands import command_help
from monai_bone.tasks import task_names

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``bundle`` with its actions ``path``, ``copy`` and ``keygen``; sets ``func=run``."""
    p = subparsers.add_parser(
        "bundle",
        help=command_help("bundle"),
        description=(
            "path TASK: print where the shipped bundle of TASK (hip or knee) lives (inside the installed package, or "
            "bundles/ of a source checkout). copy TASK DIR: copy it (configs, docs, licence; no weights) into DIR to "
            "train, edit or run it with `python -m monai.bundle run`. keygen KEY: write a new ed25519 private key "
            "KEY (mode 0600, unencrypted: keep it private) and KEY.pub for `monai-bone export --sign-key KEY` and "
            "`monai-bone import --trust-key KEY.pub`."
        ),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    path = actions.add_parser("path", help="print the folder of a shipped bundle")
    path.add_argument("task", choices=task_names())
    copy = actions.add_parser("copy", help="copy a shipped bundle into a new folder")
    copy.add_argument("task", choices=task_names())
    copy.add_argument("dest", metavar="DIR", help="new (or empty) folder")
    keygen = actions.add_parser("keygen", help="write an ed25519 key pair for signing bundle exports")
    keygen.add_argument("key", metavar="KEY", help="private key file to create (KEY.pub is the public key)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; returns 0.

    Raises:
        ValueError: the destination exists (copy, keygen).
        FileNotFoundError: the shipped bundle is missing from the installation.
    """
    # imported when the command runs: monai_bone.bundle also holds the bundle-running helpers (MONAI), which
    # `monai-bone --help` and the other sub-commands' start-up should not pay for
    from monai_bone.bundle.packaged import copy_packaged_bundle, packaged_bundle_dir

    try:
        if args.action == "path":
            print(packaged_bundle_dir(args.task))
        elif args.action == "copy":
            out = copy_packaged_bundle(args.task, args.dest)
            logger.info("copied the %s bundle into %s (train it, or run configs/inference.json)", args.task, out)
        else:
            from monai_bone.bundle.signing import generate_keypair, public_key_fingerprint

            priv, pub = generate_keypair(args.key)
            from cryptography.hazmat.primitives import serialization

            key = serialization.load_pem_public_key(pub.read_bytes())
            print(f"private key: {priv} (mode 0600; keep it private)\npublic key:  {pub} (give it to recipients)")
            print(f"public key sha256: {public_key_fingerprint(key)}")
    except FileExistsError as err:
        raise ValueError(str(err)) from err
    return 0
