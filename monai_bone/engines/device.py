"""Device and mixed-precision choice for the bundles: CUDA with AMP when present, plain fp32 on CPU."""

from __future__ import annotations

import logging
import os

import torch

__all__ = ["amp_enabled", "select_device"]

logger = logging.getLogger(__name__)


def select_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train or infer on.

    Args:
        device: ``None`` or ``"auto"`` picks ``cuda:<LOCAL_RANK>`` (``cuda:0`` outside ``torchrun``) when CUDA is
            available, else ``cpu``; any other value is taken as a torch device string.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: when a CUDA device is asked for on a machine without CUDA, or the string is not a device.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"not a torch device: {device!r} ({err})") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available on this machine (use 'cpu')")
    return dev


def amp_enabled(device: str | torch.device) -> bool:
    """Automatic mixed precision only on CUDA; CPU runs stay fp32 (CPU autocast is slower and less accurate here)."""
    return torch.device(device).type == "cuda"
