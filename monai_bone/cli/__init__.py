"""The ``monai-bone`` command line: one module per sub-command in this package.

Each sub-command module defines ``add_parser(subparsers)`` (registers its arguments and sets ``func``) and the
function that runs it. ``main`` wires them together and configures logging.

Start-up stays light: :data:`~monai_bone.cli.commands.COMMANDS` holds each sub-command's one-line help, so
``monai-bone --help`` imports no sub-command module at all, and only the module of the sub-command named on the
command line is imported and its parser built. Sub-command modules import torch/MONAI (and the package parts that
need them) inside their run functions, so ``monai-bone export --help`` does not import torch either
(``benchmarks/bench_cli_startup.py``).

Sub-commands that accept ``--config FILE`` read their options from a YAML file first (:mod:`monai_bone.cli.config`);
options given on the command line win over the file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from monai_bone._version import __version__
from monai_bone.cli.arguments import add_flag
from monai_bone.cli.commands import COMMANDS, command_help
from monai_bone.cli.config import ConfigError, expand_config

__all__ = ["COMMANDS", "build_parser", "command_help", "main", "parse_args"]


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: its first token that is not an option (global options take no value)."""
    for token in argv:
        if token == "--":
            return None
        if not token.startswith("-"):
            return token
    return None


def build_parser(argv: Sequence[str] | None = None, *, full: bool = False) -> argparse.ArgumentParser:
    """Build the argument parser.

    Args:
        argv: the command line to be parsed; only the sub-command it names gets its full parser (its module is
            imported), the others are one-line entries for ``--help``. ``None``: no sub-command is built in full.
        full: build every sub-command's parser (imports every sub-command module).
    """
    parser = argparse.ArgumentParser(
        prog="monai-bone",
        description="Bone health from plain X-rays (MONAI plugin): synthetic cohorts, indexing, training, reports.",
    )
    parser.add_argument("--version", action="version", version=f"monai-bone {__version__}")
    add_flag(parser, "-v", "--verbose", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _command_in(argv or ())
    for name, (module, text) in COMMANDS.items():
        if full or name == wanted:
            importlib.import_module(f"{__name__}.{module}").add_parser(sub)
        else:
            sub.add_parser(name, help=text)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a ``monai-bone`` command line, with the options of a ``--config FILE`` read first.

    Raises:
        ConfigError: the config file is unreadable, too large, not YAML, or holds an unknown key or a bad value.
        SystemExit: from ``argparse`` for a bad command line (message and usage on stderr, status 2).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    return parser.parse_args(expand_config(parser, argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monai-bone`` console script; returns the process exit code."""
    try:
        args = parse_args(argv)
    except ConfigError as err:  # one line naming the file and the key, like argparse's own errors (status 2)
        print(f"monai-bone: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        build_parser().print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as err:
        logging.getLogger("monai_bone").error("%s", err)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
