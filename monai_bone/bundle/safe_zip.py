"""Reading an untrusted zip archive with bounded memory and bounded output.

A shared bundle comes from outside: a 1 MB zip can hold 1 GB of zeros (a "zip bomb") and a manifest can be made huge.
:class:`ArchiveLimits` caps the member count, every member's and the total uncompressed size and the compression
ratio; :func:`check_members` applies the caps to the declared sizes before a byte is decompressed, and
:func:`stream_member` applies them again to the bytes actually produced while it hashes (and optionally writes) one
member in 1 MiB chunks. Every refusal is a :class:`ArchiveLimitError` naming the archive and the member.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from .manifest import BundleIntegrityError

__all__ = [
    "ArchiveLimitError",
    "ArchiveLimits",
    "check_members",
    "open_sink",
    "read_small_member",
    "safe_member_name",
    "stream_member",
]

_CHUNK = 1 << 20
_MIB = 1 << 20


class ArchiveLimitError(BundleIntegrityError):
    """An archive member breaks a size, count, ratio or path rule (the message names archive and member)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps for reading an untrusted archive.

    Args:
        max_total_bytes: total uncompressed size of all members (default 4 GiB: weights, TorchScript and ONNX copies of
            a ~100 MB network with room to spare).
        max_members: number of members (a bundle has about 15).
        max_ratio: largest uncompressed/compressed size ratio of one member; deflate reaches ~5-20x on JSON and text,
            ~1000x only on degenerate content such as runs of zeros.
        ratio_min_bytes: members smaller than this are exempt from the ratio rule (a tiny file of spaces may
            compress 100x, harmlessly).
        max_manifest_bytes: largest manifest, signature or checksum file (kilobytes in practice).
    """

    max_total_bytes: int = 4 << 30
    max_members: int = 1000
    max_ratio: float = 200.0
    ratio_min_bytes: int = _MIB
    max_manifest_bytes: int = 8 * _MIB

    def __post_init__(self) -> None:
        for name in ("max_total_bytes", "max_members", "max_ratio", "max_manifest_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


def _mib(n: int) -> str:
    return f"{n / _MIB:.1f} MiB"


def safe_member_name(archive: Path, name: str) -> str:
    """Return ``name`` as a relative POSIX path, refusing absolute paths, ``..``, backslashes and empty names.

    Raises:
        ArchiveLimitError: for an unsafe name.
    """
    p = PurePosixPath(name)
    if "\\" in name or name.startswith("/") or p.is_absolute() or ".." in p.parts or not p.parts or ":" in p.parts[0]:
        raise ArchiveLimitError(f"{archive}: unsafe path {name!r} in archive; refusing to import")
    return p.as_posix()


def _check_ratio(archive: Path, name: str, size: int, compressed: int, limits: ArchiveLimits) -> None:
    if size < limits.ratio_min_bytes:
        return
    ratio = size / max(compressed, 1)
    if ratio > limits.max_ratio:
        raise ArchiveLimitError(
            f"{archive}: {name} expands {ratio:.0f}x ({_mib(compressed)} -> {_mib(size)}), over the "
            f"{limits.max_ratio:g}x compression-ratio limit (a zip bomb?); refusing to import"
        )


def check_members(
    zf: zipfile.ZipFile, archive: Path, limits: ArchiveLimits, small_names: tuple[str, ...] = ()
) -> list[zipfile.ZipInfo]:
    """Check the declared sizes, count, names and types of all members before anything is decompressed.

    Args:
        zf: the open archive.
        archive: its path (for messages).
        limits: the caps.
        small_names: base names (``manifest.json``) that must stay under ``limits.max_manifest_bytes``.

    Returns:
        The file members (folders dropped), in archive order.

    Raises:
        ArchiveLimitError: too many members, a member or the total over its cap, a ratio over the cap, an unsafe
            name, a symbolic link or a duplicate name.
    """
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveLimitError(
            f"{archive}: {len(infos)} members, over the {limits.max_members} limit; refusing to import"
        )
    files = [i for i in infos if not i.is_dir()]
    seen: set[str] = set()
    total = 0
    for info in files:
        name = safe_member_name(archive, info.filename)
        if name in seen:
            raise ArchiveLimitError(f"{archive}: duplicate entry {name} in archive; refusing to import")
        seen.add(name)
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ArchiveLimitError(f"{archive}: {name} is a symbolic link; refusing to import")
        if PurePosixPath(name).name in small_names and info.file_size > limits.max_manifest_bytes:
            raise ArchiveLimitError(
                f"{archive}: {name} is {_mib(info.file_size)} uncompressed, over the {_mib(limits.max_manifest_bytes)} "
                "limit for a manifest; refusing to import"
            )
        _check_ratio(archive, name, info.file_size, info.compress_size, limits)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveLimitError(
                f"{archive}: {name} brings the uncompressed total to {_mib(total)}, over the "
                f"{_mib(limits.max_total_bytes)} limit; refusing to import"
            )
    return files


def stream_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    archive: Path,
    limits: ArchiveLimits,
    sink: IO[bytes] | None = None,
    max_bytes: int | None = None,
) -> tuple[str, int]:
    """Hash one member in 1 MiB chunks (writing them to ``sink`` when given), enforcing the caps on actual bytes.

    Args:
        zf: the open archive.
        info: the member.
        archive: archive path (for messages).
        limits: the caps (ratio and per-member total).
        sink: binary file the bytes are written to; None hashes only.
        max_bytes: stop with an error past this many bytes (default ``limits.max_total_bytes``).

    Returns:
        ``(sha256 hex, size in bytes)``.

    Raises:
        ArchiveLimitError: the member produces more than ``max_bytes`` or more than its ratio allows.
        zipfile.BadZipFile, zlib.error, EOFError: the member is corrupted (CRC or stream error).
    """
    cap = limits.max_total_bytes if max_bytes is None else max_bytes
    h = hashlib.sha256()
    n = 0
    with zf.open(info) as f:
        while chunk := f.read(_CHUNK):
            n += len(chunk)
            if n > cap:
                raise ArchiveLimitError(
                    f"{archive}: {info.filename} decompresses past {_mib(cap)}, its limit; refusing to import"
                )
            _check_ratio(archive, info.filename, n, info.compress_size, limits)
            h.update(chunk)
            if sink is not None:
                sink.write(chunk)
    return h.hexdigest(), n


def read_small_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: Path, limits: ArchiveLimits) -> bytes:
    """The bytes of a manifest-sized member, never more than ``limits.max_manifest_bytes`` held in memory.

    Raises:
        ArchiveLimitError: the member is larger than the manifest limit or corrupted.
    """
    buf = io.BytesIO()
    try:
        stream_member(zf, info, archive, limits, sink=buf, max_bytes=limits.max_manifest_bytes)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise ArchiveLimitError(f"{archive}: {info.filename} is corrupted ({err}); refusing to import") from err
    return buf.getvalue()


def open_sink(path: Path) -> IO[bytes]:
    """Open a new file for writing, refusing to follow or replace an existing path (staging folders only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    return os.fdopen(fd, "wb")
