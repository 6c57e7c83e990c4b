"""``monai-bone import``: verify every sha256 of an exported bundle zip, then unpack it (:mod:`monai_bone.bundle`).

The module is named ``bundle_import`` because ``import`` is a Python keyword; the sub-command is ``import``.
"""

from __future__ import annotations

import argparse
import logging

from monai_bone.cli.arguments import add_flag
from monai_bone.cli.commands import command_help

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``import`` and its arguments; sets ``func=run``."""
    p = subparsers.add_parser(
        "import",
        help=command_help("import"),
        description=(
            "Treat X.zip as untrusted: refuse it (naming the member) past the size, file-count and compression-ratio "
            "caps; stream every file through its sha256 check against manifest.json; refuse anything changed, added "
            "or removed; then unpack it into --out in one step. The manifest alone proves internal consistency only: "
            "pass --expect-sha256 (the author's published digest) or --trust-key (their public key) to prove origin. "
            "Bundle configs execute Python code when run."
        ),
    )
    p.add_argument("archive", metavar="X.zip", help="archive written by `monai-bone export`")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle folder to create")
    add_flag(p, "--overwrite", help="replace DIR when it exists and is not empty")
    p.add_argument(
        "--expect-sha256",
        default=None,
        metavar="HEX",
        help="manifest digest published by the bundle's author (`monai-bone export` prints it); refuse any other",
    )
    p.add_argument(
        "--trust-key",
        default=None,
        metavar="PUB",
        help="ed25519 public key (PEM) of the author; refuse an archive whose manifest it did not sign",
    )
    p.add_argument("--max-size-mb", type=float, default=4096, help="cap on the total uncompressed size (default 4096)")
    p.add_argument("--max-files", type=int, default=1000, help="cap on the number of archive members (default 1000)")
    p.add_argument("--max-ratio", type=float, default=200, help="cap on one member's compression ratio (default 200)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Verify and unpack; returns 0 on success.

    Raises:
        ValueError: a failed check (naming the file), or ``--out`` exists and is not empty (without ``--overwrite``).
        FileNotFoundError: the archive does not exist.
    """
    # monai_bone.bundle.importing imports torch (weights checks): only when the command runs (CLI start-up)
    from monai_bone.bundle import import_bundle
    from monai_bone.bundle.safe_zip import ArchiveLimits

    limits = ArchiveLimits(
        max_total_bytes=int(args.max_size_mb * (1 << 20)), max_members=args.max_files, max_ratio=args.max_ratio
    )
    try:
        out = import_bundle(
            args.archive,
            args.out,
            overwrite=args.overwrite,
            expect_sha256=args.expect_sha256,
            trust_key=args.trust_key,
            limits=limits,
        )
    except FileExistsError as err:  # reported like other bad input (message, exit code 1)
        raise ValueError(str(err)) from err
    how = "manifest digest matched --expect-sha256" if args.expect_sha256 else ""
    how = "manifest signature verified with --trust-key" if args.trust_key else how
    logger.info("bundle verified and unpacked into %s%s", out, f" ({how})" if how else "")
    return 0
