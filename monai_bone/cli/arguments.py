"""Argument types shared by several ``monai-bone`` sub-commands (kept light: no package imports)."""

from __future__ import annotations

import argparse

__all__ = ["FlagPair", "add_flag", "folds_argument", "opposite_option"]


class FlagPair(argparse.Action):
    """A boolean flag with its opposite form, so a flag switched on earlier (e.g. by a ``--config`` file) can be
    switched off on the command line, and the other way round; the last one given wins.

    The last option string is the opposite: it stores ``not const``; every other option string stores ``const``.
    Usage shows ``--overwrite | --no-overwrite`` like :class:`argparse.BooleanOptionalAction`.
    """

    def __init__(
        self,
        option_strings: list[str],
        dest: str,
        const: bool = True,
        default: bool | None = None,
        required: bool = False,
        help: str | None = None,
    ) -> None:
        if len(option_strings) < 2:
            raise ValueError(f"FlagPair needs a flag and its opposite, got {option_strings}")
        const = bool(const)
        default = (not const) if default is None else default
        super().__init__(option_strings, dest, nargs=0, const=const, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, (not self.const) if option_string == self.option_strings[-1] else self.const)

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


def opposite_option(option: str) -> str:
    """``--x`` -> ``--no-x``; ``--no-x`` -> ``--x``."""
    if not option.startswith("--"):
        raise ValueError(f"{option!r} is not a long option")
    return f"--{option[5:]}" if option.startswith("--no-") else f"--no-{option[2:]}"


def add_flag(
    parser: argparse.ArgumentParser,
    *names: str,
    help: str,
    dest: str | None = None,
    const: bool = True,
) -> argparse.Action:
    """Add the boolean flag ``names`` (e.g. ``"--overwrite"`` or ``"-v", "--verbose"``) with its opposite form.

    ``--x`` gets ``--no-x``; a flag spelled ``--no-x`` gets ``--x`` (and keeps its ``no_x`` destination), so every
    flag can be undone on the command line. The flag stores ``const`` (default True), its opposite ``not const``;
    the default is ``not const``.

    Args:
        parser: the (sub-command) parser.
        names: option strings of the flag; the last must be a long option.
        help: what the flag does (the opposite is named in the help).
        dest: destination attribute (default: argparse's, from the first long option).
        const: value the flag stores.

    Returns:
        The added action.
    """
    off = opposite_option(names[-1])
    kwargs = {"dest": dest} if dest is not None else {}
    return parser.add_argument(*names, off, action=FlagPair, const=const, help=f"{help} (undo: {off})", **kwargs)


def folds_argument(text: str) -> int:
    """``--folds`` value: an integer of at least 2 (training holds one fold out for validation).

    Raises:
        argparse.ArgumentTypeError: with a message saying why and what to use instead.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; use 2 or more (e.g. 5 or 10)") from None
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"{value} fold(s) leave no validation fold for training; use 2 or more (e.g. 5 or 10). "
            "To predict without folds, run the bundle's inference.json on the folder itself"
        )
    return value
