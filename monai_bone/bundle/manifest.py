"""The archive format of a shared bundle: MONAI's zip layout plus a sha256 manifest.

An archive holds one top folder named after the bundle, as MONAI's ``monai.bundle.download`` and
``load_bundle_config`` expect (``<name>/configs/metadata.json``, ``<name>/models/model.pt``, ...). Inside it, beside the
bundle files, go ``manifest.json`` (path, size and sha256 of every file, paths relative to the bundle folder),
``sha256sums`` (the same hashes in the format ``sha256sum -c`` reads) and, when signed, ``manifest.sig``. Archives of
format version 1 (monai-bone 0.1) had these at the archive root without a top folder; they are still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from monai_bone._version import __version__

__all__ = [
    "ARCHIVE_FORMAT",
    "ARCHIVE_FORMAT_VERSION",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "SUMS_NAME",
    "BundleIntegrityError",
    "build_manifest",
    "check_bundle_name",
    "manifest_bytes",
    "sums_text",
]

MANIFEST_NAME = "manifest.json"
SUMS_NAME = "sha256sums"
SIGNATURE_NAME = "manifest.sig"
ARCHIVE_FORMAT = "monai-bone-bundle"
#: 1: files at the archive root (0.1); 2: one ``<bundle_name>/`` top folder (MONAI layout).
ARCHIVE_FORMAT_VERSION = 2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class BundleIntegrityError(ValueError):
    """An archive or bundle failed a check (hash mismatch, missing or unexpected file, unsafe path, size limit)."""


def check_bundle_name(name: str) -> str:
    """Return ``name`` if it can be a bundle folder name (letters, digits, ``_ . -``; no separators).

    Raises:
        BundleIntegrityError: otherwise.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name in {".", ".."}:
        raise BundleIntegrityError(f"bundle name {name!r} must be letters, digits, '_', '.', '-' (e.g. hip_bmd_xattn)")
    return name


def build_manifest(
    files: Iterable[Mapping[str, Any]],
    bundle_name: str,
    meta: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dict: format, bundle name/version, monai-bone version and ``files`` (path, size, sha256)."""
    return {
        "format": ARCHIVE_FORMAT,
        "format_version": ARCHIVE_FORMAT_VERSION,
        "bundle_name": bundle_name,
        "bundle_display_name": meta.get("name"),
        "bundle_version": meta.get("version"),
        "monai_bone_version": __version__,
        "hash_type": "sha256",
        **dict(extra or {}),
        "files": [dict(f) for f in files],
    }


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The manifest exactly as written into the archive (its sha256 is the manifest digest)."""
    return (json.dumps(manifest, indent=2) + "\n").encode("utf-8")


def sums_text(files: Iterable[Mapping[str, Any]]) -> str:
    """``sha256sum`` format lines for the manifest's files."""
    return "".join(f"{f['sha256']}  {f['path']}\n" for f in files)
