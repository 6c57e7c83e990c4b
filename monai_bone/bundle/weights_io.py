"""The weights an export packs: a plain state dict loaded with ``weights_only=True`` (from a training checkpoint's
key when asked), optionally in half precision."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from monai_bone.bundle.manifest import BundleIntegrityError

__all__ = ["half_state_dict", "load_weights", "packed_weights"]


def load_weights(path: str | os.PathLike, key_in_ckpt: str = "") -> Mapping[str, Any]:
    """The network state dict in ``path`` (``torch.load(weights_only=True)``), taken from ``key_in_ckpt`` if given.

    Raises:
        BundleIntegrityError: not loadable with ``weights_only=True``, no ``key_in_ckpt``, or not a plain state dict.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is not a plain weights file
        raise BundleIntegrityError(f"{path}: not loadable with torch.load(weights_only=True): {err}") from err
    if key_in_ckpt:
        if not isinstance(obj, Mapping) or key_in_ckpt not in obj:
            keys = sorted(obj) if isinstance(obj, Mapping) else type(obj).__name__
            raise BundleIntegrityError(f"{path}: no '{key_in_ckpt}' in the checkpoint (keys: {keys})")
        obj = obj[key_in_ckpt]
    if not isinstance(obj, Mapping) or not obj:
        raise BundleIntegrityError(f"{path}: expected a non-empty state dict (mapping of tensors)")
    nested = sorted(k for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if nested:
        raise BundleIntegrityError(
            f"{path}: not a plain state dict (non-tensor entries {nested[:5]}); for a training checkpoint name the "
            "network's key (key_in_ckpt / --key-in-ckpt, e.g. 'network')"
        )
    return obj


def half_state_dict(state: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with multi-element floating-point weights in ``dtype`` (fp16 or bf16) for sharing.

    Scalars (``XAttnBMD.target_mean``/``target_std``), BatchNorm running statistics and integer entries stay as they
    are; loading the result into the fp32 network (``load_state_dict``, MONAI's checkpoint loader) casts back to fp32.
    """
    if dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"half precision means torch.float16 or torch.bfloat16, got {dtype}")
    keep = ("running_mean", "running_var", "num_batches_tracked")
    return {
        k: v.to(dtype) if v.is_floating_point() and v.numel() > 1 and not k.endswith(keep) else v
        for k, v in state.items()
    }


_HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def packed_weights(ckpt: Path, key_in_ckpt: str, half: str | None, tmp: Path) -> tuple[bytes, Path]:
    """The bytes of ``models/model.pt`` to pack and a file holding them (for ``ckpt_export``)."""
    state = load_weights(ckpt, key_in_ckpt)
    if not key_in_ckpt and half is None:
        return ckpt.read_bytes(), ckpt  # a plain state dict is packed byte for byte
    if half is not None:
        if half not in _HALF:
            raise ValueError(f"half must be one of {sorted(_HALF)}, got {half!r}")
        state = half_state_dict(state, _HALF[half])
    out = tmp / "model.pt"
    torch.save(dict(state), out)  # network weights only, never optimizer or trainer state
    return out.read_bytes(), out
