"""Verify an untrusted bundle archive member by member, with bounded memory, before anything reaches its destination.

Order of checks (the cheap and decisive ones first):

1. every member's name, type and declared size, the member count, total size and compression ratio
   (:mod:`monai_bone.bundle.safe_zip`);
2. the layout: one ``<bundle_name>/`` top folder holding ``manifest.json`` (format 2), or the 0.1 flat layout;
3. the manifest (size-capped) and, when asked, its trust: ``expect_sha256`` (a digest received out of band) or
   ``trust_key`` (an ed25519 signature in ``manifest.sig``, :mod:`monai_bone.bundle.signing`);
4. the manifest's file list against the archive (nothing missing, nothing extra) and ``sha256sums``;
5. every file streamed in 1 MiB chunks through sha256 (and into the staging folder when importing), its size and
   hash compared with the manifest; the caps apply to the bytes actually produced.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .manifest import ARCHIVE_FORMAT, MANIFEST_NAME, SIGNATURE_NAME, SUMS_NAME, BundleIntegrityError, sums_text
from .safe_zip import ArchiveLimits, check_members, open_sink, read_small_member, safe_member_name, stream_member
from .signing import check_expected_digest, manifest_digest, verify_manifest_signature

__all__ = ["UNTRUSTED_NOTE", "VerifiedArchive", "verify_archive_stream"]

logger = logging.getLogger(__name__)

#: What an import without ``--expect-sha256`` / ``--trust-key`` has and has not shown.
UNTRUSTED_NOTE = (
    "only internal consistency was checked: every file matches the archive's own manifest, but whoever changes a file "
    "can recompute the manifest. Bundle configs execute Python code when they run ('$' expressions, '_target_'): run "
    "this bundle only if you trust its source, or import it with --expect-sha256 DIGEST (the manifest digest its "
    "author published) or --trust-key PUB (the author's ed25519 public key)."
)
_SMALL = (MANIFEST_NAME, SUMS_NAME, SIGNATURE_NAME)


@dataclass
class VerifiedArchive:
    """What :func:`verify_archive_stream` established about an archive.

    Attributes:
        manifest: the parsed manifest.
        manifest_bytes: the manifest exactly as stored.
        digest: sha256 of ``manifest_bytes`` (the manifest digest).
        trust: ``"expected-sha256"``, ``"signature"`` or ``"self-consistent"`` (manifest only).
        layout_prefix: ``"<bundle_name>/"`` (format 2) or ``""`` (0.1 flat layout).
        key_fingerprint: sha256 of the public key that verified the signature, when one did.
        signature: the bytes of ``manifest.sig`` when the archive has one.
    """

    manifest: dict[str, Any]
    manifest_bytes: bytes
    digest: str
    trust: str
    layout_prefix: str
    key_fingerprint: str | None = None
    signature: bytes | None = None
    sizes: dict[str, int] = field(default_factory=dict)


def _layout(archive: Path, names: list[str]) -> str:
    if MANIFEST_NAME in names:
        return ""
    tops = {PurePosixPath(n).parts[0] for n in names}
    if len(tops) == 1:
        prefix = f"{next(iter(tops))}/"
        if f"{prefix}{MANIFEST_NAME}" in names:
            return prefix
    raise BundleIntegrityError(
        f"{archive}: no {MANIFEST_NAME} (neither at the root nor in one <bundle_name>/ top folder); not a monai-bone "
        "bundle export"
    )


def _parse_manifest(archive: Path, data: bytes) -> dict[str, dict[str, Any]]:
    try:
        manifest = json.loads(data)
        listed = {f["path"]: f for f in manifest["files"]}
    except (ValueError, KeyError, TypeError) as err:
        raise BundleIntegrityError(f"{archive}: {MANIFEST_NAME} is unreadable ({err})") from err
    if manifest.get("format") != ARCHIVE_FORMAT or manifest.get("hash_type") != "sha256":
        raise BundleIntegrityError(f"{archive}: {MANIFEST_NAME} is not a {ARCHIVE_FORMAT} sha256 manifest")
    for rel in listed:
        safe_member_name(archive, rel)
    return listed


def _check_listing(archive: Path, prefix: str, names: list[str], listed: dict[str, Any]) -> None:
    outside = [n for n in names if not n.startswith(prefix)]
    if outside:
        raise BundleIntegrityError(f"{archive}: {outside[0]} is outside the bundle folder {prefix}; refusing to import")
    present = {n[len(prefix) :] for n in names} - set(_SMALL)
    extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
    if extra:
        raise BundleIntegrityError(f"{archive}: {extra[0]} is not listed in {MANIFEST_NAME}; refusing to import")
    if missing:
        raise BundleIntegrityError(
            f"{archive}: {missing[0]} is listed in {MANIFEST_NAME} but missing from the archive; refusing to import"
        )


def _trust(
    archive: Path, data: bytes, signature: bytes | None, expect_sha256: str | None, trust_key: str | os.PathLike | None
) -> tuple[str, str | None]:
    digest = manifest_digest(data)
    trust, fingerprint = "self-consistent", None
    if expect_sha256:
        try:
            check_expected_digest(digest, expect_sha256)
        except BundleIntegrityError as err:
            raise type(err)(f"{archive}: {err}") from err
        trust = "expected-sha256"
    if trust_key:
        try:
            fingerprint = verify_manifest_signature(data, signature, trust_key)
        except BundleIntegrityError as err:
            raise type(err)(f"{archive}: {err}") from err
        trust = "signature"
    return trust, fingerprint


def _stream_file(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    archive: Path,
    rel: str,
    entry: dict,
    limits: ArchiveLimits,
    dest: Path | None,
) -> int:
    sink = open_sink(dest / rel) if dest is not None else None
    try:
        digest, size = stream_member(zf, info, archive, limits, sink=sink, max_bytes=int(entry.get("size", -1)))
    except BundleIntegrityError as err:
        if "decompresses past" in str(err):  # more bytes than the manifest says: the file was changed
            raise BundleIntegrityError(
                f"{archive}: {rel} is larger than {MANIFEST_NAME} says; refusing to import"
            ) from err
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as err:
        raise BundleIntegrityError(f"{archive}: {rel} is corrupted ({err}); refusing to import") from err
    finally:
        if sink is not None:
            sink.close()
    if digest != entry.get("sha256") or size != entry.get("size"):
        raise BundleIntegrityError(
            f"{archive}: {rel} fails its sha256 check (expected {entry.get('sha256')}, got {digest}); the archive was "
            "modified or corrupted after export - refusing to import"
        )
    return size


def verify_archive_stream(
    archive: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    expect_sha256: str | None = None,
    trust_key: str | os.PathLike | None = None,
    limits: ArchiveLimits | None = None,
) -> VerifiedArchive:
    """Check an exported archive (see the module docstring for the order), streaming files into ``dest`` if given.

    Args:
        archive: zip written by ``monai-bone export`` (format 2, or 0.1's flat format).
        dest: an empty staging folder the verified files are written to (relative to the bundle folder); None only
            verifies. On an error ``dest`` may hold partial files: the caller discards it.
        expect_sha256: manifest digest received out of band.
        trust_key: PEM ed25519 public key file whose signature ``manifest.sig`` must carry.
        limits: size, count and ratio caps (default :class:`ArchiveLimits`).

    Returns:
        A :class:`VerifiedArchive`.

    Raises:
        FileNotFoundError: ``archive`` (or ``trust_key``) does not exist.
        BundleIntegrityError: any failed check; the message names the archive and the member.
    """
    archive = Path(archive)
    limits = limits or ArchiveLimits()
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise BundleIntegrityError(f"{archive}: not a zip archive ({err})") from err
    with zf:
        infos = {i.filename: i for i in check_members(zf, archive, limits, small_names=_SMALL)}
        names = list(infos)
        prefix = _layout(archive, names)
        data = read_small_member(zf, infos[f"{prefix}{MANIFEST_NAME}"], archive, limits)
        sig_info = infos.get(f"{prefix}{SIGNATURE_NAME}")
        signature = read_small_member(zf, sig_info, archive, limits) if sig_info else None
        trust, fingerprint = _trust(archive, data, signature, expect_sha256, trust_key)
        listed = _parse_manifest(archive, data)
        manifest = json.loads(data)
        _check_listing(archive, prefix, names, listed)
        sums_info = infos.get(f"{prefix}{SUMS_NAME}")
        if sums_info is not None:
            sums = read_small_member(zf, sums_info, archive, limits).decode("utf-8", errors="replace")
            if sums != sums_text(manifest["files"]):
                raise BundleIntegrityError(f"{archive}: {SUMS_NAME} disagrees with {MANIFEST_NAME}; refusing to import")
        sizes = {
            rel: _stream_file(zf, infos[f"{prefix}{rel}"], archive, rel, entry, limits, Path(dest) if dest else None)
            for rel, entry in listed.items()
        }
    return VerifiedArchive(manifest, data, manifest_digest(data), trust, prefix, fingerprint, signature, sizes)
