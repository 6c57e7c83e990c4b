"""The ``monai-bone`` command line: one module per sub-command in this package.

Each sub-command module defines ``add_parser(subparsers)`` (registers its arguments and sets ``func``) and the
function that runs it. ``main`` wires them together and configures logging.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

#: Sub-command modules of ``monai_bone.cli``, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("synth", "index", "demo", "cv", "export", "bundle_import", "bundle", "label", "watch")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command registered."""
    from monai_bone import __version__

    parser = argparse.ArgumentParser(
        prog="monai-bone",
        description="Bone health from plain X-rays (MONAI plugin): synthetic cohorts, indexing, training, reports.",
    )
    parser.add_argument("--version", action="version", version=f"monai-bone {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monai-bone`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as err:
        logging.getLogger("monai_bone").error("%s", err)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
