"""Argument types shared by several ``monai-bone`` sub-commands (kept light: no package imports)."""

from __future__ import annotations

import argparse

__all__ = ["folds_argument"]


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
