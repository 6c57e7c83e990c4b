"""The DICOMweb cache folder's manifest: the size of every instance written there, so that an instance already
retrieved is not downloaded again (DICOM UIDs name immutable objects).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from monai_bone.utils.io import atomic_write_json

__all__ = ["CACHE_MANIFEST", "file_size", "load_manifest", "save_manifest"]

logger = logging.getLogger(__name__)

#: File in the cache folder recording the size of every instance written there.
CACHE_MANIFEST: str = "dicomweb_cache.json"


def load_manifest(root: Path) -> dict[str, int]:
    """The instance sizes recorded in the cache folder ``root`` (empty when missing or unreadable)."""
    path = root / CACHE_MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sizes = data["instances"]
        return {str(k): int(v) for k, v in sizes.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        logger.warning("DICOMweb cache manifest %s is unreadable (%s): instances are retrieved again", path, err)
        return {}


def save_manifest(root: Path, manifest: dict[str, int]) -> None:
    """Write the instance sizes of the cache folder ``root`` (atomically)."""
    doc = {"format": 1, "note": "size in bytes of each instance this cache holds", "instances": manifest}
    atomic_write_json(root / CACHE_MANIFEST, doc, indent=None)


def file_size(path: Path) -> int | None:
    """Size of a file in bytes, ``None`` when it cannot be read."""
    try:
        return path.stat().st_size
    except OSError:
        return None
