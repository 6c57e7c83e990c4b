"""Which algorithm made a result (DICOM TID 4019 Algorithm Identification): bundle name, version, weights sha256."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from monai_bone.bundle import sha256_file

__all__ = ["AlgorithmInfo", "bundle_algorithm"]


@dataclass(frozen=True)
class AlgorithmInfo:
    """Identification of the model that produced a result.

    Attributes:
        name: bundle name (``metadata.json`` ``name``, else the bundle folder name).
        version: bundle version (``metadata.json`` ``version``).
        weights_sha256: sha256 of the weights file that was loaded (hex), or ``""`` when unknown.
    """

    name: str
    version: str
    weights_sha256: str = ""

    @property
    def parameters(self) -> list[str]:
        """TID 4019 algorithm parameters (``weights_sha256=<hex>``)."""
        return [f"weights_sha256={self.weights_sha256}"] if self.weights_sha256 else []


def bundle_algorithm(bundle_root: str | os.PathLike, weights: str | os.PathLike | None = None) -> AlgorithmInfo:
    """The :class:`AlgorithmInfo` of a bundle folder.

    Args:
        bundle_root: the bundle folder (``configs/metadata.json`` is read when present).
        weights: the weights file the bundle loads (default ``models/model.pt``); hashed when it exists.
    """
    root = Path(bundle_root)
    meta: dict = {}
    meta_file = root / "configs" / "metadata.json"
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
    name = str(meta.get("name") or root.resolve().name)
    version = str(meta.get("version") or "unknown")
    wpath = Path(weights) if weights is not None else root / "models" / "model.pt"
    digest = sha256_file(wpath) if wpath.is_file() else ""
    return AlgorithmInfo(name=name, version=version, weights_sha256=digest)
