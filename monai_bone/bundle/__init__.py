"""Packaging bundles for sharing: archive format, bounded reading of untrusted zips, digests and signatures,
metadata for other sites, ONNX export with every input, and the bundles shipped inside the package.

The export/import entry points are :func:`monai_bone.bundle.export.export_bundle` and
:func:`monai_bone.bundle.export.import_bundle` (CLI ``monai-bone export`` / ``import``); this package holds their parts.
"""

from __future__ import annotations

from .manifest import MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME, BundleIntegrityError, check_bundle_name
from .packaged import copy_packaged_bundle, packaged_bundle_dir
from .safe_zip import ArchiveLimitError, ArchiveLimits
from .signing import SignatureError, generate_keypair, manifest_digest, sign_manifest, verify_manifest_signature
from .verify import UNTRUSTED_NOTE, VerifiedArchive, verify_archive_stream

__all__ = [
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "SUMS_NAME",
    "UNTRUSTED_NOTE",
    "ArchiveLimitError",
    "ArchiveLimits",
    "BundleIntegrityError",
    "SignatureError",
    "VerifiedArchive",
    "check_bundle_name",
    "copy_packaged_bundle",
    "generate_keypair",
    "manifest_digest",
    "packaged_bundle_dir",
    "sign_manifest",
    "verify_archive_stream",
    "verify_manifest_signature",
]
