"""Reading a shared bundle archive back: ``import_bundle`` (CLI ``monai-bone import``) and ``verify_archive``.

The archive is untrusted: caps on size, member count and compression ratio, every member streamed through its sha256
check into a staging folder (:mod:`monai_bone.bundle.verify`). The manifest alone proves only internal consistency;
``expect_sha256`` (the published digest) or ``trust_key`` (the author's ed25519 public key) prove origin
(:mod:`monai_bone.bundle.signing`). Archives are written by :func:`monai_bone.bundle.export.export_bundle`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from monai_bone.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME
from monai_bone.bundle.safe_zip import ArchiveLimits
from monai_bone.bundle.verify import UNTRUSTED_NOTE, VerifiedArchive, verify_archive_stream
from monai_bone.bundle.weights_io import load_weights
from monai_bone.utils.io import atomic_write_bytes

__all__ = ["import_bundle", "verify_archive"]

logger = logging.getLogger(__name__)


def verify_archive(
    archive: str | os.PathLike,
    expect_sha256: str | None = None,
    trust_key: str | os.PathLike | None = None,
    limits: ArchiveLimits | None = None,
) -> VerifiedArchive:
    """Check every file of an exported archive against its manifest, streaming (nothing is written or kept in memory).

    Args:
        archive: zip written by :func:`export_bundle` (``<bundle_name>/`` layout, or 0.1's flat layout).
        expect_sha256: the manifest digest received out of band (``monai-bone export`` prints it).
        trust_key: PEM ed25519 public key whose signature the archive must carry.
        limits: caps on member count, sizes and compression ratio.

    Returns:
        A :class:`~monai_bone.bundle.verify.VerifiedArchive` (manifest, digest, trust level).

    Raises:
        FileNotFoundError: ``archive`` does not exist.
        BundleIntegrityError: not a zip, a cap exceeded, no or unreadable manifest, unsafe or unexpected path, missing
            file, size or sha256 mismatch, wrong digest or signature (the message names the file).
    """
    return verify_archive_stream(archive, None, expect_sha256=expect_sha256, trust_key=trust_key, limits=limits)


def import_bundle(
    archive: str | os.PathLike,
    out_dir: str | os.PathLike,
    overwrite: bool = False,
    expect_sha256: str | None = None,
    trust_key: str | os.PathLike | None = None,
    limits: ArchiveLimits | None = None,
) -> Path:
    """Verify an exported archive and unpack it into a bundle folder.

    Files stream through their checks into a hidden staging folder beside ``out_dir``; the bundle appears in one
    rename only when every check passed, so a failed import leaves nothing behind. Without ``expect_sha256`` or
    ``trust_key`` a warning says that only internal consistency was checked (:data:`UNTRUSTED_NOTE`).

    Args:
        archive: zip written by :func:`export_bundle`.
        out_dir: bundle folder to create.
        overwrite: replace ``out_dir`` when it exists and is not empty.
        expect_sha256, trust_key, limits: see :func:`verify_archive`.

    Returns:
        The bundle folder.

    Raises:
        FileNotFoundError: ``archive`` does not exist.
        FileExistsError: ``out_dir`` exists, is not empty and ``overwrite`` is False.
        BundleIntegrityError: see :func:`verify_archive`; also when ``models/model.pt`` is not a plain state dict.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"{out_dir}: exists and is not empty (pass overwrite=True / --overwrite to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        result = verify_archive_stream(
            archive, staging, expect_sha256=expect_sha256, trust_key=trust_key, limits=limits
        )
        if (staging / "models" / "model.pt").is_file():
            load_weights(staging / "models" / "model.pt")
        atomic_write_bytes(staging / MANIFEST_NAME, result.manifest_bytes)
        if result.signature is not None:
            atomic_write_bytes(staging / SIGNATURE_NAME, result.signature)
        if out_dir.exists():
            shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest = result.manifest
    logger.info(
        "imported %s %s (%d files, every sha256 verified; manifest sha256 %s, trust: %s) into %s",
        manifest.get("bundle_name"),
        manifest.get("bundle_version"),
        len(result.sizes),
        result.digest,
        result.trust,
        out_dir,
    )
    if result.trust == "self-consistent":
        logger.warning("%s: %s", archive, UNTRUSTED_NOTE)
    return out_dir
