"""Running and packaging the monai-bone bundles (MONAI's ``monai.bundle`` home for this plugin).

Running: the shipped bundles' names and folders (:mod:`.packaged`: ``BUNDLE_NAMES``, ``default_bundle_dir``,
``copy_packaged_bundle``), ``ConfigWorkflow`` helpers (:mod:`.workflow`: ``bundle_workflow``, ``train_and_predict``,
``quiet_engines``) and one-line errors for bad bundle arguments under ``python -m monai.bundle`` (:mod:`.errors`).

Packaging: export to a zip with a sha256 manifest (:mod:`.export`, CLI ``monai-bone export``; what it packs:
:mod:`.bundle_files`, :mod:`.weights_io`), a randomly initialised copy to test plumbing (:mod:`.untrained`),
verified import of an untrusted zip (:mod:`.importing`, CLI ``monai-bone import``) and their parts: archive format
(:mod:`.manifest`), bounded zip reading (:mod:`.safe_zip`, :mod:`.verify`), signatures (:mod:`.signing`), metadata
for other sites (:mod:`.metadata`), ONNX export (:mod:`.onnx_export`), model-zoo folders (:mod:`.zoo`).

The modules that import torch or MONAI (workflow, export, weights_io, untrained, importing) load on first use of one
of their names, so that ``import monai_bone.bundle`` (the CLI's start-up, the bundle exception hook) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .manifest import MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME, BundleIntegrityError, check_bundle_name
from .packaged import (
    BUNDLE_FILES,
    BUNDLE_NAMES,
    bundle_name,
    copy_bundle_files,
    copy_packaged_bundle,
    default_bundle_dir,
    packaged_bundle_dir,
)
from .safe_zip import ArchiveLimitError, ArchiveLimits
from .signing import SignatureError, generate_keypair, manifest_digest, sign_manifest, verify_manifest_signature
from .verify import UNTRUSTED_NOTE, VerifiedArchive, verify_archive_stream

#: Names of the torch/MONAI-importing modules, loaded by ``__getattr__`` on first use.
_LAZY = {
    "PredictionCollector": "workflow",
    "bundle_workflow": "workflow",
    "no_checkpoint_overrides": "workflow",
    "quiet_engines": "workflow",
    "train_and_predict": "workflow",
    "collect_bundle_files": "bundle_files",
    "digest_path": "export",
    "export_bundle": "export",
    "half_state_dict": "weights_io",
    "load_weights": "weights_io",
    "sha256_bytes": "export",
    "sha256_file": "export",
    "untrained_copy": "untrained",
    "import_bundle": "importing",
    "verify_archive": "importing",
}

__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_NAMES",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "SUMS_NAME",
    "UNTRUSTED_NOTE",
    "ArchiveLimitError",
    "ArchiveLimits",
    "BundleIntegrityError",
    "SignatureError",
    "VerifiedArchive",
    "bundle_name",
    "check_bundle_name",
    "copy_bundle_files",
    "copy_packaged_bundle",
    "default_bundle_dir",
    "generate_keypair",
    "manifest_digest",
    "packaged_bundle_dir",
    "sign_manifest",
    "verify_archive_stream",
    "verify_manifest_signature",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
