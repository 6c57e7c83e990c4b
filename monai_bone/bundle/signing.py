"""Trust beyond self-consistency: the manifest digest and an ed25519 signature over the manifest.

A bundle's ``manifest.json`` lists the sha256 of every file, so its own sha256 (the *manifest digest*) identifies the
whole bundle. Comparing it with a digest received out of band (``--expect-sha256``), or checking an ed25519 signature
over the manifest with a public key you already trust (``--trust-key``), tells you the archive is the one its author
exported. Without either, the manifest only proves internal consistency: anyone who edits a file can re-hash it.

Keys are ordinary PEM files (PKCS#8 private key, SubjectPublicKeyInfo public key) made by :func:`generate_keypair`
(``monai-bone keygen``) with the ``cryptography`` package; the private key is written ``0600`` and a signing key that
others can read, or that another user owns, is refused like ``ssh`` refuses one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from .manifest import BundleIntegrityError

__all__ = [
    "SIGNATURE_ALGORITHM",
    "SignatureError",
    "check_expected_digest",
    "generate_keypair",
    "manifest_digest",
    "public_key_fingerprint",
    "sign_manifest",
    "verify_manifest_signature",
]

SIGNATURE_ALGORITHM = "ed25519"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SignatureError(BundleIntegrityError):
    """A digest or signature check failed, or a key file is unusable (the message says which and why)."""


def manifest_digest(manifest_bytes: bytes) -> str:
    """The sha256 hex digest of the manifest exactly as stored in the archive."""
    return hashlib.sha256(manifest_bytes).hexdigest()


def check_expected_digest(digest: str, expected: str) -> None:
    """Compare a manifest digest with one received out of band.

    Raises:
        SignatureError: ``expected`` is not 64 hex digits, or differs from ``digest``.
    """
    want = expected.strip().lower()
    if not _HEX64.match(want):
        raise SignatureError(f"--expect-sha256 must be 64 hexadecimal digits, got {expected!r}")
    if want != digest:
        raise SignatureError(
            f"manifest digest {digest} differs from the expected {want}: this is not the bundle the digest was "
            "published for (modified after export, or a different export); refusing to import"
        )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def generate_keypair(
    private_path: str | os.PathLike, public_path: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """Write a new ed25519 key pair: the private key (mode 0600) and the public key (default ``<private>.pub``).

    The private key file is not encrypted: keep it in a folder only you can read, never in the bundle or a repository.

    Returns:
        ``(private key path, public key path)``.

    Raises:
        FileExistsError: either file exists (keys are never overwritten).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv, pub = Path(private_path), Path(public_path) if public_path else Path(f"{private_path}.pub")
    for p in (priv, pub):
        if p.exists():
            raise FileExistsError(f"{p}: already exists; refusing to overwrite a key file")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new(priv, pem, 0o600)
    _write_new(pub, public, 0o644)
    return priv, pub


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_fingerprint(key: Any) -> str:
    """sha256 hex of the raw 32-byte ed25519 public key (how a signature names the key that made it)."""
    return hashlib.sha256(_raw_public(key)).hexdigest()


def _load_private(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not path.is_file():
        raise FileNotFoundError(f"{path}: signing key not found")
    st = path.stat()
    if os.name == "posix":
        if st.st_uid != os.getuid():
            raise SignatureError(f"{path}: signing key owned by another user; refusing to use it")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SignatureError(
                f"{path}: signing key is readable by others (mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 on it"
            )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise SignatureError(f"{path}: not an unencrypted PEM private key ({err})") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an ed25519 private key ({type(key).__name__})")
    return key


def _load_public(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not path.is_file():
        raise FileNotFoundError(f"{path}: trusted public key not found")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (ValueError, TypeError) as err:
        raise SignatureError(f"{path}: not a PEM public key ({err})") from err
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path}: not an ed25519 public key ({type(key).__name__})")
    return key


def sign_manifest(manifest_bytes: bytes, private_key: str | os.PathLike) -> dict[str, str]:
    """Sign the manifest bytes with an ed25519 private key file.

    Returns:
        The signature record stored as ``manifest.sig`` (algorithm, manifest digest, key fingerprint, base64
        signature).

    Raises:
        FileNotFoundError: no key file.
        SignatureError: the key file is not a private ed25519 PEM key, or others can read it.
    """
    key = _load_private(Path(private_key))
    return {
        "algorithm": SIGNATURE_ALGORITHM,
        "manifest_sha256": manifest_digest(manifest_bytes),
        "public_key_sha256": public_key_fingerprint(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii"),
    }


def verify_manifest_signature(manifest_bytes: bytes, signature: bytes | None, public_key: str | os.PathLike) -> str:
    """Check the archive's signature record over the manifest with a trusted public key.

    Args:
        manifest_bytes: the manifest as stored in the archive.
        signature: the bytes of ``manifest.sig`` (None when the archive has none).
        public_key: PEM public key file you trust.

    Returns:
        The fingerprint of the key that verified.

    Raises:
        FileNotFoundError: no key file.
        SignatureError: no signature, an unreadable record, another key, or a signature that does not verify.
    """
    from cryptography.exceptions import InvalidSignature

    key = _load_public(Path(public_key))
    fingerprint = public_key_fingerprint(key)
    if signature is None:
        raise SignatureError("the archive is not signed (no manifest.sig) but --trust-key asks for a signature")
    try:
        record = json.loads(signature)
        sig = base64.b64decode(record["signature"], validate=True)
        algorithm = record.get("algorithm")
    except (ValueError, KeyError, TypeError) as err:
        raise SignatureError(f"manifest.sig is unreadable ({err}); refusing to import") from err
    if algorithm != SIGNATURE_ALGORITHM:
        raise SignatureError(f"manifest.sig uses {algorithm!r}, expected {SIGNATURE_ALGORITHM!r}")
    try:
        key.verify(sig, manifest_bytes)
    except InvalidSignature as err:
        signer = record.get("public_key_sha256", "?")
        who = "a different key" if signer != fingerprint else "the trusted key, but over a different manifest"
        raise SignatureError(
            f"manifest signature does not verify with {public_key} (key {fingerprint[:16]}...; signed by {who}): the "
            "manifest was changed after signing or signed by someone else; refusing to import"
        ) from err
    return fingerprint
