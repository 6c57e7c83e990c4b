"""``monai-bone import``: verify every sha256 of an exported bundle zip, then unpack it (:mod:`monai_bone.bundle_io`).

The module is named ``bundle_import`` because ``import`` is a Python keyword; the sub-command is ``import``.
"""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``import`` and its arguments; sets ``func=run``."""
    p = subparsers.add_parser(
        "import",
        help="verify an exported bundle zip (sha256 of every file) and unpack it",
        description=(
            "Check every file of X.zip against its manifest.json (sha256 and size) and refuse the archive, naming the "
            "file, when anything was changed, added or removed; then unpack it into --out in one step."
        ),
    )
    p.add_argument("archive", metavar="X.zip", help="archive written by `monai-bone export`")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace DIR when it exists and is not empty")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Verify and unpack; returns 0 on success.

    Raises:
        ValueError: a failed check (naming the file), or ``--out`` exists and is not empty (without ``--overwrite``).
        FileNotFoundError: the archive does not exist.
    """
    from monai_bone.bundle_io import import_bundle

    try:
        out = import_bundle(args.archive, args.out, overwrite=args.overwrite)
    except FileExistsError as err:  # reported like other bad input (message, exit code 1)
        raise ValueError(str(err)) from err
    logger.info("bundle verified and unpacked into %s", out)
    return 0
